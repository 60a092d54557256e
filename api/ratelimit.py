"""Per-key token buckets: ``rate_per_minute`` on average, bursts of ``burst`` requests."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

MAX_BUCKETS = 10_000  # past this, full (idle) buckets are forgotten: they hold no state worth keeping


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """In memory, per API process: each process behind a load balancer has its own buckets."""

    def __init__(
        self, rate_per_minute: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate_per_minute / 60.0
        self.burst = float(burst)
        self.clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def take(self, key: str) -> float:
        """Spend one token: 0 when the request may go ahead, else the seconds until it may."""
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= MAX_BUCKETS:
                self._forget_idle(now)
            bucket = self._buckets[key] = _Bucket(self.burst, now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate

    def _forget_idle(self, now: float) -> None:
        for key, bucket in list(self._buckets.items()):
            if bucket.tokens + (now - bucket.updated) * self.rate >= self.burst:
                del self._buckets[key]
