"""Distinct installs per held credential, in a sliding time window, with bounded memory.

Adoption evidence must count installs, not requests: one install that asks a thousand times, or
one token replayed a thousand times, is still one install. Each answer is observed as
``(client, held label, install hash)``; the counter keeps, per ``(client, held label)``, the set of
install hashes seen in the last ``window_seconds``, each with the time it was last seen.

**Why exact sets with a cap, not a HyperLogLog sketch.** The retirement gate compares a small
numerator (installs still on the old key) with a threshold around 1%: an exact count is right at
any size, needs no dependency (this module ships in the Lambda asset, stdlib only) and is easy to
test. Memory is bounded by ``cap`` hashes per ``(client, held label)`` (about 100 bytes each),
and the labels are bounded: a held value is one of the client's credential ids, ``none`` or
``other`` (:func:`held_label`), never what an app sent. When a set is full, new hashes are
dropped and the count is marked *saturated* (a lower bound) for a window. A saturated
denominator only makes a share look larger, which errs towards keeping a key; a saturated
numerator is reported as such and ``keyops adoption`` refuses to turn it into a share.

Install ids never enter this module: callers pass :func:`install_hash`, an HMAC-SHA256 of the id
under the stack's salt, truncated to 16 hex characters (64 bits: collisions are negligible at
millions of installs, and the id cannot be recovered without the salt).

With several worker processes each keeps its own counter; :func:`merge` unions their
:meth:`InstallCounter.snapshot` outputs so that an install seen by two workers counts once.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

#: Hex characters kept of the HMAC-SHA256: 64 bits.
HASH_HEX_CHARS = 16
#: ``held`` when the app sent none, and when it named an id the client does not have.
NONE = "none"
UNKNOWN = "other"
#: Labels that say nothing about which key an install holds: never in a denominator.
SKIP = frozenset({NONE, UNKNOWN})
DEFAULT_WINDOW_SECONDS = 7 * 86400
DEFAULT_CAP = 100_000

Key = tuple[str, str]


class InstallHasher:
    """Hashes install ids under one stack's salt; the HMAC key is prepared once, when the
    bundle loads (each request copies it), like the endpoint's other keys."""

    __slots__ = ("_mac",)

    def __init__(self, salt: bytes) -> None:
        self._mac = hmac.new(salt, digestmod=hashlib.sha256)

    def __call__(self, install_id: str) -> str:
        mac = self._mac.copy()
        mac.update(install_id.encode("utf-8"))
        return mac.hexdigest()[:HASH_HEX_CHARS]


def install_hash(salt: bytes, install_id: str) -> str:
    """The pseudonymous install hash that logs and counters carry instead of the install id."""
    return InstallHasher(salt)(install_id)


def held_label(held: str | None, credential_ids: Collection[str]) -> str:
    """A bounded label for the ``held`` claim: a credential id of the client, ``none`` or
    ``other`` (an id the client does not have: apps must not choose metric labels)."""
    if held is None:
        return NONE
    return held if held in credential_ids else UNKNOWN


class Count(NamedTuple):
    installs: int
    #: True when the set reached its cap within the window: ``installs`` is a lower bound.
    saturated: bool = False


class InstallCounter:
    """Exact distinct install hashes per ``(client, held label)``, per process, thread-safe."""

    def __init__(
        self, *, window_seconds: float = DEFAULT_WINDOW_SECONDS, cap: int = DEFAULT_CAP
    ) -> None:
        if window_seconds <= 0 or cap < 1:
            raise ValueError("window_seconds and cap must be positive")
        self.window_seconds = float(window_seconds)
        self.cap = cap
        # Insertion order is last-seen order (a re-seen hash moves to the end), so expiry pops
        # from the front: O(1) amortized per observation.
        self._seen: dict[Key, dict[str, float]] = {}
        self._saturated_until: dict[Key, float] = {}
        self._lock = threading.Lock()

    def observe(self, client: str, held: str, digest: str, now: float) -> None:
        """Count ``digest`` (from :func:`install_hash`) under ``(client, held label)``."""
        key = (client, held)
        with self._lock:
            bucket = self._seen.setdefault(key, {})
            self._expire(bucket, now)
            if digest in bucket:
                del bucket[digest]
            elif len(bucket) >= self.cap:
                self._saturated_until[key] = now + self.window_seconds
                return
            bucket[digest] = now

    def _expire(self, bucket: dict[str, float], now: float) -> None:
        oldest = now - self.window_seconds
        while bucket:
            first = next(iter(bucket))
            if bucket[first] >= oldest:
                break
            del bucket[first]

    def snapshot(self, now: float) -> dict[str, Any]:
        """JSON-ready state for other workers: hashes (never install ids) and saturation."""
        with self._lock:
            buckets = []
            for (client, held), bucket in sorted(self._seen.items()):
                self._expire(bucket, now)
                until = self._saturated_until.get((client, held), 0.0)
                buckets.append([client, held, dict(bucket), until])
        return {"window_seconds": self.window_seconds, "buckets": buckets}

    def counts(self, now: float) -> dict[Key, Count]:
        return merge([self.snapshot(now)], now)


