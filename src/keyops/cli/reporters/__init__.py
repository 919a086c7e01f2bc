"""The one registry of reporters: format name → function from a :class:`Report` to text.

``validate`` and ``check`` (and any command that reports findings) choose from
:data:`REPORTERS`, so the same finding reads the same way whichever command found it.
"""

from __future__ import annotations

from keyops.cli.reporters import github, json_report, markdown, sarif, text
from keyops.cli.reporters.base import Report, Reporter

REPORTERS: dict[str, Reporter] = {
    "text": text.render,
    "json": json_report.render,
    "sarif": sarif.render,
    "github": github.render,
    "markdown": markdown.render,
}
FORMATS = tuple(REPORTERS)


def render(fmt: str, report: Report) -> str:
    return REPORTERS[fmt](report)


__all__ = ["FORMATS", "REPORTERS", "Report", "Reporter", "render"]
