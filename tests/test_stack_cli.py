"""``keyops stack add`` and ``keyops stack list`` on real repositories with the real sops binary."""

from __future__ import annotations

import base64
import datetime as dt
import json
import shlex
import stat
from pathlib import Path

import pytest
import yaml
from joserfc.jwk import ECKey

from keyops.cli.commands.hygiene import dispatch_input
from keyops.deploy import config as deploy_config
from keyops.store import age, sopsconfig
from support.net import closed_url
from support.newrepo import add_stack
from support.repo import KeyRepo, sops_rules
from support.workflows import load

STACK_ENDPOINT = "http://127.0.0.1:9911"


def _settings(repo: KeyRepo, stack: str) -> deploy_config.DeployConfig:
    raw = yaml.safe_load((repo.root / f"stacks/Pulumi.{stack}.yaml").read_text())["config"]
    return deploy_config.parse(deploy_config.raw_from_stack_file(raw), stack)


def _changed(repo: KeyRepo) -> list[str]:
    return sorted(
        line.split(maxsplit=1)[1]
        for line in repo.git("status", "--porcelain", "-uall").splitlines()
    )


def test_stack_add_writes_the_rule_the_stack_file_and_the_settings(initrepo: KeyRepo) -> None:
    proc = initrepo.run("stack", "add", "staging", "--age", initrepo.recipient, "--endpoint",
                        STACK_ENDPOINT, "--now", "2026-11-27")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[:4] == [
        "added stack staging:",
        "  .sops.yaml: added creation rule #1 for credentials/staging/, decryptable by "
        f"{initrepo.recipient}",
        "  credentials/staging/_stack.yaml: signing key staging-sign-2026-11 (ES256) and an "
        "encryption_master_key, generated here and encrypted by sops (verified: decrypts to the "
        "intended content)",
        "  stacks/Pulumi.staging.yaml: region(s) eu-west-1; the domain and hosted zone are "
        "placeholders",
    ]
    assert proc.stdout.splitlines()[4].startswith("next: add its clients (keyops client add")
    assert _changed(initrepo) == [
        ".sops.yaml",
        "credentials/staging/_stack.yaml",
        "stacks/Pulumi.staging.yaml",
    ]
    (rule,) = sopsconfig.load(initrepo.root).rules_for("credentials/staging/_stack.yaml")
    assert rule.path_regex == r"^credentials/staging/[^/]+\.yaml$"
    assert rule.encrypted_regex == sopsconfig.ENCRYPTED_REGEX
    assert rule.recipients == {f"age:{initrepo.recipient}"}
    # The comments of the template survive the edit.
    assert (initrepo.root / ".sops.yaml").read_text().startswith("# sops creation rules")

    on_disk = yaml.safe_load((initrepo.root / "credentials/staging/_stack.yaml").read_text())
    assert on_disk["encryption_master_key"].startswith("ENC[AES256_GCM,")
    assert on_disk["signing_keys"][0]["private_jwk"].startswith("ENC[AES256_GCM,")
    document = initrepo.decrypt("credentials/staging/_stack.yaml")
    assert document["stack"] == "staging" and document["endpoints"] == [STACK_ENDPOINT]
    (signing,) = document["signing_keys"]
    assert (signing["kid"], signing["state"], signing["created"]) == (
        "staging-sign-2026-11",
        "active",
        "2026-11-27",
    )
    key = ECKey.import_key(json.loads(signing["private_jwk"]))
    assert key.as_dict(private=True)["crv"] == "P-256" and key.is_private
    assert len(base64.b64decode(document["encryption_master_key"], validate=True)) == 32
    # Neither secret exists in clear anywhere under the repository or the home directory.
    secrets = [document["encryption_master_key"], json.loads(signing["private_jwk"])["d"]]
    for tree in (initrepo.root, initrepo.home):
        for path in (p for p in tree.rglob("*") if p.is_file()):
            assert not any(s.encode() in path.read_bytes() for s in secrets), path

    settings = _settings(initrepo, "staging")
    assert (settings.regions, settings.production) == (("eu-west-1",), False)
    assert settings.hosted_zone_id == deploy_config.PLACEHOLDER_ZONE
    proc = initrepo.run("validate")
    assert (proc.returncode, proc.stdout) == (0, "ok: 1 file(s) validated, no findings\n")


