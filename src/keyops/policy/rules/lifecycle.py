"""Rules about state changes of one credential between base and head (docs/policies.md)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from keyops.core.findings import Finding, Severity
from keyops.policy.evidence import Evidence, evidence_of
from keyops.policy.rules.base import Facts, Located, rule

#: The moves the lifecycle allows (docs/file-format.md), besides staying put.
ALLOWED: dict[str, frozenset[str]] = {
    "pending": frozenset({"active", "revoked"}),
    "active": frozenset({"retiring", "revoked"}),
    "retiring": frozenset({"retired", "revoked"}),
    "retired": frozenset(),
    "revoked": frozenset(),
}
#: The rule for a credential's first state, word for word as docs/policies.md states it.
FIRST_KEY_RULE = (
    "a new credential starts as pending; it may start as active only as its client's first "
    "credential, or in the same change that revokes the client's active credential (the "
    "emergency path)"
)


def allowed_moves(state: str) -> str:
    moves = sorted(ALLOWED.get(state, ()))
    return " or ".join(moves) if moves else "nothing (it may only be removed after its tombstone)"


@rule(
    "transition",
    Severity.ERROR,
    "Credentials move only along pending → active → retiring → retired, or to revoked; no "
    "state is skipped and nothing comes back. A new credential starts as pending, except a "
    "client's first one or the replacement in an emergency revocation.",
    "Move one step per change (e.g. active → retiring, then retiring → retired).",
    history_free=False,
)
def transition(facts: Facts) -> Iterable[Finding]:
    for base, head in facts.pairs():
        old, new = base.cred.state, head.cred.state
        if old != new and new not in ALLOWED.get(old, frozenset()):
            yield transition.at(
                facts,
                head,
                f"{head.cred.id}: {old} → {new} is not allowed; from {old} a credential may "
                f"move to {allowed_moves(old)}",
                suffix=".state",
            )
    for head in facts.added():
        state = head.cred.state
        if state == "pending" or (state == "active" and may_start_active(facts, head)):
            continue
        yield transition.at(
            facts,
            head,
            f"{head.cred.id} is new but starts as {state}; {FIRST_KEY_RULE}",
            suffix=".state",
        )


def may_start_active(facts: Facts, head: Located) -> bool:
    """The two cases of FIRST_KEY_RULE: the client's first credential, or the emergency path."""
    client = head.client
    base_stack = facts.base.stacks.get(client.stack) if facts.base is not None else None
    before = base_stack.clients.get(client.client) if base_stack is not None else None
    if before is None:
        # No model in the base: a new client, unless its file is there but unreadable.
        return facts.base is None or client.path not in facts.base.records
    if not before.credentials:
        return True
    return any(
        base.cred.state == "active" and now.cred.state == "revoked"
        for base, now in facts.pairs()
        if now.client.path == client.path
    )


@rule(
    "retire-needs-successor",
    Severity.ERROR,
    "A client whose only active key leaves service stops working.",
    "Promote the successor to active in the same change (keyops promote).",
    history_free=False,
)
def retire_needs_successor(facts: Facts) -> Iterable[Finding]:
    for base, head in facts.pairs():
        if base.cred.state == "active" and head.cred.state != "active":
            others = [c.id for c in head.client.in_state("active") if c.id != head.cred.id]
            if not others:
                yield retire_needs_successor.at(
                    facts,
                    head,
                    f"{head.cred.id} leaves active ({head.cred.state}) but client "
                    f"{head.client.client} has no other active credential; promote its "
                    "successor in the same change",
                    suffix=".state",
                )


def _retirements(facts: Facts) -> Iterable[tuple[Located, Located]]:
    for base, head in facts.pairs():
        if base.cred.state == "retiring" and head.cred.state == "retired":
            yield base, head


def overlap_days(located: Located, today: dt.date) -> int | None:
    since = located.cred.retiring_since
    return (today - since).days if since else None


