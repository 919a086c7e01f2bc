"""Repository hygiene files: the pre-commit hooks and the sops diff driver in .gitattributes.

The hooks are all ``repo: local`` and run the project's own tools; the keyops hook is run here
in the same form on a real repository. The diff driver is exercised on a real git repository
with real sops files: with the documented one-time setting, ``git diff`` shows the decrypted
change; without it, the encrypted text.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

import yaml

from support.repo import KeyRepo

PROJECT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
HOOKS = {"keyops-validate", "ruff", "mypy", "check-github-workflows", "zizmor"}


def hooks() -> list[dict[str, object]]:
    config = yaml.safe_load((PROJECT / ".pre-commit-config.yaml").read_text())
    assert [repo["repo"] for repo in config["repos"]] == ["local"]
    return list(config["repos"][0]["hooks"])


def test_pre_commit_hooks_are_local_and_run_project_tools() -> None:
    found = hooks()
    assert {h["id"] for h in found} == HOOKS
    for hook in found:
        assert hook["language"] == "system", hook["id"]
        program = shlex.split(str(hook["entry"]))[0]
        # Entries name the virtualenv's tools, which `make install` creates.
        assert program.startswith(".venv/bin/"), hook["id"]
        assert (VENV_BIN / Path(program).name).exists(), program
    entries = {h["id"]: h["entry"] for h in found}
    assert entries["keyops-validate"] == ".venv/bin/keyops validate --no-decrypt"
    assert "--offline" in str(entries["zizmor"])
    assert "--builtin-schema vendor.github-workflows" in str(entries["check-github-workflows"])


def test_the_keyops_hook_passes_a_clean_repo_and_blocks_a_plaintext_secret(
    keyrepo: KeyRepo,
) -> None:
    (hook,) = [h for h in hooks() if h["id"] == "keyops-validate"]
    argv = shlex.split(str(hook["entry"]))[1:]
    proc = keyrepo.run(*argv, key=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "ok: 5 file(s) checked without decryption, no findings\n"
    doc = keyrepo.decrypt("credentials/dev/web.yaml")
    keyrepo.write_doc("credentials/dev/web.yaml", doc, encrypt=False)
    proc = keyrepo.run(*argv, key=False)
    assert proc.returncode == 1
    assert "credentials/dev/web.yaml" in proc.stdout
    assert "error[encrypted]" in proc.stdout


def _change_web(keyrepo: KeyRepo) -> None:
    (keyrepo.root / ".gitattributes").write_text((PROJECT / ".gitattributes").read_text())
    keyrepo.commit("diff driver")
    doc = keyrepo.decrypt("credentials/dev/web.yaml")
    doc["credentials"][0]["min_app_version"] = "2.1.0"
    keyrepo.write_doc("credentials/dev/web.yaml", doc)


def _changed_lines(diff: str) -> list[str]:
    return [
        line
        for line in diff.splitlines()
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]


def test_the_sops_diff_driver_shows_the_decrypted_change(keyrepo: KeyRepo) -> None:
    _change_web(keyrepo)
    keyrepo.git("config", "diff.sopsdiffer.textconv", "sops decrypt")
    keyrepo.extra_env["PATH"] = f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"
    diff = keyrepo.git("diff", "--", "credentials/dev/web.yaml")
    # sops re-encrypts every value on write; decrypted, only the real change remains.
    assert _changed_lines(diff) == ["+      min_app_version: 2.1.0"]
    assert "ENC[" not in diff


def test_without_the_setting_git_shows_the_encrypted_text(keyrepo: KeyRepo) -> None:
    _change_web(keyrepo)
    diff = keyrepo.git("diff", "--", "credentials/dev/web.yaml")
    changed = _changed_lines(diff)
    assert any("ENC[AES256_GCM," in line for line in changed)
    assert any("min_app_version" in line for line in changed)
