"""A one-line progress display on a terminal; silent when output is piped."""

from __future__ import annotations

import sys
from typing import TextIO

#: Below this many files the run is too short for a progress line to help.
MIN_FILES = 20


class Progress:
    def __init__(self, stream: TextIO | None = None, *, enabled: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self._shown = False

    def __call__(self, phase: str, done: int, total: int) -> None:
        if not self.enabled or total < MIN_FILES:
            return
        self._shown = True
        self.stream.write(f"\r{phase} {done}/{total} files")
        self.stream.flush()

    def close(self) -> None:
        if self._shown:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self._shown = False
