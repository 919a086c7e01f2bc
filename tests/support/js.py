"""Node, npm and the JS packages of the repository (clients/js, tests/e2e/browser) for the tests.

Each package is installed with ``npm ci`` from its committed lockfile, only when node_modules
is missing or older than the lockfile, one npm at a time per package across pytest-xdist
workers. Node and npm are required: without them a test fails with the command that installs
them, never skips.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.repo import PROJECT

JS = PROJECT / "clients" / "js"
INSTALL = (
    "Install Node.js 20 or newer with npm ('apt-get install -y nodejs npm' where the "
    "distribution's nodejs is 20+; Debian 12's own is 18, too old), then run the tests again "
    "('make test')."
)
SLOW = 600  # seconds for npm on a busy 2-core machine


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"{name} is not installed: the JS client cannot be tested. {INSTALL}", pytrace=False
        )
    return path


def node() -> str:
    path = tool("node")
    version = subprocess.run([path, "--version"], capture_output=True, text=True, check=False)
    match = re.match(r"v(\d+)\.", version.stdout.strip())
    if match is None or int(match.group(1)) < 20:
        pytest.fail(
            f"node {version.stdout.strip()} is too old for the JS client. {INSTALL}", pytrace=False
        )
    return path


def run(
    args: list[str], *, cwd: Path = JS, timeout: float = SLOW, **kw: Any
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
        **kw,
    )


def must(
    proc: subprocess.CompletedProcess[str], what: str, package: Path = JS
) -> subprocess.CompletedProcess[str]:
    if proc.returncode != 0:
        pytest.fail(
            f"{what} failed (exit {proc.returncode}) in {package}:\n{proc.stdout}\n{proc.stderr}",
            pytrace=False,
        )
    return proc


@contextlib.contextmanager
def npm_lock(package: Path = JS) -> Iterator[None]:
    """One npm at a time in ``package``, across pytest-xdist workers."""
    with (package / ".keyops-npm.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def digest(package: Path, *paths: Path) -> str:
    h = hashlib.sha256()
    for path in paths:
        h.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def ensure_installed(package: Path = JS) -> None:
    """``npm ci`` from the committed lockfile, unless node_modules already matches it."""
    node()
    npm = tool("npm")
    stamp = package / "node_modules" / ".keyops-lockfile-sha256"
    want = digest(package, package / "package-lock.json", package / "package.json")
    with npm_lock(package):
        if stamp.exists() and stamp.read_text() == want:
            return
        must(run([npm, "ci", "--no-audit", "--no-fund"], cwd=package), "npm ci", package)
        stamp.write_text(want)


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
    want = digest(JS, *sources)
    with npm_lock():
        if stamp.exists() and json.loads(stamp.read_text())["sources"] == want:
            output: str = json.loads(stamp.read_text())["output"]
            return output
        proc = must(run([tool("npm"), "run", "build"]), "npm run build")
        stamp.write_text(json.dumps({"sources": want, "output": proc.stdout}))
        return proc.stdout
