"""A token bucket per client: `burst` requests at once, then `per_minute` a minute on average.

A client's bucket holds up to `burst` tokens and refills continuously at `per_minute / 60` tokens a
second; each request takes one. An empty bucket means "wait", and the wait is exact: the time
until the next token, which becomes the `Retry-After` of a 429. The clock is injectable so tests
are exact and instant. Memory is bounded: at most `max_clients` buckets are kept, the least
recently seen client forgotten first (a forgotten client comes back with a full bucket, which
errs on the side of letting people in).

Example:
    >>> now = [0.0]
    >>> limiter = RateLimiter(per_minute=60, burst=2, clock=lambda: now[0])
    >>> [limiter.acquire("ip:192.0.2.1") for _ in range(3)]
    [0.0, 0.0, 1.0]
    >>> now[0] = 1.0
    >>> limiter.acquire("ip:192.0.2.1")
    0.0
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Callable


class RateLimiter:
    """Per-key token buckets; `per_minute=0` turns limiting off (every `acquire` is granted)."""

    def __init__(
        self,
        *,
        per_minute: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = 10_000,
    ) -> None:
        if per_minute < 0:
            raise ValueError(f"per_minute must be >= 0 (0 turns limiting off), got {per_minute}")
        if burst < 1:
            raise ValueError(f"burst must be >= 1, got {burst}")
        if max_clients < 1:
            raise ValueError(f"max_clients must be >= 1, got {max_clients}")
        self.per_minute = per_minute
        self.burst = burst
        self.max_clients = max_clients
        self._per_second = per_minute / 60.0
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, when)
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.per_minute > 0

    def acquire(self, key: str) -> float:
        """Take a token for `key`: 0.0 when granted, else the seconds until one is free (nothing is taken)."""
        if not self.enabled:
            return 0.0
        now = self._clock()
        with self._lock:
            tokens, then = self._buckets.pop(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + max(0.0, now - then) * self._per_second)
            wait = 0.0 if tokens >= 1.0 else (1.0 - tokens) / self._per_second
            self._buckets[key] = (tokens - 1.0 if wait == 0.0 else tokens, now)
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
        return wait

    def __len__(self) -> int:
        """How many clients are remembered now."""
        return len(self._buckets)
