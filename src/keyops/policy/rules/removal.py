"""``no-early-removal``: Pusher cannot restore a deleted credential set."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from keyops.core.findings import Finding, Severity
from keyops.policy.rules.base import Facts, Located, rule
from keyops.store.settings import Settings


def removable_from(located: Located, settings: Settings) -> dt.date | None:
    """The first day a credential may leave the file, or None while it may not at all."""
    ended = located.cred.ended_on() if located.cred.state in ("retired", "revoked") else None
    return settings.removable_from(ended) if ended else None


@rule(
    "no-early-removal",
    Severity.ERROR,
    "A credential removed from git is gone: Pusher cannot restore deleted credential sets, and "
    "the history of who held it is lost.",
    "Keep it (retired or revoked) until its tombstone period ends; delete it at Pusher only "
    "after the change is merged.",
    history_free=False,
)
def no_early_removal(facts: Facts) -> Iterable[Finding]:
    days = facts.settings.tombstone_days
    base_records = facts.base.records if facts.base else {}
    for located in facts.removed():
        cred = located.cred
        start = removable_from(located, facts.settings)
        if start is not None and start <= facts.now:
            continue
        if start is None:
            why = f"it is {cred.state}; only a retired or revoked credential may be removed"
        else:
            why = (
                f"it was {cred.state} on {cred.ended_on()}, and tombstone_days is {days}: "
                f"remove it on or after {start}"
            )
        record = base_records.get(located.client.path)
        yield no_early_removal.finding(
            facts,
            located.client.path,
            f"{cred.id} was removed from the file but {why}. Pusher cannot restore deleted "
            "credentials: restore the entry, and delete the credential at Pusher only after the "
            "removal is merged",
            cred.pointer,
            credential_id=cred.id,
            line=record.doc.line_of(cred.pointer) if record and record.doc else None,
        )