def merge(snapshots: Iterable[Mapping[str, Any]], now: float) -> dict[Key, Count]:
    """Union several workers' snapshots: ``(client, held label) -> Count``.

    A malformed snapshot (a worker mid-write, a stray file) is skipped, never raised.
    """
    seen: dict[Key, set[str]] = {}
    saturated: set[Key] = set()
    for snap in snapshots:
        try:
            window = float(snap["window_seconds"])
            for client, held, bucket, until in snap["buckets"]:
                key = (str(client), str(held))
                hashes = seen.setdefault(key, set())
                hashes.update(str(d) for d, last in bucket.items() if float(last) >= now - window)
                if float(until) > now:
                    saturated.add(key)
        except (KeyError, TypeError, ValueError, AttributeError):
            continue
    return {key: Count(len(hashes), key in saturated) for key, hashes in seen.items()}


def reporting(
    counts: Mapping[Key, Count], snapshots: Iterable[Mapping[str, Any]], now: float
) -> dict[str, Count]:
    """Per client, distinct installs that named one of its credentials (the denominator).

    An install that moved from the old key to the new one within the window is in both held
    sets but counts once here. ``none`` and ``other`` are left out: they say nothing about
    which key an install holds.
    """
    union: dict[str, set[str]] = {}
    saturated: set[str] = {c for (c, h), n in counts.items() if n.saturated and h not in SKIP}
    for snap in snapshots:
        try:
            window = float(snap["window_seconds"])
            for client, held, bucket, _until in snap["buckets"]:
                if held in SKIP:
                    continue
                live = (str(d) for d, last in bucket.items() if float(last) >= now - window)
                union.setdefault(str(client), set()).update(live)
        except (KeyError, TypeError, ValueError, AttributeError):
            continue
    return {client: Count(len(hashes), client in saturated) for client, hashes in union.items()}


#: The Prometheus metric names ``keyops adoption --from URL`` reads.
INSTALLS_METRIC = "keyops_installs"
REPORTING_METRIC = "keyops_installs_reporting"
UNKNOWN_METRIC = "keyops_installs_held_unknown"
SATURATED_METRIC = "keyops_installs_saturated"
WINDOW_METRIC = "keyops_installs_window_seconds"


def render(
    stack: str, snapshots: Sequence[Mapping[str, Any]], now: float, window_seconds: float
) -> list[str]:
    """Prometheus text lines for ``/metrics`` (to append to the counters' lines)."""
    counts = merge(snapshots, now)
    per_client = reporting(counts, snapshots, now)
    lines = _help(
        INSTALLS_METRIC,
        "Distinct installs seen in the window, by the credential they said they held "
        "(none: no held claim).",
    )
    for (client, held), count in sorted(counts.items()):
        if held != UNKNOWN:
            lines.append(_sample(INSTALLS_METRIC, count.installs, stack, client, held))
    lines += _help(
        REPORTING_METRIC,
        "Distinct installs that named one of the client's credentials (the adoption denominator).",
    )
    for client, count in sorted(per_client.items()):
        lines.append(_sample(REPORTING_METRIC, count.installs, stack, client))
    lines += _help(
        UNKNOWN_METRIC,
        "Distinct installs that named a credential id the client does not have (left out of "
        "the denominator).",
    )
    for (client, held), count in sorted(counts.items()):
        if held == UNKNOWN:
            lines.append(_sample(UNKNOWN_METRIC, count.installs, stack, client))
    lines += _help(SATURATED_METRIC, "1 when a count reached its cap: it is a lower bound.")
    for (client, held), count in sorted(counts.items()):
        lines.append(_sample(SATURATED_METRIC, int(count.saturated), stack, client, held))
    lines += _help(WINDOW_METRIC, "The sliding window the install counts cover.")
    lines.append(_sample(WINDOW_METRIC, int(window_seconds), stack))
    return lines


def _help(name: str, text: str) -> list[str]:
    return [f"# HELP {name} {text}", f"# TYPE {name} gauge"]


def _sample(name: str, value: int, stack: str, client: str = "", held: str = "") -> str:
    labels = [("stack", stack), ("client", client), ("held", held)]
    text = ",".join(f'{k}="{_label(v)}"' for k, v in labels if k == "stack" or v)
    return f"{name}{{{text}}} {value}"


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
