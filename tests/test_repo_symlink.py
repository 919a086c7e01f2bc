"""A ``credentials/`` directory that is a symlink is refused by every command, before any read.

keyops refuses a symlinked credential file (git stores only the link's target text, so CI would
see something else than the working tree); a symlinked directory is the same hole one level up,
and would let a write (rotate, promote...) land wherever the link points.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from support.repo import KeyRepo


def _args(tmp_path: Path) -> dict[str, list[str]]:
    pair = tmp_path / "pair.txt"  # a new key and secret for rotate (written by the test)
    return {
        "validate": ["validate"],
        "check": ["check", "--now", "2026-11-27"],
        "status": ["status", "--now", "2026-11-27"],
        "rotate": [
            *("rotate", "--stack", "dev", "--client", "android", "--now", "2026-12-02"),
            *("--from-file", str(pair)),
        ],
        "build": ["build", "--stack", "dev", "--out", str(tmp_path / "bundle")],
        "export": ["export", "--stack", "dev", "--client", "android", "--format", "json"],
        "client-config": ["client-config", "--stack", "dev", "--client", "ios"],
        "history": ["history", "--stack", "dev", "--client", "ios"],
    }


COMMANDS = list(_args(Path("/nonexistent")))


def _snapshot(directory: Path) -> dict[str, bytes]:
    return {
        p.relative_to(directory).as_posix(): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize("where", ["outside", "inside"])
@pytest.mark.parametrize("command", COMMANDS)
def test_a_symlinked_credentials_directory_is_refused(
    keyrepo: KeyRepo, tmp_path: Path, command: str, where: str
) -> None:
    credentials = keyrepo.root / "credentials"
    target = tmp_path / "elsewhere" if where == "outside" else keyrepo.root / "real-credentials"
    shutil.move(credentials, target)
    os.symlink(target, credentials)
    before = _snapshot(target)
    (tmp_path / "pair.txt").write_text("0123456789abcdef0123\n" + "a1b2c3d4e5f6a7b8c9d0\n")
    proc = keyrepo.run(*_args(tmp_path)[command])
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    assert proc.stderr == (
        f"error: {credentials} is a symlink (to {target}); keyops refuses a symlinked "
        "credentials directory, as it refuses a symlinked credential file. Replace the link "
        "with the directory itself.\n"
    )
    assert _snapshot(target) == before
    assert not (tmp_path / "bundle").exists()


def test_a_real_credentials_directory_is_still_found_from_below(keyrepo: KeyRepo) -> None:
    proc = keyrepo.run("validate", cwd=keyrepo.root / "credentials" / "dev")
    assert proc.returncode == 0, proc.stderr
