"""``keyops doctor``: one screen of what works on this machine, on real repositories and keys."""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path

import pytest

from keyops.store import age
from support.doctor import BASE_PATH, doctor_lines, run_doctor
from support.newrepo import add_client, add_stack
from support.repo import PROJECT, KeyRepo

VENV_BIN = Path(sys.executable).parent


@pytest.fixture
def two_stacks(initrepo: KeyRepo) -> KeyRepo:
    """staging (key in sops' default key file) and prod (a second identity, in a key file)."""
    add_stack(initrepo, "staging")
    add_client(initrepo, "staging", "ios", "ios", "served")
    prod = age.generate()
    keyfile = initrepo.home / "prod.agekey"
    keyfile.write_bytes(prod.key_file(dt.datetime(2026, 11, 27)))
    keyfile.chmod(0o600)
    initrepo.extra_env["SOPS_AGE_KEY_FILE"] = str(keyfile)
    proc = initrepo.run("stack", "add", "prod", "--age", prod.recipient)
    assert proc.returncode == 0, proc.stderr
    initrepo.git("config", "diff.sopsdiffer.textconv", "sops decrypt")
    initrepo.commit("two stacks")
    return initrepo


def test_everything_a_rotation_needs_works(two_stacks: KeyRepo) -> None:
    path = f"{VENV_BIN}{os.pathsep}{BASE_PATH}"
    code, out = run_doctor(two_stacks, path=path)
    assert code == 0, out
    assert out[0] == f"keyops doctor: {two_stacks.root}"
    assert doctor_lines(out, "keyops") == [("ok", f"0.1.0, on PATH at {VENV_BIN / 'keyops'}")]
    ((status, text),) = doctor_lines(out, "sops")
    assert status == "ok" and text.startswith("3.11.")
    assert doctor_lines(out, "repo") == [("ok", f"repository {two_stacks.root} (branch main)")]
    keys = doctor_lines(out, "keys")
    assert [s for s, _ in keys] == ["ok", "ok"]
    assert keys[0][1].startswith(f"SOPS_AGE_KEY_FILE={two_stacks.home / 'prod.agekey'}: 1 identity")
    assert keys[1][1].startswith(f"{two_stacks.identity_file}: 1 identity (age1")
    stacks = doctor_lines(out, "stack")
    assert [s for s, _ in stacks] == ["ok", "ok"]
    assert stacks[0][1].startswith("prod: decrypts here with age1")
    assert stacks[1][1].endswith("; recipients match .sops.yaml")
    assert doctor_lines(out, "diff") == [("ok", "git diff decrypts through 'sops decrypt'")]
    assert out[-1] == (
        "result: a rotation works here (stack(s) prod, staging); 2 warning(s)"
    )  # pulumi and gh are not installed on the test machine


def test_a_stack_without_a_key_here_is_named_not_failed(two_stacks: KeyRepo) -> None:
    del two_stacks.extra_env["SOPS_AGE_KEY_FILE"]
    code, out = run_doctor(two_stacks)
    assert code == 0, out
    stacks = doctor_lines(out, "stack")
    assert stacks[0][0] == "skip"
    assert stacks[0][1].startswith("prod: no key here decrypts it (encrypted to age1")
    assert stacks[0][1].endswith("); its key holders and CI check it")
    assert out[-1].startswith("result: a rotation works here (stack(s) staging)")
    # ...unless the rotation is planned in that stack.
    code, out = run_doctor(two_stacks, "--stack", "prod")
    assert code == 1
    assert doctor_lines(out, "stack")[0][0] == "FAIL"
    assert out[-1].startswith("result: 1 problem(s) stop a rotation here (FAIL lines)")


def test_several_identities_in_one_key_file_and_loose_permissions(
    two_stacks: KeyRepo, tmp_path: Path
) -> None:
    both = tmp_path / "both.agekey"
    both.write_text(
        two_stacks.identity_file.read_text() + (two_stacks.home / "prod.agekey").read_text()
    )
    both.chmod(0o644)
    two_stacks.extra_env["SOPS_AGE_KEY_FILE"] = str(both)
    code, out = run_doctor(two_stacks)
    assert code == 0, out
    keys = doctor_lines(out, "keys")
    assert keys[0][1].startswith(f"SOPS_AGE_KEY_FILE={both}: 2 identities (age1")
    assert ("warn", f"SOPS_AGE_KEY_FILE={both}: readable by other users; chmod 600 {both}") in keys
    for secret in (two_stacks.identity_file.read_text() + both.read_text()).split():
        if secret.startswith("AGE-SECRET-KEY-"):
            assert secret not in "\n".join(out)


