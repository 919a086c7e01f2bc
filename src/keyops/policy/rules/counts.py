"""Rules about how many credentials of a client are in which state."""

from __future__ import annotations

from collections.abc import Iterable

from keyops.core.findings import Finding, Severity
from keyops.policy.rules.base import Facts, Located, rule


@rule(
    "single-active",
    Severity.ERROR,
    "The endpoint and exports serve exactly one active key per app client; servers need at "
    "least one in their keyring.",
    "Keep one credential `active`; promote a pending one or move extras to `retiring`.",
    history_free=True,
)
def single_active(facts: Facts) -> Iterable[Finding]:
    for client in facts.clients():
        active = client.in_state("active")
        if client.delivery == "secret-store":
            if not active:
                yield single_active.finding(
                    facts,
                    client.path,
                    f"secret-store client {client.client} has no active credential; its servers "
                    "would have no key to sign with. Keep at least one credential active",
                    "$.credentials",
                )
        elif len(active) != 1:
            names = ", ".join(c.id for c in active) or "none"
            yield single_active.finding(
                facts,
                client.path,
                f"{client.delivery} client {client.client} must have exactly one active "
                f"credential, found {len(active)} ({names})",
                "$.credentials",
            )


@rule(
    "one-rotation-in-flight",
    Severity.ERROR,
    "Two rotations at once make rollout shares and retirements ambiguous.",
    "Finish (promote or revoke) the pending credential before starting another rotation.",
    history_free=True,
)
def one_rotation_in_flight(facts: Facts) -> Iterable[Finding]:
    for client in facts.clients():
        pending = client.in_state("pending")
        if len(pending) > 1:
            yield one_rotation_in_flight.at(
                facts,
                Located(client, pending[1]),
                f"client {client.client} has {len(pending)} pending credentials "
                f"({', '.join(c.id for c in pending)}); at most one rotation may be in flight",
            )


@rule(
    "rollout-range",
    Severity.ERROR,
    "A rollout share is a percentage of installs, and only a pending credential has one.",
    "Set rollout_percent to 1..100 on the pending credential, or remove it once promoted.",
    history_free=True,
)
def rollout_range(facts: Facts) -> Iterable[Finding]:
    for client in facts.clients():
        document = (
            facts.head.records[client.path].content()
            if client.path in (facts.head.records)
            else None
        )
        items = (document or {}).get("credentials") or []
        for cred in client.credentials:
            raw = items[cred.index].get("rollout_percent") if cred.index < len(items) else None
            if raw is None:
                continue
            located = Located(client, cred)
            if cred.state != "pending":
                yield rollout_range.at(
                    facts,
                    located,
                    f"{cred.id} is {cred.state} but has rollout_percent {raw}; only a pending "
                    "credential has a rollout share: remove the field",
                    suffix=".rollout_percent",
                )
            elif isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= 100:
                yield rollout_range.at(
                    facts,
                    located,
                    f"{cred.id} has rollout_percent {raw!r}; it must be a whole number from 1 "
                    "to 100",
                    suffix=".rollout_percent",
                )
