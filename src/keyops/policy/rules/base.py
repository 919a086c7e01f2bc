"""The shape every policy rule shares, and the view of (base, head) a rule works on.

A rule is a function from :class:`Facts` to findings, registered with a stable id (a contract:
CI configs and waivers name it), a default severity, a one-line rationale and a fix hint.
History-free rules look only at the head; the others compare base and head and run only when
a base is given.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from keyops.core.findings import Finding, Severity
from keyops.core.model import ClientFile, Credential, Stack
from keyops.policy.context import Context
from keyops.store.loader import FileRecord, LoadResult
from keyops.store.settings import Settings


@dataclass(frozen=True)
class Located:
    """A credential with the client file that holds it."""

    client: ClientFile
    cred: Credential


def index_credentials(stacks: dict[str, Stack]) -> dict[tuple[str, str], Located]:
    """Credentials by (stack, id): ids are unique within a stack, so this pairs base and head."""
    out: dict[tuple[str, str], Located] = {}
    for stack in stacks.values():
        for client in stack.clients.values():
            for cred in client.credentials:
                out.setdefault((stack.name, cred.id), Located(client, cred))
    return out


@dataclass
class Facts:
    head: LoadResult
    ctx: Context
    settings: Settings
    base: LoadResult | None = None
    root: Path | None = None
    _head_index: dict[tuple[str, str], Located] | None = field(default=None, repr=False)
    _base_index: dict[tuple[str, str], Located] | None = field(default=None, repr=False)

    @property
    def now(self) -> dt.date:
        return self.ctx.now

    def head_index(self) -> dict[tuple[str, str], Located]:
        if self._head_index is None:
            self._head_index = index_credentials(self.head.stacks)
        return self._head_index

    def base_index(self) -> dict[tuple[str, str], Located]:
        if self._base_index is None:
            self._base_index = index_credentials(self.base.stacks) if self.base else {}
        return self._base_index

    def clients(self) -> Iterator[ClientFile]:
        for name in sorted(self.head.stacks):
            stack = self.head.stacks[name]
            for client in sorted(stack.clients):
                yield stack.clients[client]

    def pairs(self) -> Iterator[tuple[Located, Located]]:
        """(base, head) for every credential present on both sides."""
        base = self.base_index()
        for key, head in sorted(self.head_index().items()):
            if key in base:
                yield base[key], head

    def removed(self) -> Iterator[Located]:
        """Credentials in the base that the head no longer holds anywhere in the stack."""
        head = self.head_index()
        for key, located in sorted(self.base_index().items()):
            record = self.head.records.get(located.client.path)
            if record is not None and not record.schema_ok:
                # The file is still there but unreadable as a model; its schema findings
                # explain that, and calling its credentials "removed" would only mislead.
                continue
            if key not in head:
                yield located

    def added(self) -> Iterator[Located]:
        base = self.base_index()
        for key, located in sorted(self.head_index().items()):
            if key not in base:
                yield located

    def record(self, path: str) -> FileRecord | None:
        return self.head.records.get(path)

    def line(self, path: str, pointer: str) -> int | None:
        record = self.head.records.get(path)
        if record is None or record.doc is None:
            return None
        return record.doc.line_of(pointer)


Check = Callable[[Facts], Iterable[Finding]]


@dataclass(frozen=True)
class Rule:
    id: str
    severity: Severity
    rationale: str
    fix: str
    history_free: bool
    check: Check = field(repr=False, compare=False)

    def finding(
        self,
        facts: Facts,
        path: str,
        message: str,
        pointer: str = "$",
        *,
        credential_id: str | None = None,
        severity: Severity | None = None,
        line: int | None = None,
    ) -> Finding:
        return Finding(
            path=path,
            pointer=pointer,
            rule=self.id,
            severity=severity or self.severity,
            message=message,
            credential_id=credential_id,
            line=line if line is not None else facts.line(path, pointer),
        )

    def at(
        self,
        facts: Facts,
        located: Located,
        message: str,
        *,
        severity: Severity | None = None,
        suffix: str = "",
    ) -> Finding:
        """A finding on one credential of the head (or of the base, when it was removed)."""
        return self.finding(
            facts,
            located.client.path,
            message,
            located.cred.pointer + suffix,
            credential_id=located.cred.id,
            severity=severity,
        )


RULES: dict[str, Rule] = {}


def rule(
    rule_id: str, severity: Severity, rationale: str, fix: str, *, history_free: bool
) -> Callable[[Check], Rule]:
    """Register a rule under its contract id."""

    def wrap(check: Check) -> Rule:
        if rule_id in RULES:
            raise RuntimeError(f"rule {rule_id} registered twice")
        made = Rule(rule_id, severity, rationale, fix, history_free, check)
        RULES[rule_id] = made
        return made

    return wrap
