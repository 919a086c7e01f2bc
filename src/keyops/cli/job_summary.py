"""Appending a report to a file such as the GitHub Actions job summary (``$GITHUB_STEP_SUMMARY``).

The runner gives every step the same file and shows what all of them appended, so this is the
one write in keyops that appends instead of replacing (``write_atomic`` replaces): several steps
add their own section to one page.
"""

from __future__ import annotations

from pathlib import Path

from keyops.core.errors import InputError


def append(path: Path, text: str) -> None:
    try:
        with path.open("a", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as exc:
        raise InputError(
            f"cannot append to {path}: {exc.strerror or type(exc).__name__}",
            "Check that the file's directory exists and is writable.",
        ) from None