def test_several_regions_make_a_production_stack(initrepo: KeyRepo) -> None:
    add_stack(initrepo, "prod", "--region", "eu-west-1", "--region", "us-east-1")
    settings = _settings(initrepo, "prod")
    assert (settings.regions, settings.production) == (("eu-west-1", "us-east-1"), True)
    assert settings.throttle is not None and settings.throttle.rate_limit == 2000


def _refusal(repo: KeyRepo, *args: str) -> tuple[int, str]:
    before = (repo.root / ".sops.yaml").read_bytes()
    proc = repo.run("stack", "add", *args)
    assert proc.stdout == ""
    assert (repo.root / ".sops.yaml").read_bytes() == before
    assert _changed(repo) == []
    return proc.returncode, proc.stderr.strip()


def test_the_committed_test_identity_is_refused_for_a_real_stack(initrepo: KeyRepo) -> None:
    code, error = _refusal(initrepo, "prod", "--age", initrepo.recipient, "--age",
                           age.TEST_ONLY_RECIPIENT)  # fmt: skip
    assert code == 1
    assert error == (
        f"error: {age.TEST_ONLY_RECIPIENT} is the committed TEST-ONLY identity, whose private key "
        "anyone can read; stack prod must not be encrypted to it (rule dev-key-in-real-stack). "
        "Make a key of your own with keyops keygen --out FILE and pass its recipient."
    )


def test_a_test_recipient_of_the_settings_is_refused_too(keyrepo: KeyRepo) -> None:
    # The sample repository lists its own identity as the test identity of the dev stack.
    code, error = _refusal(keyrepo, "prod", "--age", keyrepo.recipient)
    assert code == 1
    assert f"error: {keyrepo.recipient} is the committed TEST-ONLY identity" in error


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ("Prod", "--age", "RECIPIENT"),
            "error: 'Prod' is not a valid stack name. Use 2-31 characters of lowercase letters, "
            "digits and '-', starting with a letter (it names credentials/<stack>/ and the "
            "Pulumi stack).",
        ),
        (
            ("p", "--age", "RECIPIENT"),
            "error: 'p' is not a valid stack name.",
        ),
        (
            ("prod", "--age", "age1notarecipient"),
            "error: --age age1notarecipient is not a valid age recipient. An age recipient is the "
            "age1… line that keyops keygen (or age-keygen) printed.",
        ),
        (
            ("prod", "--age", "RECIPIENT", "--kms", "alias/keyops"),
            "error: --kms 'alias/keyops' is not an AWS KMS key ARN. Use "
            "arn:aws:kms:REGION:ACCOUNT:key/ID or arn:aws:kms:REGION:ACCOUNT:alias/NAME.",
        ),
        (
            ("prod", "--age", "RECIPIENT", "--region", "eu-west-1", "--region", "mars-1"),
            "error: stacks/Pulumi.prod.yaml has 1 invalid setting(s): keyops:regions has invalid "
            "AWS region names ['mars-1'] (like eu-west-1).",
        ),
        (
            ("prod", "--age", "RECIPIENT", "--endpoint", "keys.example.com"),
            "error: the policy engine refuses this change to credentials/prod/_stack.yaml; "
            "nothing was written.",
        ),
    ],
)
def test_bad_arguments_are_refused_before_anything_is_written(
    initrepo: KeyRepo, args: tuple[str, ...], expected: str
) -> None:
    argv = [initrepo.recipient if a == "RECIPIENT" else a for a in args]
    code, error = _refusal(initrepo, *argv)
    assert code in (1, 2)
    assert error.startswith(expected), error
    assert not (initrepo.root / "credentials" / argv[0]).exists()


def test_an_existing_stack_is_refused(initrepo: KeyRepo) -> None:
    add_stack(initrepo, "staging")
    initrepo.commit("staging")
    code, error = _refusal(initrepo, "staging", "--age", initrepo.recipient)
    assert code == 2
    assert error == (
        "error: stack 'staging' already exists (credentials/staging/). Known stacks: staging. "
        "Add clients to it with keyops client add."
    )


