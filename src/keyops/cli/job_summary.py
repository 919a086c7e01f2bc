"""Appending a report to a file such as the GitHub Actions job summary (``$GITHUB_STEP_SUMMARY``).

The runner gives every step the same file and shows what all of them appended, so several
steps add their own section to one page: this appends (never through a symlink) instead of
replacing the file.
"""

from __future__ import annotations

from pathlib import Path

from keyops.core.atomic import append_nofollow


def append(path: Path, text: str) -> None:
    append_nofollow(path, text.encode("utf-8"))
