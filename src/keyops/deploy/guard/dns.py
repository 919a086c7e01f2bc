"""Rules on Route 53 records: each name is owned by exactly one resource."""

from __future__ import annotations

from collections.abc import Sequence

from pulumi_policy import ReportViolation

from keyops.deploy.guard.model import RECORD, Seen, of


def records_owned_once(resources: Sequence[Seen], report: ReportViolation) -> None:
    """Two resources writing one record (or one overwriting it) break when either goes away.

    ACM's DNS validation record of a name is the same in every region: owned by one region's
    resource with ``allowOverwrite``, it is deleted with that region and the other regions'
    certificates then fail to renew.
    """
    owners: dict[tuple[str, str, str, str], list[Seen]] = {}
    for record in of(resources, RECORD):
        p = record.props
        key = (
            str(p.get("zoneId")),
            str(p.get("name", "")).lower().rstrip("."),
            str(p.get("type")),
            str(p.get("setIdentifier") or ""),
        )
        owners.setdefault(key, []).append(record)
        if p.get("allowOverwrite") is True:
            report(
                f"record {record.name!r} ({key[1]} {key[2]}) overwrites whatever already holds "
                "its name (allowOverwrite): declare a shared record once instead",
                record.urn,
            )
    for (_zone, name, type_, _set), found in sorted(owners.items()):
        if len(found) > 1:
            names = ", ".join(sorted(repr(r.name) for r in found))
            report(
                f"record {name} {type_} is declared {len(found)} times ({names}): removing any "
                "one deletes it for all; declare it once",
                found[0].urn,
            )
