"""Waivers: a named, approved, expiring exception to one rule for one target.

``policies/waivers.yaml``::

    waivers:
      - rule: max-age
        stack: dev
        client: server            # optional: narrows the target
        credential: server-2026-01  # optional
        reason: "rotation blocked on the vendor's release train"
        approver: alice-sec       # must be a configured approver
        expires: "2027-01-15"

A waived finding stays visible as a note saying who waived it until when. An expired or
malformed waiver is itself an error (rule ``waiver``), and some rules can never be waived.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from keyops.core.dates import parse_date
from keyops.core.errors import RepositoryError
from keyops.core.findings import Finding, Severity

WAIVERS_PATH = "policies/waivers.yaml"
#: A waiver never silences these: they mean a secret is exposed or shared.
UNWAIVABLE = frozenset({"encrypted", "unique-key", "no-secret-to-clients"})
WAIVER_RULE = "waiver"


@dataclass(frozen=True)
class Waiver:
    index: int
    rule: str
    stack: str
    client: str | None
    credential: str | None
    reason: str
    approver: str
    expires: dt.date

    def covers(self, finding: Finding) -> bool:
        if finding.rule != self.rule:
            return False
        parts = finding.path.split("/")
        if len(parts) != 3 or parts[1] != self.stack:
            return False
        if self.client is not None and parts[2].rsplit(".", 1)[0] != self.client:
            return False
        return self.credential is None or finding.credential_id == self.credential


def _problem(index: int, message: str) -> Finding:
    return Finding(
        path=WAIVERS_PATH,
        pointer=f"$.waivers[{index}]",
        rule=WAIVER_RULE,
        severity=Severity.ERROR,
        message=message,
    )


def load(
    root: Path, known_rules: set[str], approvers: tuple[str, ...], today: dt.date
) -> tuple[list[Waiver], list[Finding]]:
    """The valid, unexpired waivers, and a finding for every one that is not."""
    path = root / WAIVERS_PATH
    if not path.is_file():
        return [], []
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise RepositoryError(f"{WAIVERS_PATH} cannot be read: {exc}", "Fix its YAML.") from exc
    items = data.get("waivers") if isinstance(data, dict) else None
    if items is None:
        items = []
    if not isinstance(items, list):
        raise RepositoryError(f"{WAIVERS_PATH}: waivers must be a list", "See docs/policies.md.")
    waivers: list[Waiver] = []
    problems: list[Finding] = []
    for index, item in enumerate(items):
        made = _parse(index, item, known_rules, approvers, today, problems)
        if made is not None:
            waivers.append(made)
    return waivers, problems


def _parse(
    index: int,
    item: Any,
    known_rules: set[str],
    approvers: tuple[str, ...],
    today: dt.date,
    problems: list[Finding],
) -> Waiver | None:
    if not isinstance(item, dict):
        problems.append(_problem(index, "a waiver must be a mapping"))
        return None
    missing = [k for k in ("rule", "stack", "reason", "approver", "expires") if not item.get(k)]
    if missing:
        problems.append(_problem(index, f"the waiver lacks {', '.join(missing)}"))
        return None
    rule_id = str(item["rule"])
    if rule_id not in known_rules:
        problems.append(_problem(index, f"the waiver names unknown rule {rule_id!r}"))
        return None
    if rule_id in UNWAIVABLE:
        problems.append(
            _problem(
                index,
                f"rule {rule_id} cannot be waived: it means a secret is exposed or shared; fix "
                "the finding instead",
            )
        )
        return None
    if str(item["approver"]) not in approvers:
        problems.append(
            _problem(
                index,
                f"waiver approver {item['approver']!r} is not a configured approver "
                "(policies/keyops.yaml approvers)",
            )
        )
        return None
    expires = parse_date(str(item["expires"]))
    if expires is None:
        problems.append(_problem(index, f"expires {item['expires']!r} is not an ISO date"))
        return None
    if expires < today:
        problems.append(
            _problem(
                index,
                f"the waiver of {rule_id} for {item['stack']} expired on {expires}; fix the "
                "finding or renew the waiver with a new approval",
            )
        )
        return None
    return Waiver(
        index=index,
        rule=rule_id,
        stack=str(item["stack"]),
        client=str(item["client"]) if item.get("client") else None,
        credential=str(item["credential"]) if item.get("credential") else None,
        reason=str(item["reason"]),
        approver=str(item["approver"]),
        expires=expires,
    )


def apply(findings: list[Finding], waivers: list[Waiver]) -> list[Finding]:
    """Turn waived findings into notes that say who waived them, why and until when."""
    out: list[Finding] = []
    for finding in findings:
        waiver = next(
            (w for w in waivers if finding.rule not in UNWAIVABLE and w.covers(finding)), None
        )
        if waiver is None or finding.severity is Severity.NOTE:
            out.append(finding)
            continue
        out.append(
            replace(
                finding,
                severity=Severity.NOTE,
                message=f"{finding.message} [waived by {waiver.approver} until {waiver.expires}: "
                f"{waiver.reason}]",
            )
        )
    return out
