"""Capped exponential backoff with full jitter.

``delay(n) = random() * min(cap, base * 2**n)``: every retrier picks a uniformly random point
below the exponential bound, so a fleet of apps that lost the same endpoint at the same moment
spreads its retries out instead of returning in synchronized waves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    base: float
    cap: float

    def bound(self, failures: int) -> float:
        """The upper bound of the ``failures``-th delay (0-based)."""
        # min() before the power would overflow for a large count; 2**60 is far above any cap.
        return min(self.cap, self.base * float(2 ** min(failures, 60)))

    def delay(self, failures: int, random: Callable[[], float]) -> float:
        return random() * self.bound(failures)
