"""``{"findings": [...], "summary": {"files", "findings", "errors", "warnings"}}``."""

from __future__ import annotations

import json

from keyops.cli.reporters.base import Report
from keyops.core.findings import summarize


def render(report: Report) -> str:
    payload = {
        "findings": [finding.as_json() for finding in report.findings],
        "summary": summarize(report.findings, report.files),
    }
    return json.dumps(payload, indent=2) + "\n"
