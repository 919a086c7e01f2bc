"""Adoption of a bundled client's keys from active installs per app version.

A bundled key ships inside the binary, so the installs still holding it are the installs of the
app versions that carry it. The user exports active installs per app version from their app
store console as CSV (docs/adoption.md):

    app_version,installs
    5.2.0,41230
    5.1.3,1874

A header row names the columns; other columns are ignored, so an export with extra columns (a
date, a country) works as long as it has these two, and rows of one version are summed. The
client file's ``releases:`` records (``keyops release``) say which credential each version
carries. Installs on versions that no record covers *may* carry any key: they are counted for
every credential (an upper bound, so a retirement errs towards waiting) and named, so the user
can record those releases and sharpen the numbers.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from keyops.core.errors import InputError
from keyops.core.model import ClientFile
from keyops.policy.evidence import Evidence, Source, share
from keyops.protocol.selection import SEMVER_RE

COLUMNS = ("app_version", "installs")
MAX_BYTES = 16 * 1024 * 1024
MAX_ROWS = 1_000_000
MAX_INSTALLS = 10**12
FIX = "Export active installs per app version as CSV with columns app_version,installs."


@dataclass(frozen=True)
class Versions:
    label: str
    installs: Counter[str]


def read(path: Path) -> Versions:
    label = f"--from versions {path}"
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        raise InputError(f"{label} cannot be read: {exc.strerror or exc}", FIX) from None
    if len(data) > MAX_BYTES:
        raise InputError(f"{label} is larger than {MAX_BYTES} bytes", FIX)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"{label} is not UTF-8 text", FIX) from None
    return Versions(path.name, parse(text, label))


def parse(text: str, label: str) -> Counter[str]:
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise InputError(f"{label} is not valid CSV: {exc}", FIX) from None
    if not rows:
        raise InputError(f"{label} is empty", FIX)
    header = [h.strip().lower() for h in rows[0]]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise InputError(
            f"{label} line 1: the header has no {' and no '.join(missing)} column "
            f"(it has {', '.join(h for h in header if h)[:200] or 'nothing'})",
            FIX,
        )
    if len(rows) > MAX_ROWS:
        raise InputError(f"{label} has more than {MAX_ROWS} rows", FIX)
    at_version, at_installs = header.index("app_version"), header.index("installs")
    out: Counter[str] = Counter()
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) <= max(at_version, at_installs):
            raise InputError(f"{label} line {line}: too few columns", FIX)
        version, count = row[at_version].strip(), row[at_installs].strip()
        if len(version) > 256 or not SEMVER_RE.fullmatch(version):
            raise InputError(
                f"{label} line {line}: app_version {version[:40]!r} is not a semantic version "
                "such as 5.2.0",
                FIX,
            )
        if not count.isdigit() or int(count) > MAX_INSTALLS:
            raise InputError(
                f"{label} line {line}: installs {count[:40]!r} is not a whole number", FIX
            )
        out[version] += int(count)
    if not out:
        raise InputError(f"{label} has no rows", FIX)
    return out


def evidence(client: ClientFile, versions: Versions) -> tuple[dict[str, Evidence], list[str]]:
    """Evidence per credential of the client, and the versions no release record covers."""
    carries = {r.app_version: r.credential_id for r in client.releases}
    total = sum(versions.installs.values())
    if not total:
        raise InputError(f"{versions.label} counts no installs at all", FIX)
    uncovered = {v: n for v, n in versions.installs.items() if v not in carries}
    unknown = sum(uncovered.values())
    by_credential: Counter[str] = Counter()
    for version, count in versions.installs.items():
        if version in carries:
            by_credential[carries[version]] += count
    notes = []
    if uncovered:
        shown = ", ".join(f"{v} ({n:,})" for v, n in sorted(uncovered.items())[:20])
        notes.append(
            f"{unknown:,} installs are on versions no release record covers ({shown}); they may "
            "carry any key and are counted for each: record them with keyops release"
        )
    out = {}
    for cred in client.credentials:
        count = by_credential[cred.id] + unknown
        sources = [
            Source(f"versions {versions.label}", float(by_credential[cred.id]), float(total))
        ]
        if unknown:
            sources.append(
                Source("versions without a release record", float(unknown), float(total))
            )
        out[cred.id] = Evidence(
            percent=share(count, total),
            method="versions",
            unit="installs",
            count=float(count),
            total=float(total),
            stack=client.stack,
            client=client.client,
            sources=tuple(sources),
            notes=tuple(notes),
        )
    return out, sorted(uncovered)
