"""``keyops doctor`` as a test runs it, and its screen read back one line at a time."""

from __future__ import annotations

import re
from pathlib import Path

from support.repo import KeyRepo

#: A PATH without the test environment's tools: pulumi, gh and keyops are not on it.
BASE_PATH = "/usr/bin:/bin"
LINE = re.compile(r"  (\S+)\s+(\S+)\s+(.*)$")


def run_doctor(
    repo: KeyRepo,
    *args: str,
    path: str = BASE_PATH,
    cwd: Path | None = None,
    process: bool = False,
    **env: str,
) -> tuple[int, list[str]]:
    """Exit code and screen lines of ``keyops doctor ARGS``; doctor writes nothing to stderr."""
    proc = repo.run("doctor", *args, env={"PATH": path, **env}, cwd=cwd, process=process)
    assert proc.stderr == ""
    return proc.returncode, proc.stdout.splitlines()


def doctor_lines(out: list[str], topic: str) -> list[tuple[str, str]]:
    """(status, text) of the lines about ``topic``, between the title and the result."""
    found = []
    for line in out[1:-1]:
        match = LINE.match(line)
        assert match is not None, line
        status, name, text = match.groups()
        if name == topic:
            found.append((status, text))
    return found
