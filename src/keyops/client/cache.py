"""The last-known-good cache: the newest accepted signed payload, on the device's disk.

What is stored is the signed JWS as the server's answer carried it, not a decoded key, so a
cached entry is verified against the pinned keys again every time it is read: a cache file
edited by malware or a backup restore cannot inject a key. The file also remembers the highest
``bundle_version`` accepted (the rollback watermark).

Writes are atomic, mode 0600 and read back (:func:`keyops.core.atomic.write_atomic`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from keyops.core.atomic import PRIVATE, write_atomic
from keyops.core.errors import CacheError, WriteError

FORMAT = "keyops-client-cache/1"


@dataclass(frozen=True)
class CacheEntry:
    stack: str
    client: str
    #: The compact JWS of the accepted payload.
    signed: str
    #: Local wall-clock time of the fetch, seconds since the epoch (for ``refresh_after``).
    fetched_at: float
    #: The endpoint URL it came from.
    source: str
    #: The highest bundle_version ever accepted: never lower than the payload's own.
    high_water: int


class Cache:
    def __init__(self, path: Path) -> None:
        self.path = path
        #: Why the last :meth:`load` found nothing usable on disk (None: no problem or no file).
        self.problem: str | None = None

    def load(self) -> CacheEntry | None:
        """The stored entry, or None when there is none or it is unreadable (see ``problem``)."""
        self.problem = None
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            self.problem = f"cannot read {self.path} ({exc.strerror})"
            return None
        try:
            data = json.loads(raw)
            return _entry(data)
        except (ValueError, TypeError, KeyError):
            self.problem = f"{self.path} is not a {FORMAT} file; ignoring it"
            return None

    def store(self, entry: CacheEntry) -> None:
        data = json.dumps({"format": FORMAT, **asdict(entry)}, sort_keys=True).encode()
        try:
            write_atomic(self.path, data, mode=PRIVATE, verify=_reads_back(data))
        except WriteError as exc:
            raise CacheError(
                f"cannot write the cache {self.path} ({exc.reason})",
                "Check the directory exists and is writable.",
            ) from None


def _reads_back(data: bytes) -> Callable[[Path], None]:
    def check(temp: Path) -> None:
        if temp.read_bytes() != data:
            raise WriteError(str(temp), "it did not read back as written", "Check the disk.")

    return check


def _entry(data: Any) -> CacheEntry:
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError("wrong format")
    entry = CacheEntry(
        stack=str(data["stack"]),
        client=str(data["client"]),
        signed=str(data["signed"]),
        fetched_at=float(data["fetched_at"]),
        source=str(data["source"]),
        high_water=int(data["high_water"]),
    )
    return entry
