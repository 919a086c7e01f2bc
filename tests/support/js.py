"""The JS client package (clients/js) and its build, for the tests.

Installing any Node package goes through ``support.npm`` (the one place that runs ``npm ci``);
this module adds what is specific to clients/js: building it once per set of sources. Without
Node.js 20+ and npm a test fails with the command that installs them, never skips.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from support import npm
from support.repo import PROJECT

JS = PROJECT / "clients" / "js"
SLOW = npm.SLOW


def tool(name: str) -> str:
    try:
        return npm.tool(name)
    except npm.Missing as exc:
        pytest.fail(str(exc), pytrace=False)


def node() -> str:
    try:
        return npm.node()
    except npm.Missing as exc:
        pytest.fail(str(exc), pytrace=False)


def run(
    args: list[str], *, cwd: Path = JS, timeout: float = SLOW, **kw: Any
) -> subprocess.CompletedProcess[str]:
    return npm.run(args, cwd=cwd, timeout=timeout, **kw)


def must(
    proc: subprocess.CompletedProcess[str], what: str, package: Path = JS
) -> subprocess.CompletedProcess[str]:
    if proc.returncode != 0:
        pytest.fail(
            f"{what} failed (exit {proc.returncode}) in {package}:\n{proc.stdout}\n{proc.stderr}",
            pytrace=False,
        )
    return proc


def ensure_installed(package: Path = JS) -> None:
    """``npm ci`` from the committed lockfile, unless node_modules already matches it."""
    npm.ensure_installed(package)


def ensure_built() -> str:
    """``npm run build`` in clients/js unless dist/ was built from these very sources; returns
    the build's output."""
    ensure_installed()
    sources = [
        *sorted((JS / "src").glob("*.ts")),
        JS / "scripts" / "build.mjs",
        JS / "package-lock.json",
        JS / "tsconfig.json",
    ]
    stamp = JS / "dist" / ".keyops-build-stamp"
    want = npm.digest(JS, *sources)
    with npm.npm_lock(JS):
        if stamp.exists() and json.loads(stamp.read_text())["sources"] == want:
            output: str = json.loads(stamp.read_text())["output"]
            return output
        proc = must(run([tool("npm"), "run", "build"]), "npm run build")
        stamp.write_text(json.dumps({"sources": want, "output": proc.stdout}))
        return proc.stdout
