"""A pull-request summary: what the change does to each credential, findings, approvals needed.

It is built from ids, states, dates, shares and finding messages only; no key, secret or
ciphertext reaches it (tests assert this on real encrypted repositories).
"""

from __future__ import annotations

from keyops.cli.reporters.base import Report
from keyops.core.findings import Severity, summarize


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(report: Report) -> str:
    findings, files, changes, base_label = (
        report.findings,
        report.files,
        report.changes,
        report.base_label,
    )
    s = summarize(findings, files)
    verdict = "✅ passes" if not s["errors"] else "❌ fails"
    against = f" against `{base_label}`" if base_label else " (no base: history-free rules only)"
    out = [
        "## keyops check",
        "",
        f"**{verdict}**: {s['errors']} error(s), {s['warnings']} warning(s) in {files} "
        f"file(s){against}.",
        "",
        "### What this change does",
        "",
    ]
    if changes:
        out += [f"- `{c.stack}/{c.client}`: {cell(c.text)}" for c in changes]
    else:
        out.append("No credential changes." if base_label else "Not compared (no `--base`).")
    out += ["", "### Findings", ""]
    if findings:
        out += ["| severity | rule | file | credential | message |", "|---|---|---|---|---|"]
        for f in findings:
            where = f"{f.path}:{f.line}" if f.line is not None else f"{f.path} `{f.pointer}`"
            out.append(
                f"| {f.severity.value} | `{f.rule}` | {cell(where)} | "
                f"{cell(f.credential_id or '')} | {cell(f.message)} |"
            )
    else:
        out.append("None.")
    out += ["", "### Approvals still needed", ""]
    needed = [f for f in findings if f.rule == "approval" and f.severity is not Severity.NOTE]
    if needed:
        out += [f"- {cell(f.message)}" for f in needed]
    else:
        out.append("None.")
    return "\n".join(out) + "\n"
