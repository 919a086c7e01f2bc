"""The last-known-good cache: the newest accepted signed payload, on the device's disk.

What is stored is the signed JWS as the server's answer carried it, not a decoded key, so a
cached entry is verified against the pinned keys again every time it is read: a cache file
edited by malware or a backup restore cannot inject a key. The file also remembers the highest
``bundle_version`` accepted (the rollback watermark).

Writes are atomic, mode 0600 and read back (:func:`keyops.core.atomic.write_atomic`). Reads
treat the file as hostile: it is opened without following a symlink and without blocking (a FIFO
planted at the path must not hang the app), read only if it is a small regular file, and every
member is checked for its type; anything else is ignored with a note, never an exception.
"""

from __future__ import annotations

import errno
import json
import math
import os
import stat
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from keyops.core import safejson
from keyops.core.atomic import PRIVATE, write_atomic
from keyops.core.errors import CacheError, WriteError

FORMAT = "keyops-client-cache/1"
#: A cache file is about 2 KB; anything much larger is not one, and is not read into memory.
MAX_CACHE_BYTES = 64 * 1024


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
        """The stored entry, or None when there is none or it is unusable (see ``problem``)."""
        self.problem = None
        try:
            raw = _read(self.path)
        except FileNotFoundError:
            return None
        except _NotACache as exc:
            self.problem = f"ignoring the cache {self.path}: {exc}"
            return None
        except OSError as exc:
            self.problem = f"cannot read {self.path} ({exc.strerror})"
            return None
        try:
            return _entry(safejson.parse(raw))
        except ValueError as exc:
            self.problem = f"ignoring the cache {self.path}: {exc}"
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


class _NotACache(Exception):
    """The path holds something that is not a cache file (internal to this module)."""


def _read(path: Path) -> bytes:
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _NotACache("a symlink") from None
        raise
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise _NotACache("not a regular file")
        data = handle.read(MAX_CACHE_BYTES + 1)
    if len(data) > MAX_CACHE_BYTES:
        raise _NotACache(f"larger than {MAX_CACHE_BYTES} bytes")
    return data


def _string(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str):
        raise ValueError(f"{name!r} is not a string")
    return value


def _finite(value: Any, name: str) -> float:
    # bool is an int in Python, and a JSON true is no time; 1e400 parses as infinity, and an
    # integer of 400 digits does not fit a float at all.
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if math.isfinite(number):
            return number
    raise ValueError(f"{name!r} is not a finite number")


def _entry(data: Any) -> CacheEntry:
    """The entry a parsed document holds; ``ValueError`` names the first member that is wrong."""
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    if data.get("format") != FORMAT:
        raise ValueError(f"'format' is not {FORMAT!r}")
    fetched_at = _finite(data.get("fetched_at"), "fetched_at")
    high_water = data.get("high_water")
    if not isinstance(high_water, int) or isinstance(high_water, bool) or high_water < 0:
        raise ValueError("'high_water' is not a non-negative integer")
    return CacheEntry(
        stack=_string(data, "stack"),
        client=_string(data, "client"),
        signed=_string(data, "signed"),
        fetched_at=fetched_at,
        source=_string(data, "source"),
        high_water=high_water,
    )