def test_a_rule_that_already_covers_the_stack_is_refused(initrepo: KeyRepo) -> None:
    (initrepo.root / ".sops.yaml").write_text(
        "creation_rules:\n  - path_regex: ^credentials/\n    age: " + initrepo.recipient + "\n"
    )
    initrepo.commit("a catch-all rule")
    code, error = _refusal(initrepo, "staging", "--age", initrepo.recipient)
    assert code == 2
    assert error == (
        "error: .sops.yaml creation rule #1 (path_regex '^credentials/') already matches the "
        "files of stack 'staging'. sops applies the first rule that matches; narrow or remove "
        "that rule so each stack has exactly one, then run keyops stack add again."
    )


def test_a_placeholder_rule_for_the_stack_gets_the_new_recipients(keyrepo: KeyRepo) -> None:
    # Like this repository's .sops.yaml: a commented prod rule written before credentials/prod/.
    placeholder = age.generate().recipient
    text = sops_rules({"dev": [keyrepo.recipient]}) + (
        "  # prod: replace with your real recipients before creating credentials/prod/.\n"
        "  - path_regex: ^credentials/prod/[^/]+\\.yaml$\n"
        "    encrypted_regex: ^(key|secret|encryption_master_key|private_jwk)$\n"
        "    kms: arn:aws:kms:eu-west-1:111111111111:alias/keyops-prod\n"
        f"    age: {placeholder}\n"
    )
    (keyrepo.root / ".sops.yaml").write_text(text)
    keyrepo.commit("placeholder prod rule")
    mine = age.generate().recipient
    proc = keyrepo.run("stack", "add", "prod", "--age", mine, "--age", keyrepo.recipient)
    # the sample repository's own identity is its test identity: allowed for dev only
    assert proc.returncode == 1
    # Without a key for one of the recipients here, what sops wrote cannot be verified.
    proc = keyrepo.run("stack", "add", "prod", "--age", mine)
    assert proc.returncode == 2
    assert "no key here can decrypt credentials/prod/_stack.yaml" in proc.stderr
    assert _changed(keyrepo) == []
    fresh = age.generate()
    identities = keyrepo.identity_file.read_bytes() + fresh.key_file(dt.datetime(2026, 11, 27))
    proc = keyrepo.run(
        "stack", "add", "prod", "--age", fresh.recipient, env={"SOPS_AGE_KEY": identities.decode()}
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[1] == (
        "  .sops.yaml: replaced the recipients of the existing creation rule #2 (path_regex "
        f"'^credentials/prod/[^/]+\\\\.yaml$'), decryptable by {fresh.recipient}"
    )
    after = (keyrepo.root / ".sops.yaml").read_text()
    assert "# prod: replace with your real recipients" in after
    assert placeholder not in after and "kms:" not in after
    (rule,) = sopsconfig.load(keyrepo.root).rules_for("credentials/prod/x.yaml")
    assert rule.recipients == {f"age:{fresh.recipient}"}


def test_a_kms_key_that_cannot_be_reached_leaves_nothing_behind(initrepo: KeyRepo) -> None:
    before = (initrepo.root / ".sops.yaml").read_bytes()
    arn = "arn:aws:kms:eu-west-1:111111111111:alias/keyops-prod"
    proc = initrepo.run(
        "stack", "add", "prod", "--age", initrepo.recipient, "--kms", arn,
        env={
            "AWS_ACCESS_KEY_ID": "AKIAEXAMPLEEXAMPLE", "AWS_SECRET_ACCESS_KEY": "not-a-secret",
            "AWS_REGION": "eu-west-1", "AWS_ENDPOINT_URL": closed_url(), "AWS_MAX_ATTEMPTS": "1",
        },
    )  # fmt: skip
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == (
        f"error: credentials/prod/_stack.yaml: sops could not use the AWS KMS key {arn}. Set AWS "
        "credentials (AWS_PROFILE, or a role) allowed kms:Encrypt and kms:Decrypt on that key, "
        "and check its ARN in .sops.yaml.\n"
    )
    assert (initrepo.root / ".sops.yaml").read_bytes() == before
    assert _changed(initrepo) == []
    assert not (initrepo.root / "credentials" / "prod").exists()


def test_existing_settings_are_kept_unless_regions_are_asked_for(initrepo: KeyRepo) -> None:
    settings = initrepo.root / "stacks" / "Pulumi.qa.yaml"
    settings.write_text("config:\n  keyops:regions: [ap-southeast-1]\n")
    initrepo.commit("qa settings first")
    code, error = _refusal(initrepo, "qa", "--age", initrepo.recipient, "--region", "eu-west-1")
    assert code == 2
    assert error == (
        "error: stacks/Pulumi.qa.yaml already exists, so --region cannot be applied. Leave out "
        "--region to keep it, or change it with pulumi config set --stack qa keyops:regions …"
    )
    proc = initrepo.run("stack", "add", "qa", "--age", initrepo.recipient)
    assert proc.returncode == 0, proc.stderr
    assert "  stacks/Pulumi.qa.yaml: kept as it is" in proc.stdout.splitlines()
    assert settings.read_text() == "config:\n  keyops:regions: [ap-southeast-1]\n"


# -- stack list: the workflows' matrix ---------------------------------------------------------


@pytest.fixture
def three_stacks(initrepo: KeyRepo) -> KeyRepo:
    add_stack(initrepo, "prod", "--region", "eu-west-1", "--region", "us-east-1")
    add_stack(initrepo, "staging")
    add_stack(initrepo, "qa")
    (initrepo.root / "stacks" / "Pulumi.qa.yaml").unlink()  # not deployable
    initrepo.commit("three stacks")
    return initrepo


def test_stack_list_puts_non_production_stacks_first(three_stacks: KeyRepo) -> None:
    proc = three_stacks.run("stack", "list", key=False)
    assert (proc.returncode, proc.stdout) == (0, "qa\nstaging\nprod\n")
    proc = three_stacks.run("stack", "list", "--deployable", "--format", "json", key=False)
    assert json.loads(proc.stdout) == ["staging", "prod"]
    proc = three_stacks.run("stack", "list", "--only", "prod, qa", key=False)
    assert proc.stdout == "qa\nprod\n"
    proc = three_stacks.run("stack", "list", "--only", "prdo", key=False)
    assert proc.returncode == 2
    assert proc.stderr == (
        "error: stack 'prdo' does not exist (no credentials/prdo/ directory). Did you mean 'prod'? "
        "Known stacks: prod, qa, staging.\n"
    )
    proc = three_stacks.run("stack", "list", "--github-output", key=False)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: --github-output needs $GITHUB_OUTPUT")


def _workflow_line(workflow: str, job: str) -> str:
    (step,) = [s for s in load(workflow)["jobs"][job]["steps"] if s.get("id") == "list"]
    return str(step["run"])


def _run_line(repo: KeyRepo, line: str, tmp_path: Path, **env: str) -> list[str]:
    outputs = tmp_path / "github_output"
    outputs.write_text("earlier=1\n")
    argv = [env.get(w.strip("$"), w) for w in shlex.split(line)][1:]
    proc = repo.run(*argv, key=False, env={"GITHUB_OUTPUT": str(outputs)})
    assert proc.returncode == 0, proc.stderr
    assert stat.S_ISREG(outputs.stat().st_mode)
    return outputs.read_text().splitlines()


def test_the_workflow_listing_writes_the_matrix_in_deploy_order(
    three_stacks: KeyRepo, tmp_path: Path
) -> None:
    line = _workflow_line("pr.yml", "stacks")
    assert line == "keyops stack list --deployable --github-output"
    assert _run_line(three_stacks, line, tmp_path) == ["earlier=1", 'stacks=["staging", "prod"]']


def test_the_deploy_listing_takes_what_hygiene_dispatches(
    three_stacks: KeyRepo, tmp_path: Path
) -> None:
    line = _workflow_line("deploy.yml", "stacks")
    assert line == 'keyops stack list --deployable --only "$STACK" --github-output'
    for stacks, expected in (
        (["prod", "staging"], '["staging", "prod"]'),
        (["prod"], '["prod"]'),
        (["all"], '["staging", "prod"]'),
    ):
        lines = _run_line(three_stacks, line, tmp_path, STACK=dispatch_input(stacks))
        assert lines[-1] == f"stacks={expected}"


def test_an_empty_repository_lists_no_stack(initrepo: KeyRepo, tmp_path: Path) -> None:
    line = _workflow_line("pr.yml", "stacks")
    assert _run_line(initrepo, line, tmp_path) == ["earlier=1", "stacks=[]"]
