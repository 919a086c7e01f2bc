"""The layering of the package (docs/architecture.md) holds: import-linter's contracts pass."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from support.repo import PROJECT


def test_import_contracts_are_kept() -> None:
    lint = Path(sys.executable).parent / "lint-imports"
    assert lint.exists(), "import-linter is missing: run make install (it is a dev extra)"
    proc = subprocess.run(
        [str(lint), "--no-cache"], cwd=PROJECT, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Contracts: 3 kept, 0 broken." in proc.stdout


def test_no_git_call_outside_the_git_module() -> None:
    offenders = [
        path.relative_to(PROJECT).as_posix()
        for path in (PROJECT / "src" / "keyops").rglob("*.py")
        if '"git"' in path.read_text() and path.name != "git.py"
    ]
    assert offenders == []
