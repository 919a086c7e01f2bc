"""``AuthKeyring``: the auth servers' keyring in Secrets Manager, replicated to every region.

The secret's primary lives in ``keyops:keyring.region`` (a setting of its own: reordering
``keyops:regions`` moves nothing) with a replica in each other region, so an auth server reads its
local copy and keeps working when the primary region is down. It is encrypted with a
customer-managed, multi-region KMS key with automatic rotation (primary in
``keyring.keyRegion``, a replica key in every other region), not the account's
``aws/secretsmanager`` key.

Who can read it is decided by the secret's resource policy: it denies ``GetSecretValue`` to every
principal except the server roles of ``keyops:serverReaderRoleArns``, the roles of
``keyops:deployRoleArns`` and the principal running the deployment (Pulumi writes the value and
reads it back). An explicit deny wins over any allow, so an administrator with
``secretsmanager:*`` and ``kms:*`` still cannot read it. The endpoint functions are also denied by
name, on the secret and on the key. The denials match ARNs with a condition rather than naming
principals, which AWS would reject before the roles exist: so the keyring is written first, and
the functions that serve a new key are updated only after the auth servers can read its secret.

The keys and the secret are protected (``protect=True``): no plan can delete them. Moving the
secret's primary to another region (disaster recovery) is a runbook (docs/deploy.md), and the
resources are shaped for it: the secret's logical name carries its region, so the promoted
replica is imported under a new name instead of replacing the old one; and the secret, its value
and its policy are ``retain_on_delete``, so dropping the old ones from the stack never calls the
region that is down, and never deletes a keyring in AWS.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
import pulumi_aws as aws

from keyops.deploy.config import DeployConfig
from keyops.deploy.iam import account_administers

KEY_ROTATION_DAYS = 365


def key_policy(
    account_id: str, readers: Sequence[str], denied: Sequence[str], regions: Sequence[str]
) -> str:
    """Key policy: the account administers it; readers decrypt only through Secrets Manager."""
    statements: list[dict[str, Any]] = [account_administers(account_id)]
    if readers:
        statements.append(
            {
                "Sid": "ServerRolesDecryptViaSecretsManager",
                "Effect": "Allow",
                "Principal": {"AWS": list(readers)},
                "Action": ["kms:Decrypt", "kms:DescribeKey"],
                "Resource": "*",
                "Condition": {
                    "StringEquals": {
                        "kms:ViaService": [f"secretsmanager.{r}.amazonaws.com" for r in regions],
                    }
                },
            }
        )
    if denied:
        statements.append(
            {
                "Sid": "EndpointFunctionsNeverDecrypt",
                "Effect": "Deny",
                "Principal": {"AWS": "*"},
                "Action": ["kms:Decrypt"],
                "Resource": "*",
                "Condition": {"ArnEquals": {"aws:PrincipalArn": list(denied)}},
            }
        )
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def secret_policy(
    readers: Sequence[str], denied: Sequence[str], deployers: Sequence[str] = ()
) -> str:
    """Readers may read; everyone but readers and deployers is denied; functions by name too."""
    statements: list[dict[str, Any]] = []
    if readers:
        statements.append(
            {
                "Sid": "ServerRolesRead",
                "Effect": "Allow",
                "Principal": {"AWS": list(readers)},
                "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                "Resource": "*",
            }
        )
    statements.append(
        {
            "Sid": "NobodyElseReads",
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Action": ["secretsmanager:GetSecretValue"],
            "Resource": "*",
            "Condition": {
                "ArnNotEquals": {"aws:PrincipalArn": sorted({*readers, *deployers})},
            },
        }
    )
    statements.append(
        {
            "Sid": "EndpointFunctionsNeverRead",
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Action": ["secretsmanager:GetSecretValue"],
            "Resource": "*",
            "Condition": {"ArnEquals": {"aws:PrincipalArn": list(denied)}},
        }
    )
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


class AuthKeyring(pulumi.ComponentResource):
    secret_arn: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        config: DeployConfig,
        providers: Mapping[str, aws.Provider],
        keyring_json: str,
        account_id: pulumi.Output[str],
        deployer_arn: pulumi.Output[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("keyops:deploy:AuthKeyring", name, None, opts)
        where = config.keyring_settings
        readers = list(config.server_reader_role_arns)
        tags = {"keyops:stack": config.stack}

        def in_region(region: str, *, protect: bool) -> pulumi.ResourceOptions:
            # Protected: never deleted or replaced by a plan. Retained: leaving the stack (a
            # moved keyring) never deletes anything in AWS (docs/deploy.md, Disaster recovery).
            return pulumi.ResourceOptions(
                parent=self, provider=providers[region], protect=protect, retain_on_delete=True
            )

        # Sorted: the order of keyops:regions must not change a policy.
        regions = sorted(config.regions)
        denied = account_id.apply(
            lambda account: [config.endpoint_role_arn(account, r) for r in regions]
        )
        policy = pulumi.Output.all(account_id, denied).apply(
            lambda args: key_policy(args[0], readers, args[1], regions)
        )
        self.key = aws.kms.Key(
            f"{name}-key",
            description=f"keyops {config.stack}: encrypts the auth keyring secret",
            multi_region=True,
            enable_key_rotation=True,
            rotation_period_in_days=KEY_ROTATION_DAYS,
            deletion_window_in_days=30,
            policy=policy,
            tags=tags,
            opts=in_region(where.key_region, protect=True),
        )
        self.replica_keys = {
            region: aws.kms.ReplicaKey(
                f"{name}-key-{region}",
                description=f"keyops {config.stack}: auth keyring replica key ({region})",
                primary_key_arn=self.key.arn,
                deletion_window_in_days=30,
                policy=policy,
                tags=tags,
                opts=in_region(region, protect=True),
            )
            for region in config.replica_key_regions
        }

        def key_in(region: str) -> pulumi.Output[str]:
            return self.key.arn if region == where.key_region else self.replica_keys[region].arn

        self.secret = aws.secretsmanager.Secret(
            # Named by region: the secret's primary in another region is another resource.
            f"{name}-secret-{where.region}",
            name=f"keyops/{config.stack}/auth-keyring",
            description="keyops auth keyring: live Pusher keys and their secrets (server-side)",
            kms_key_id=key_in(where.region),
            replicas=[
                {"region": r, "kms_key_id": key_in(r)}
                for r in sorted(config.keyring_replica_regions)
            ],
            recovery_window_in_days=30,
            tags=tags,
            opts=in_region(where.region, protect=True),
        )
        self.version = aws.secretsmanager.SecretVersion(
            f"{name}-value",
            secret_id=self.secret.id,
            # A Pulumi secret from the start: state and previews only ever hold ciphertext.
            secret_string=pulumi.Output.secret(keyring_json),
            opts=in_region(where.region, protect=False),
        )
        aws.secretsmanager.SecretPolicy(
            f"{name}-policy",
            secret_arn=self.secret.arn,
            policy=pulumi.Output.all(denied, deployer_arn).apply(
                lambda args: secret_policy(readers, args[0], [*config.deploy_role_arns, args[1]])
            ),
            opts=in_region(where.region, protect=False),
        )
        self.secret_arn = self.secret.arn
        self.register_outputs({"secretArn": self.secret_arn})
