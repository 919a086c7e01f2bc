"""Findings grouped by file, one indented line each; coloured only on a terminal."""

from __future__ import annotations

import os
from collections.abc import Sequence
from itertools import groupby

from keyops.findings import Finding, Severity, summarize

_COLOURS = {Severity.ERROR: "31", Severity.WARNING: "33", Severity.NOTE: "2"}


def use_colour(isatty: bool) -> bool:
    """ANSI colour on a terminal, unless NO_COLOR (https://no-color.org) is set."""
    return isatty and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


def render(findings: Sequence[Finding], files: int, *, colour: bool = False) -> str:
    def paint(text: str, code: str) -> str:
        return f"\033[{code}m{text}\033[0m" if colour else text

    lines: list[str] = []
    for path, group in groupby(
        sorted(findings, key=lambda f: (f.path, f.line or 0)), key=lambda f: f.path
    ):
        lines.append(paint(path, "1"))
        for finding in group:
            where = f"line {finding.line}" if finding.line is not None else finding.pointer
            label = paint(f"{finding.severity.value}[{finding.rule}]", _COLOURS[finding.severity])
            cid = finding.credential_id
            cred = f" ({cid})" if cid and cid not in finding.message else ""
            lines.append(f"  {where}: {label} {finding.message}{cred}")
    summary = summarize(findings, files)
    if summary["findings"]:
        lines.append(
            f"{summary['errors']} error(s), {summary['warnings']} warning(s) in {files} file(s)"
        )
    else:
        lines.append(f"ok: {files} file(s) checked, no findings")
    return "\n".join(lines) + "\n"
