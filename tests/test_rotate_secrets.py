"""A secret never travels through argv or the environment, and never lands outside sops.

Every process keyops starts is observed: the keyops process itself through /proc while it waits
for its stdin, and every sops and git process through recording wrappers that log their argv
and environment and then run the real binary.
"""

from __future__ import annotations

import stat
import subprocess
import sys
import time
from pathlib import Path

from keyops.store import sample
from keyops.store.sops import find_binary
from support.repo import KeyRepo

WRAPPER = """#!/bin/sh
{{ printf '%s\\0' "$0" "$@"; printf '\\n--env--\\n'; env; printf '\\n--end--\\n'; }} >> {log}
exec {real} "$@"
"""


def _wrap(directory: Path, name: str, real: str, log: Path) -> Path:
    path = directory / name
    path.write_text(WRAPPER.format(log=log, real=real))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_rotate_with_pr_never_exposes_the_pair(keyrepo: KeyRepo, tmp_path: Path) -> None:
    key, secret = sample.pusher_hex(), sample.pusher_hex()
    log = tmp_path / "spawned.log"
    bindir = tmp_path / "bin"
    bindir.mkdir()
    sops = _wrap(bindir, "sops", find_binary(), log)
    real_git = subprocess.run(["which", "git"], capture_output=True, text=True).stdout.strip()
    _wrap(bindir, "git", real_git, log)
    env = keyrepo.env(KEYOPS_SOPS=str(sops), PATH=f"{bindir}:/usr/bin:/bin")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "keyops",
            "rotate",
            "--stack",
            "dev",
            "--client",
            "ios",
            "--now",
            "2026-11-27",
            "--pr",
        ],
        cwd=keyrepo.root,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Before the pair is sent, read what the process was started with.
    time.sleep(0.3)
    cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
    environ = Path(f"/proc/{proc.pid}/environ").read_bytes()
    out, err = proc.communicate(f"{key}\n{secret}\n", timeout=120)
    assert proc.returncode == 0, err
    spawned = log.read_text()
    assert spawned.count("--env--") >= 5  # sops decrypts, encrypt, verify; git for the PR
    assert "encrypt" in spawned and "commit" in spawned
    for value in (key, secret):
        assert value.encode() not in cmdline and value.encode() not in environ
        assert value not in spawned, "a secret reached a child's argv or environment"
        assert value not in out + err
        for path in keyrepo.root.rglob("*"):
            if path.is_file():
                assert value.encode() not in path.read_bytes(), f"plaintext in {path}"
    assert keyrepo.decrypt("credentials/dev/ios.yaml")["credentials"][0]["key"] == key


def test_generated_app_auth_secret_is_never_printed(keyrepo: KeyRepo, tmp_path: Path) -> None:
    proc = keyrepo.run(
        "app-auth", "rotate", "--stack", "dev", "--client", "web", "--now", "2026-11-27"
    )
    assert proc.returncode == 0, proc.stderr
    secret = keyrepo.decrypt("credentials/dev/web.yaml")["app_auth"][0]["secret"]
    assert secret not in proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[1] == (
        "  app_auth web-build-2026b: new active secret (generated, 32 random bytes)"
    )
    existing = tmp_path / "taken.txt"
    existing.write_text("keep me")
    proc = keyrepo.run(
        "app-auth",
        "rotate",
        "--stack",
        "dev",
        "--client",
        "web",
        "--secret-out",
        str(existing),
        "--allow-dirty",
    )
    assert proc.returncode == 2
    assert proc.stderr == (
        f"error: {existing} already exists. Name a new file; keyops never overwrites it.\n"
    )
    assert existing.read_text() == "keep me"
