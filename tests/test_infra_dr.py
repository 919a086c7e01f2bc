"""The disaster-recovery runbook of docs/deploy.md, proven on the plans it relies on.

The prod stack runs under mocks before the recovery, after it (the keyring's secret promoted in
us-east-1 while eu-west-1 is down) and after eu-west-1 is back; the captured URNs, providers and
inputs say which resources each step keeps, replaces, adds or drops, and the runbook's commands
must name exactly those.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.infra import DeployRepo, Run, run_program
from support.repo import PROJECT

KEYRING = "urn:pulumi:prod::keyops::keyops:deploy:AuthKeyring"
SECRET = f"{KEYRING}$aws:secretsmanager/secret:Secret::auth-keyring-secret-"
VALUE = f"{KEYRING}$aws:secretsmanager/secretVersion:SecretVersion::auth-keyring-value"
POLICY = f"{KEYRING}$aws:secretsmanager/secretPolicy:SecretPolicy::auth-keyring-policy"
DR_KEYRING = {"region": "us-east-1", "keyRegion": "eu-west-1", "pausedRegions": ["eu-west-1"]}


def prod_with(tmp: Path, name: str, **settings: Any) -> Path:
    """The shipped prod stack file with some keyops: settings replaced."""
    data = yaml.safe_load((PROJECT / "stacks" / "Pulumi.prod.yaml").read_text())
    data["config"].update({f"keyops:{k}": v for k, v in settings.items()})
    path = tmp / name / "Pulumi.prod.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def plans(deploy_repo: DeployRepo, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    tmp = tmp_path_factory.mktemp("dr")
    files = {
        "before": PROJECT / "stacks" / "Pulumi.prod.yaml",
        "reordered": prod_with(
            tmp, "reordered", regions=["ap-southeast-1", "us-east-1", "eu-west-1"]
        ),
        "after": prod_with(tmp, "after", keyring=DR_KEYRING),
        "recovered": prod_with(
            tmp, "recovered", keyring={"region": "us-east-1", "keyRegion": "eu-west-1"}
        ),
    }
    runs = {}
    for name, stack_file in files.items():
        runs[name] = run_program(deploy_repo, "prod", tmp / f"{name}.json", stack_file=stack_file)
        assert runs[name].error is None, (name, runs[name].error)
    return runs


def state(run: Run) -> dict[str, tuple[str | None, dict[str, Any]]]:
    """URN -> (provider, inputs): what decides whether Pulumi keeps, updates or replaces."""
    return {r["urn"]: (r["provider"], r["inputs"]) for r in run.resources if r["custom"]}


def changes(a: Run, b: Run) -> dict[str, set[str]]:
    sa, sb = state(a), state(b)
    return {
        "added": set(sb) - set(sa),
        "dropped": set(sa) - set(sb),
        # A resource whose provider changes is replaced (another region, another resource).
        "replaced": {u for u in set(sa) & set(sb) if sa[u][0] != sb[u][0]},
        "updated": {u for u in set(sa) & set(sb) if sa[u][0] == sb[u][0] and sa[u][1] != sb[u][1]},
    }


def test_reordering_regions_changes_nothing(plans: dict[str, Run]) -> None:
    assert changes(plans["before"], plans["reordered"]) == {
        "added": set(),
        "dropped": set(),
        "replaced": set(),
        "updated": set(),
    }


def test_moving_the_keyring_keeps_every_key_and_swaps_only_the_secret(
    plans: dict[str, Run],
) -> None:
    before, after = plans["before"], plans["after"]
    assert changes(before, after) == {
        "added": {f"{SECRET}us-east-1"},
        "dropped": {f"{SECRET}eu-west-1"},
        "replaced": {VALUE, POLICY},
        "updated": set(),
    }
    old, new = before.by_urn()[f"{SECRET}eu-west-1"], after.by_urn()[f"{SECRET}us-east-1"]
    # The old secret leaves the stack without a call to its (down) region: the runbook
    # unprotects it in the state, and retainOnDelete keeps it in AWS. So do the replaced
    # value and policy (the new ones are written to the promoted secret).
    assert (old["protect"], old["retainOnDelete"]) == (True, True)
    assert all(before.by_urn()[u]["retainOnDelete"] for u in (VALUE, POLICY))
    # The promoted replica matches what the program now declares, so `pulumi import` adopts it
    # as is: same name, encrypted with the us-east-1 replica key it was replicated with.
    replica_key = {r["region"]: r["kmsKeyId"] for r in old["inputs"]["replicas"]}["us-east-1"]
    assert new["region"] == "us-east-1" and new["protect"] is True
    assert new["inputs"]["name"] == old["inputs"]["name"] == "keyops/prod/auth-keyring"
    assert new["inputs"]["kmsKeyId"] == replica_key
    # Replicas: the surviving region only, not the paused one where the old primary still is.
    assert [r["region"] for r in new["inputs"]["replicas"]] == ["ap-southeast-1"]
    # The KMS primary stays in eu-west-1: moving it needs eu-west-1 (docs/deploy.md).
    keys = [r for r in after.resources if r["type"].startswith("aws:kms/") and "auth" in r["name"]]
    assert {(k["name"], k["region"]) for k in keys} == {
        ("auth-keyring-key", "eu-west-1"),
        ("auth-keyring-key-us-east-1", "us-east-1"),
        ("auth-keyring-key-ap-southeast-1", "ap-southeast-1"),
    }
    assert after.outputs["keyringSecretArn"]["value"] == before.outputs["keyringSecretArn"][
        "value"
    ].replace(":eu-west-1:", ":us-east-1:")


def test_after_recovery_only_the_replica_comes_back(plans: dict[str, Run]) -> None:
    assert changes(plans["after"], plans["recovered"]) == {
        "added": set(),
        "dropped": set(),
        "replaced": set(),
        "updated": {f"{SECRET}us-east-1"},
    }
    recovered = plans["recovered"]
    secret = recovered.by_urn()[f"{SECRET}us-east-1"]
    arns = {r["name"]: r["state"]["arn"] for r in recovered.resources if "kms" in r["type"]}
    # eu-west-1 gets its replica back, encrypted with the KMS primary that never moved.
    assert {r["region"]: r["kmsKeyId"] for r in secret["inputs"]["replicas"]} == {
        "ap-southeast-1": arns["auth-keyring-key-ap-southeast-1"],
        "eu-west-1": arns["auth-keyring-key"],
    }


def runbook() -> str:
    text = (PROJECT / "docs" / "deploy.md").read_text()
    return text.split("## Disaster recovery", 1)[1].split("\n## ", 1)[0]


def test_the_runbook_names_the_resources_the_plans_change(plans: dict[str, Run]) -> None:
    text = runbook()
    urns = set(re.findall(r"'(urn:pulumi:[^']+)'", text))
    known = set(plans["before"].by_urn()) | set(plans["after"].by_urn())
    assert urns and urns <= known
    # The commands that touch the state name exactly the resources the plan swaps.
    assert f"pulumi state unprotect --stack prod '{SECRET}eu-west-1'" in text
    imported = re.search(
        r"pulumi import --stack prod aws:secretsmanager/secret:Secret (\S+) ", text
    )
    assert imported is not None and imported.group(1) == "auth-keyring-secret-us-east-1"
    assert f"--parent 'auth-keyring={KEYRING}::auth-keyring'" in text
    assert (
        "--provider 'aws-us-east-1=urn:pulumi:prod::keyops::pulumi:providers:aws::aws-us-east-1'"
        in text
    )
    # The stack settings the runbook asks for are the ones proven above.
    (block,) = [b for b in re.findall(r"```yaml\n(.*?)```", text, flags=re.S) if "keyring" in b]
    assert yaml.safe_load(textwrap.dedent(block))["keyops:keyring"] == DR_KEYRING
