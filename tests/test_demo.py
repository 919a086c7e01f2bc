"""`make demo`'s script runs the whole served loop and exits 0 (README's first command)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from support.net import free_port
from support.repo import PROJECT, clean_env


def test_demo_runs_the_served_loop(tmp_path: Path) -> None:
    env = clean_env(tmp_path)
    env["SOPS_AGE_KEY_FILE"] = str(PROJECT / "keys" / "dev-TEST-ONLY.agekey")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["KEYOPS_DEMO_PORT"] = str(free_port())
    env["TMPDIR"] = str(tmp_path)
    before = {p.name: p.read_bytes() for p in (PROJECT / "credentials" / "dev").iterdir()}
    proc = subprocess.run(
        ["bash", str(PROJECT / "scripts" / "demo.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    # The first fetch gets the active key, the one after the rotation the new pending one.
    first, _, second = out.partition("== 11.")
    assert "credential_id  ios-2026-11\n" in first
    assert "credential_id  ios-2026-11-2\n" in second
    assert "bundle_version 2\n" in second
    assert "demo finished" in out
    # Committed files are never touched, and the scratch directory is removed.
    after = {p.name: p.read_bytes() for p in (PROJECT / "credentials" / "dev").iterdir()}
    assert after == before
    assert not list(tmp_path.glob("keyops-demo.*"))
