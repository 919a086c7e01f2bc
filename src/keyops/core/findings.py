"""Findings: the one diagnostic shape shared by ``validate`` and ``check``.

A finding names its rule id (a contract: CI configs and waivers use it), a severity, the file
(relative to the repository root), a JSON-path pointer inside the file, the credential id where
one applies, the line where known, and a message that says what is wrong and how to fix it.
Findings never carry secret values or ciphertext.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"


@dataclass(frozen=True, order=True)
class Finding:
    path: str
    pointer: str
    rule: str
    severity: Severity
    message: str
    credential_id: str | None = None
    line: int | None = None

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["severity"] = self.severity.value
        return {
            key: data[key]
            for key in ("rule", "severity", "path", "pointer", "credential_id", "message", "line")
        }

    def render(self) -> str:
        """``path::$.pointer: message``, then the credential id and line where known."""
        extras = []
        if self.credential_id:
            extras.append(f"credential {self.credential_id}")
        if self.line is not None:
            extras.append(f"line {self.line}")
        tail = f" ({', '.join(extras)})" if extras else ""
        return (
            f"{self.path}::{self.pointer}: {self.severity.value}[{self.rule}] {self.message}{tail}"
        )


def summarize(findings: Iterable[Finding], files: int) -> dict[str, int]:
    items = list(findings)
    return {
        "files": files,
        "findings": len(items),
        "errors": sum(1 for f in items if f.severity is Severity.ERROR),
        "warnings": sum(1 for f in items if f.severity is Severity.WARNING),
    }


def has_errors(findings: Iterable[Finding]) -> bool:
    return any(f.severity is Severity.ERROR for f in findings)
