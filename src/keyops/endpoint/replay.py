"""A token's ``jti`` is accepted once: replays of a captured token are refused.

The endpoint accepts a token while its ``iat`` is within ±300 s of the server clock
(:data:`~keyops.endpoint.claims.IAT_WINDOW_SECONDS`), so a ``jti`` must be remembered until the
token would be refused as stale anyway: ``iat + 300 s`` (``now + 600 s`` when the caller has no
``iat``, which covers any ``iat`` the window accepts). After that the claims check refuses it,
and the entry can go.

**Per process, bounded.** The cache lives in the process that answers: each ``keyops serve``
worker and each Lambda execution environment has its own, and they share nothing (Lambda
instances in one region, and the regions, do not see each other's ``jti``). A replay that lands
on another process is answered once more there; adoption figures still count it once, because
they count distinct installs, not answers. Memory is bounded by ``max_entries`` (a 16-byte digest
per entry: client and ``jti`` of up to 256 characters are hashed, so an entry's size does not
depend on what the app sent); entries leave in expiry order.

**When it is full** of entries that have not expired (``max_entries`` tokens within the window in
one process, far above what one process answers), a new token is refused with 503
``replay-cache-full`` and a ``retry-after``: failing closed keeps every accepted token checked,
and 503 makes a client try its next endpoint instead of treating its own token as bad. A replay
is answered 401 ``replayed-token`` (docs/protocol.md).

Only a token whose signature and claims verified may be checked here, so a forger cannot fill
the cache.
"""

from __future__ import annotations

import hashlib
import heapq
import math
import threading

from keyops.core.errors import ServiceError

#: Seconds a token is accepted on either side of the server clock (claims.IAT_WINDOW_SECONDS).
WINDOW_SECONDS = 300
DEFAULT_MAX_ENTRIES = 100_000


def replayed_token() -> ServiceError:
    return ServiceError(401, "replayed-token", "The token was already used")


def cache_full(retry_after: int) -> ServiceError:
    return ServiceError(
        503, "replay-cache-full", "Too many tokens in flight; try again later", retry_after
    )


class ReplayCache:
    """Remembers ``(client, jti)`` of accepted tokens until they could no longer be accepted."""

    def __init__(
        self, *, window_seconds: float = WINDOW_SECONDS, max_entries: int = DEFAULT_MAX_ENTRIES
    ) -> None:
        if window_seconds <= 0 or max_entries < 1:
            raise ValueError("window_seconds and max_entries must be positive")
        self.window_seconds = float(window_seconds)
        self.max_entries = max_entries
        self._expiry: dict[bytes, float] = {}
        self._heap: list[tuple[float, bytes]] = []
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._expiry)

    def check(self, client: str, jti: str, now: float, iat: float | None = None) -> None:
        """Accept this token once; raise 401 ``replayed-token`` for a replay, or 503
        ``replay-cache-full`` when no entry can be made."""
        key = hashlib.sha256(f"{client}\0{jti}".encode()).digest()[:16]
        # A token verified at `now` has |now - iat| <= window, so it goes stale at iat + window;
        # without iat, now + 2 * window is the latest that can be.
        expires = (iat if iat is not None else now + self.window_seconds) + self.window_seconds
        expires = max(expires, now)
        with self._lock:
            self._evict(now)
            if key in self._expiry:
                raise replayed_token()
            if len(self._expiry) >= self.max_entries:
                raise cache_full(max(1, math.ceil(self._heap[0][0] - now)))
            self._expiry[key] = expires
            heapq.heappush(self._heap, (expires, key))

    def _evict(self, now: float) -> None:
        # An entry stays while its token could still be accepted (expiry included).
        while self._heap and self._heap[0][0] < now:
            _, key = heapq.heappop(self._heap)
            self._expiry.pop(key, None)
