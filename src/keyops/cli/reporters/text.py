"""The one text format of findings, shared by every command that reports them.

One line per finding, ``path::$.json.pointer: severity[rule] message (credential id, line N)``,
in file and line order, then a summary line. The severity is coloured only on a terminal.
"""

from __future__ import annotations

import os

from keyops.cli.reporters.base import Report
from keyops.core.findings import Severity, summarize

_COLOURS = {Severity.ERROR: "31", Severity.WARNING: "33", Severity.NOTE: "2"}


def use_colour(isatty: bool) -> bool:
    """ANSI colour on a terminal, unless NO_COLOR (https://no-color.org) is set."""
    return isatty and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


def render(report: Report) -> str:
    lines = []
    for finding in sorted(report.findings, key=lambda f: (f.path, f.line or 0, f.pointer)):
        line = finding.render()
        if report.colour:
            label = f"{finding.severity.value}[{finding.rule}]"
            line = line.replace(label, f"\033[{_COLOURS[finding.severity]}m{label}\033[0m", 1)
        lines.append(line)
    summary = summarize(report.findings, report.files)
    if summary["findings"]:
        lines.append(
            f"{summary['errors']} error(s), {summary['warnings']} warning(s) "
            f"in {report.files} file(s)"
        )
    else:
        lines.append(f"ok: {report.files} file(s) {report.what}, no findings")
    return "\n".join(lines) + "\n"