@rule(
    "min-overlap",
    Severity.ERROR,
    "Old installs keep using a retiring key; retiring it too early breaks them.",
    "Wait until min_overlap_days have passed since retiring_since (see `keyops status`).",
    history_free=False,
)
def min_overlap(facts: Facts) -> Iterable[Finding]:
    need = facts.settings.min_overlap_days
    for base, head in _retirements(facts):
        since = base.cred.retiring_since or head.cred.retiring_since
        if since is None:
            continue
        days = (facts.now - since).days
        if days < need:
            earliest = facts.settings.earliest_retirement(since)
            yield min_overlap.at(
                facts,
                head,
                f"{head.cred.id} has been retiring for {days} day(s) since {since}; "
                f"min_overlap_days is {need}: retire it on or after {earliest}",
                suffix=".state",
            )


def evidence_for(facts: Facts, located: Located) -> Evidence | None:
    """The adoption evidence for this credential, if the file has some that applies to it.

    Evidence that names another stack or client (credential ids are unique per stack only)
    does not apply.
    """
    value = (facts.ctx.adoption or {}).get(located.cred.id)
    if value is None:
        return None
    evidence = evidence_of(value)
    return evidence if evidence.applies_to(located.client.stack, located.client.client) else None


@rule(
    "adoption",
    Severity.ERROR,
    "A key still used by many installs must not be retired; evidence decides, not the calendar.",
    "Wait until adoption is at or below max_retire_adoption_percent, or pass --adoption FILE.",
    history_free=False,
)
def adoption(facts: Facts) -> Iterable[Finding]:
    limit = facts.settings.max_retire_adoption_percent
    for _base, head in _retirements(facts):
        delivery = head.client.delivery
        evidence = evidence_for(facts, head)
        if evidence is not None:
            ident, share, of_what = head.cred.id, evidence.percent, evidence.of_what
            if share > limit:
                message = (
                    f"{ident} is still used by {share:g}% of {of_what}; "
                    f"max_retire_adoption_percent is {limit:g}%: keep it retiring until fewer "
                    f"installs use it (evidence: {evidence.describe()})"
                )
                yield adoption.at(facts, head, message, suffix=".state")
            else:
                # The decision is only as good as its evidence: show it to the reviewer.
                message = (
                    f"{ident} is used by {share:g}% of {of_what}, at or below "
                    f"max_retire_adoption_percent {limit:g}% (evidence: {evidence.describe()})"
                )
                yield adoption.at(facts, head, message, severity=Severity.NOTE, suffix=".state")
        elif delivery in ("served", "bundled"):
            yield adoption.at(
                facts,
                head,
                f"{head.cred.id} is retired without adoption evidence; pass --adoption FILE "
                f"showing at most {limit:g}% of installs still use it"
                + (" (bundled keys live on in old app releases)" if delivery == "bundled" else ""),
                severity=Severity.ERROR if delivery == "bundled" else Severity.WARNING,
                suffix=".state",
            )


@rule(
    "revoke-reason",
    Severity.ERROR,
    "Revocation skips the overlap; the reason and incident make the emergency auditable.",
    "Add `reason:` (why, in words) and `incident:` (ticket or URL) to the revoked credential.",
    history_free=True,
)
def revoke_reason(facts: Facts) -> Iterable[Finding]:
    # Read the documents, not the models: a revoked credential without a reason also fails the
    # schema, and then its file has no model, but this message is the one that explains why.
    for path, record in sorted(facts.head.records.items()):
        document = record.content() if record.kind == "client" else None
        for index, item in enumerate((document or {}).get("credentials") or []):
            if not isinstance(item, dict) or item.get("state") != "revoked":
                continue
            missing = [f for f in ("reason", "incident") if not item.get(f)]
            if missing:
                yield revoke_reason.finding(
                    facts,
                    path,
                    f"{item.get('id')} is revoked without {' and '.join(missing)}; say why it "
                    "was revoked and name the incident",
                    f"$.credentials[{index}]",
                    credential_id=str(item.get("id")),
                )
