"""A redacted, semantic description of what a change does to each credential.

Used by the markdown report ("ios-2026-05: retiring → retired (overlap 31 days, adoption 0.4%)").
It names ids, states, dates and shares; it never includes a key, secret or ciphertext — where a
value changed it says only that it changed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from keyops.policy.rules import Facts
from keyops.policy.rules.approval import needs
from keyops.policy.rules.base import Located
from keyops.policy.rules.lifecycle import evidence_for, overlap_days


@dataclass(frozen=True)
class Change:
    stack: str
    client: str
    text: str


def _details(facts: Facts, base: Located | None, head: Located) -> list[str]:
    cred = head.cred
    notes: list[str] = []
    if cred.state == "retired" and base is not None and base.cred.state == "retiring":
        days = overlap_days(base, facts.now)
        if days is not None:
            notes.append(f"overlap {days} days")
        evidence = evidence_for(facts, head)
        notes.append(f"adoption {evidence.short()}" if evidence else "no adoption evidence")
    if cred.state == "revoked":
        notes.append(f"reason: {cred.reason or '-'}; incident: {cred.incident or '-'}")
    if cred.state == "pending" and cred.rollout_percent is not None:
        notes.append(f"rollout {cred.rollout_percent}%")
    if cred.min_app_version:
        notes.append(f"min_app_version {cred.min_app_version}")
    return notes


def changes(facts: Facts) -> Iterator[Change]:
    """One line per changed credential (and per stack-level change), in stack/client order."""
    base_index = facts.base_index()
    for key, head in sorted(facts.head_index().items()):
        base = base_index.get(key)
        cred = head.cred
        if base is None:
            text = f"{cred.id}: new, {cred.state}"
        else:
            parts = []
            if base.cred.state != cred.state:
                parts.append(f"{base.cred.state} → {cred.state}")
            if base.cred.rollout_percent != cred.rollout_percent:
                old = base.cred.rollout_percent
                parts.append(
                    f"rollout {'-' if old is None else f'{old}%'} → "
                    f"{'-' if cred.rollout_percent is None else f'{cred.rollout_percent}%'}"
                )
            for field in ("key", "secret"):
                old_v, new_v = getattr(base.cred, field), getattr(cred, field)
                if old_v is not None and new_v is not None and old_v != new_v:
                    parts.append(f"{field} value changed (redacted)")
            if base.client.path != head.client.path:
                parts.append(f"moved from {base.client.path}")
            if not parts:
                continue
            text = f"{cred.id}: {', '.join(parts)}"
        notes = _details(facts, base, head)
        if notes:
            text += f" ({', '.join(notes)})"
        yield Change(head.client.stack, head.client.client, text)
    for gone in facts.removed():
        ended = gone.cred.ended_on()
        yield Change(
            gone.client.stack,
            gone.client.client,
            f"{gone.cred.id}: removed from the file (was {gone.cred.state}"
            + (f" since {ended}" if ended else "")
            + ")",
        )
    for need in needs(facts):
        if need.credential_id is None:
            parts = need.path.split("/")
            yield Change(parts[1] if len(parts) > 1 else "", "(stack)", need.what)
