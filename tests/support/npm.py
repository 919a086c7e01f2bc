"""Node packages the tests need, installed from their committed lockfiles: the one place that
runs ``npm ci`` (for clients/js, tests/e2e/pusher and tests/e2e/browser).

``ensure_installed(DIR)`` runs ``npm ci`` only when ``DIR/node_modules`` is missing or was
installed from another ``package-lock.json``/``package.json`` (a stamp in node_modules holds
their digest), one npm at a time per directory across pytest-xdist workers. Without Node.js 20+
and npm the tests FAIL, naming the command that installs them: a missing peer is never a skip.

It is also a script, so ``make e2e`` installs exactly as the tests would::

    python tests/support/npm.py clients/js tests/e2e/pusher tests/e2e/browser
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parents[2]
INSTALL = (
    "Install Node.js 20 or newer with npm ('apt-get install -y nodejs npm' where the "
    "distribution's nodejs is 20+; Debian 12's own is 18, too old), then run the tests again "
    "('make test', or 'make e2e' for the end-to-end tests alone)."
)
#: Seconds for npm on a busy 2-core machine.
SLOW = 600
STAMP = ".keyops-lockfile-sha256"
LOCK = ".keyops-npm.lock"


class Missing(Exception):
    """Node, npm or a package install is missing or failed; the message says how to fix it."""


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise Missing(f"{name} is not installed, and the Node.js tests need it. {INSTALL}")
    return path


def node_major() -> int:
    version = subprocess.run(
        [tool("node"), "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    match = re.match(r"v(\d+)\.", version)
    return int(match.group(1)) if match else 0


def node() -> str:
    path = tool("node")
    if node_major() < 20:
        raise Missing(f"node v{node_major()} is too old for the Node.js tests. {INSTALL}")
    return path


def run(
    args: list[str], *, cwd: Path, timeout: float = SLOW, **kw: Any
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


@contextlib.contextmanager
def npm_lock(directory: Path) -> Iterator[None]:
    """One npm at a time in ``directory``, across pytest-xdist workers."""
    with (directory / LOCK).open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def digest(directory: Path, *paths: Path) -> str:
    h = hashlib.sha256()
    for path in paths:
        h.update(path.relative_to(directory).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def install(directory: Path) -> None:
    """``npm ci`` from the committed lockfile, unless node_modules already matches it."""
    node()
    npm = tool("npm")
    stamp = directory / "node_modules" / STAMP
    want = digest(directory, directory / "package-lock.json", directory / "package.json")
    with npm_lock(directory):
        if stamp.exists() and stamp.read_text() == want:
            return
        # A directory's own .npmrc may turn install scripts off (tests/e2e/pusher does).
        proc = run([npm, "ci", "--no-audit", "--no-fund"], cwd=directory)
        if proc.returncode != 0:
            raise Missing(
                f"npm ci failed (exit {proc.returncode}) in {directory}:\n"
                f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}\n"
                f"Run 'cd {directory.relative_to(PROJECT)} && npm ci' to see why."
            )
        stamp.write_text(want)


def ensure_installed(directory: Path) -> None:
    """:func:`install` for a test: a failure fails the test with its fix, never a skip."""
    import pytest

    try:
        install(directory)
    except Missing as exc:
        pytest.fail(str(exc), pytrace=False)


def main(argv: list[str]) -> int:
    for name in argv or ["clients/js", "tests/e2e/pusher", "tests/e2e/browser"]:
        try:
            install(PROJECT / name)
        except Missing as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(f"npm packages of {name} match its package-lock.json")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