def test_a_key_file_that_is_not_there_fails(two_stacks: KeyRepo, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.agekey"
    two_stacks.extra_env["SOPS_AGE_KEY_FILE"] = str(missing)
    code, out = run_doctor(two_stacks)
    assert code == 1
    assert ("FAIL", f"SOPS_AGE_KEY_FILE={missing}: file not found; point it at your age key "
            "file") in doctor_lines(out, "keys")  # fmt: skip


def test_files_encrypted_to_other_recipients_than_the_rule_fail(two_stacks: KeyRepo) -> None:
    sops_yaml = two_stacks.root / ".sops.yaml"
    other = age.generate().recipient
    sops_yaml.write_text(sops_yaml.read_text().replace(two_stacks.recipient, other))
    code, out = run_doctor(two_stacks, "--stack", "staging")
    assert code == 1
    (staging,) = [t for s, t in doctor_lines(out, "stack") if t.startswith("staging")]
    assert staging.startswith("staging: decrypts here, but credentials/staging/")
    assert (
        staging.endswith(
            "is encrypted to other recipients than its .sops.yaml rule; re-encrypt it (sops "
            "updatekeys credentials/staging/_stack.yaml)"
        )
        or "is encrypted to other recipients" in staging
    )


def test_missing_tools_and_settings_are_warnings_with_the_fix(initrepo: KeyRepo) -> None:
    code, out = run_doctor(initrepo)
    assert code == 0, out
    assert doctor_lines(out, "keyops")[0][0] == "warn"
    assert doctor_lines(out, "stack") == [
        ("warn", "no stack yet: keyops stack add NAME --age RECIPIENT")
    ]
    assert doctor_lines(out, "diff") == [
        (
            "warn",
            'git diff shows ciphertext: run git config diff.sopsdiffer.textconv "sops decrypt"',
        )
    ]
    assert doctor_lines(out, "pulumi")[0][0] == "warn"
    assert "curl -fsSL https://get.pulumi.com | sh" in doctor_lines(out, "pulumi")[0][1]
    assert doctor_lines(out, "gh") == [
        (
            "warn",
            "not on PATH: needed for --pr to open the pull request (without it keyops prints the "
            "commands)",
        )
    ]
    assert out[-1] == "result: no stack to rotate yet (keyops stack add); 5 warning(s)"


def test_pulumi_and_gh_on_path_are_reported_with_their_version(
    initrepo: KeyRepo, tmp_path: Path
) -> None:
    tools = tmp_path / "tools"
    tools.mkdir()
    for name, version in (("pulumi", "v3.140.0"), ("gh", "gh version 2.63.0 (2024-11-27)")):
        script = tools / name
        script.write_text(f"#!/bin/sh\necho '{version}'\n")
        script.chmod(0o755)
    code, out = run_doctor(initrepo, path=f"{tools}{os.pathsep}{BASE_PATH}")
    assert code == 0
    assert doctor_lines(out, "pulumi") == [("ok", f"v3.140.0 ({tools / 'pulumi'})")]
    assert doctor_lines(out, "gh") == [("ok", f"gh version 2.63.0 (2024-11-27) ({tools / 'gh'})")]


def test_outside_a_repository_the_repository_line_fails(tmp_path: Path, initrepo: KeyRepo) -> None:
    proc = initrepo.run("doctor", cwd=tmp_path, env={"PATH": BASE_PATH})
    assert proc.returncode == 1
    out = proc.stdout.splitlines()
    ((status, text),) = doctor_lines(out, "repo")
    assert status == "FAIL" and text.startswith(f"{tmp_path} is not inside a keyops repository")


# -- --aws without AWS: what is decided before any call (the calls: tests/e2e/test_doctor_aws.py)


def test_aws_without_the_aws_extra_is_one_line_with_the_install_command(
    keyrepo: KeyRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    keyrepo.write_bytes("stacks/Pulumi.dev.yaml", (PROJECT / "stacks/Pulumi.dev.yaml").read_bytes())
    import keyops.cli

    for module in ("doctor_aws", "awsapi"):  # as if never imported in this process
        monkeypatch.delitem(sys.modules, f"keyops.cli.{module}", raising=False)
        monkeypatch.delattr(keyops.cli, module, raising=False)
    monkeypatch.setitem(sys.modules, "boto3", None)  # import boto3 now fails as if not installed
    code, out = run_doctor(keyrepo, "--aws")
    assert code == 1
    assert doctor_lines(out, "aws") == [
        (
            "FAIL",
            "'keyops doctor --aws' needs the 'aws' extra (boto3 is not installed). Install it: "
            "pip install 'keyops[aws]'.",
        )
    ]
    assert out[-1].startswith("result: 1 problem(s) stop a deploy (FAIL lines); ")


def test_aws_names_a_stack_file_that_is_missing_or_invalid(keyrepo: KeyRepo) -> None:
    code, out = run_doctor(keyrepo, "--aws")
    assert code == 0, out
    assert doctor_lines(out, "aws") == [
        (
            "warn",
            "no stacks/Pulumi.<stack>.yaml here, so no AWS prerequisite to check (keyops stack add "
            "NAME writes one)",
        )
    ]
    code, out = run_doctor(keyrepo, "--aws", "--stack", "dev")
    assert code == 1
    assert doctor_lines(out, "aws") == [
        (
            "FAIL",
            "stacks/Pulumi.dev.yaml does not exist. Create it with keyops stack add dev "
            "(docs/deploy.md), or check --stack.",
        )
    ]
    text = (PROJECT / "stacks/Pulumi.dev.yaml").read_text().replace("memoryMb: 256", "memoryMb: 64")
    keyrepo.write_bytes("stacks/Pulumi.dev.yaml", text.encode())
    code, out = run_doctor(keyrepo, "--aws")
    assert code == 1
    assert doctor_lines(out, "aws") == [
        (
            "FAIL",
            "stacks/Pulumi.dev.yaml has 1 invalid setting(s): keyops:lambda.memoryMb must be "
            "between 128 and 10240, got 64. Fix them in stacks/Pulumi.dev.yaml (see "
            "docs/deploy.md, section Settings).",
        )
    ]


def test_endpoint_url_goes_with_aws(keyrepo: KeyRepo) -> None:
    proc = keyrepo.run("doctor", "--endpoint-url", "http://127.0.0.1:9")
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == (
        "error: --endpoint-url goes with --aws. Add --aws, or remove --endpoint-url.\n"
    )
