"""make preview / make deploy: the pulumi CLI with the policy pack, or a clear install message."""

from __future__ import annotations

import os
import subprocess

import pytest

from support.repo import PROJECT


def make(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("target", ["preview", "deploy"])
def test_missing_cli_stops_with_install_message(target: str) -> None:
    proc = make("-s", target, "STACK=prod", "PULUMI=/nonexistent/pulumi")
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.splitlines()[0] == (
        "error: the pulumi CLI (/nonexistent/pulumi) is not installed. Install it with "
        "'curl -fsSL https://get.pulumi.com | sh' (or 'brew install pulumi'), log in to your "
        "state backend ('pulumi login s3://BUCKET' or 'pulumi login'), then run make "
        f"{target} STACK=prod again. See docs/deploy.md."
    )


@pytest.mark.parametrize(
    ("target", "command"),
    [
        ("preview", "preview --stack prod --policy-pack policies/infra --diff"),
        ("deploy", "up --stack prod --policy-pack policies/infra --yes"),
    ],
)
def test_targets_wrap_pulumi_with_the_policy_pack(target: str, command: str) -> None:
    # -n prints the recipes without running them (nothing is installed or deployed).
    proc = make(
        "-n",
        target,
        "STACK=prod",
        "PULUMI=/opt/pulumi/bin/pulumi",
        "PULUMI_ARGS=--yes" if target == "deploy" else "PULUMI_ARGS=",
    )
    assert proc.returncode == 0, proc.stderr
    line = next(
        x
        for x in proc.stdout.splitlines()
        if "/opt/pulumi/bin/pulumi " in x and "command -v" not in x
    )
    assert line.rstrip().endswith(f"/opt/pulumi/bin/pulumi {command}")
    # Only the dev stack gets the committed TEST-ONLY key.
    assert "dev-TEST-ONLY" not in line


def test_dev_stack_uses_the_test_only_key_by_default() -> None:
    proc = make("-n", "preview", "STACK=dev", "PULUMI=/opt/pulumi/bin/pulumi")
    line = next(x for x in proc.stdout.splitlines() if " preview --stack dev " in x)
    assert 'SOPS_AGE_KEY_FILE="${SOPS_AGE_KEY_FILE:-' in line
    assert "keys/dev-TEST-ONLY.agekey" in line


def test_make_shell_puts_keyops_and_sops_on_path_with_the_dev_key() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAKE", "SOPS_"))}
    env.update(SHELL="/bin/sh", PATH="/usr/bin:/bin")
    proc = subprocess.run(
        ["make", "--no-print-directory", "-s", "shell"],
        cwd=PROJECT,
        env=env,
        input='command -v keyops\ncommand -v sops\necho "$SOPS_AGE_KEY_FILE"\nkeyops --version\n',
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    bin_dir = PROJECT / ".venv" / "bin"
    assert proc.stdout.splitlines() == [
        f"keyops and sops are on PATH; SOPS_AGE_KEY_FILE={PROJECT / 'keys/dev-TEST-ONLY.agekey'}. "
        "Type exit to leave.",
        str(bin_dir / "keyops"),
        str(bin_dir / "sops"),
        str(PROJECT / "keys" / "dev-TEST-ONLY.agekey"),
        "keyops 0.1.0",
    ]
