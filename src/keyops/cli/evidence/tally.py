"""Counts from several sources, summed into per-credential adoption evidence.

A :class:`Tally` is one source's numbers (a region, an endpoint, a versions file): per client, how
many installs (or requests) named each credential as held, and how many named any of the
client's credentials (the denominator). ``none`` (no held claim) and unknown ids are never in a
denominator: they say nothing about which key an install holds.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from keyops.policy.evidence import Evidence, Source, Window, share


@dataclass
class Tally:
    name: str
    #: (client, credential id) -> installs or requests that named it as held.
    held: Counter[tuple[str, str]] = field(default_factory=Counter)
    #: client -> installs or requests that named one of its credentials.
    total: Counter[str] = field(default_factory=Counter)
    #: Set when the source had nothing to count (named in the evidence, never silently zero).
    note: str | None = None
    #: (client -> count) of answers or installs that named an id the client does not have.
    unknown: Counter[str] = field(default_factory=Counter)

    @property
    def empty(self) -> bool:
        return not any(self.total.values())


def to_evidence(
    tallies: Iterable[Tally],
    ids: Mapping[str, Iterable[str]],
    *,
    stack: str | None,
    method: str,
    unit: str,
    window: Window | None,
    notes: tuple[str, ...] = (),
) -> dict[str, Evidence]:
    """Credential id -> evidence, summed over the tallies; each tally is one named source.

    ``ids`` are each client's credential ids: every one gets evidence when its client has a
    denominator, including those no install named (0%).
    """
    tallies = list(tallies)
    out: dict[str, Evidence] = {}
    for client in sorted(ids):
        total = sum(t.total[client] for t in tallies)
        if not total:
            continue
        unknown = sum(t.unknown[client] for t in tallies)
        extra = (
            (f"{unknown:,} {unit} named a credential id {client} does not have (left out)",)
            if unknown
            else ()
        )
        for ident in sorted(set(ids[client])):
            count = sum(t.held[(client, ident)] for t in tallies)
            sources = tuple(
                Source(t.name, note=t.note)
                if t.note is not None
                else Source(t.name, float(t.held[(client, ident)]), float(t.total[client]))
                for t in tallies
            )
            out[ident] = Evidence(
                percent=share(count, total),
                method=method,
                unit=unit,
                count=float(count),
                total=float(total),
                window=window,
                stack=stack,
                client=client,
                sources=sources,
                notes=notes + extra,
            )
    return out
