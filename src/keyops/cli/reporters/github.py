"""GitHub Actions workflow commands: ``::error file=…,line=…,title=…::message``.

Values are escaped as the runner expects (``%``, CR, LF everywhere; also ``:`` and ``,`` in
properties), so a message can never inject a second command.
"""

from __future__ import annotations

from keyops.cli.reporters.base import Report
from keyops.core.findings import Severity, summarize

_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.NOTE: "notice"}


def _data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _prop(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")


def render(report: Report) -> str:
    findings, files = report.findings, report.files
    lines = []
    for f in findings:
        props = [f"file={_prop(f.path)}"]
        if f.line is not None:
            props.append(f"line={f.line}")
        props.append(f"title={_prop(f'keyops {f.rule}')}")
        where = f" ({f.credential_id})" if f.credential_id else ""
        lines.append(f"::{_LEVEL[f.severity]} {','.join(props)}::{_data(f.message + where)}")
    s = summarize(findings, files)
    lines.append(
        f"keyops {report.command}: {s['errors']} error(s), {s['warnings']} warning(s) "
        f"in {files} file(s)"
    )
    return "\n".join(lines) + "\n"
