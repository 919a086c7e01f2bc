"""Reporters for findings: ``text`` and ``json`` (``check`` adds more formats).

Text: one line per finding, ``path::$.json.pointer: severity[rule] message (credential, line)``,
then a summary line. JSON: ``{"findings": [...], "summary": {...}}``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from keyops.findings import Finding, summarize


def render_text(findings: Sequence[Finding], files: int, *, what: str = "validated") -> str:
    lines = [finding.render() for finding in findings]
    summary = summarize(findings, files)
    if summary["findings"]:
        lines.append(
            f"{summary['errors']} error(s), {summary['warnings']} warning(s) in {files} file(s)"
        )
    else:
        lines.append(f"ok: {files} file(s) {what}, no findings")
    return "\n".join(lines) + "\n"


def render_json(findings: Sequence[Finding], files: int) -> str:
    payload = {
        "findings": [finding.as_json() for finding in findings],
        "summary": summarize(findings, files),
    }
    return json.dumps(payload, indent=2) + "\n"
