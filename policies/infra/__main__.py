"""The keyops CrossGuard pack: `pulumi preview --policy-pack policies/infra`.

Only this file constructs the PolicyPack (doing so starts the policy server). The rules live in
keyops.deploy.guard, where tests import and run them over Pulumi's mocked resources.
"""

from pulumi_policy import EnforcementLevel, PolicyPack

from keyops.deploy.guard import POLICIES

PolicyPack(
    name="keyops-infra",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=POLICIES,
)
