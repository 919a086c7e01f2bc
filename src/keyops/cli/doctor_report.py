"""The screen of ``keyops doctor``: one ``(status, topic, text)`` line per fact.

Shared by the command and by its checks that live in their own modules (``doctor_aws``, which
imports boto3 and so is imported only when ``--aws`` asks for it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

OK, WARN, FAIL, SKIP = "ok", "warn", "FAIL", "skip"
#: Topics of the ``--aws`` lines: their FAILs stop a deploy, not a rotation.
AWS_TOPICS = frozenset({"aws", "lambda", "alarms"})


@dataclass
class Report:
    lines: list[tuple[str, str, str]] = field(default_factory=list)
    #: Stacks a key here decrypts, and the recipients of the identities found here.
    decrypting: list[str] = field(default_factory=list)
    recipients: dict[str, str] = field(default_factory=dict)
    #: Deploy stacks whose AWS prerequisites were all met (``--aws``).
    aws_ready: list[str] = field(default_factory=list)

    def add(self, status: str, topic: str, text: str) -> None:
        self.lines.append((status, topic, text))

    def count(self, status: str, topics: frozenset[str] | None = None) -> int:
        return sum(1 for s, t, _ in self.lines if s == status and (topics is None or t in topics))
