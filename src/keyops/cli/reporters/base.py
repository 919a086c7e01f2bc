"""What every reporter receives: the findings and what the command knows about them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from keyops.core.findings import Finding

if TYPE_CHECKING:
    from keyops.policy.diff import Change


@dataclass(frozen=True)
class Report:
    findings: Sequence[Finding]
    files: int
    #: The command that found them, for summaries ("keyops check: 1 error(s) ...").
    command: str = "check"
    #: How the files were looked at, for the text summary ("ok: 3 file(s) validated").
    what: str = "checked"
    colour: bool = False
    #: The markdown report's semantic diff and the base it was computed against.
    changes: Sequence[Change] = ()
    base_label: str | None = None


Reporter = Callable[[Report], str]
