"""assistant.server.ratelimit: token buckets per client, on an injected clock (exact, instant)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assistant.server.ratelimit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_then_one_request_per_interval_by_hand():
    """60/min with a burst of 3, worked by hand: 3 at once, then one a second, waits exact."""
    clock = Clock()
    limiter = RateLimiter(per_minute=60, burst=3, clock=clock)
    assert [limiter.acquire("a") for _ in range(4)] == [0.0, 0.0, 0.0, 1.0]
    clock.now += 0.25
    assert limiter.acquire("a") == pytest.approx(0.75)  # a refusal takes nothing: the wait only shrinks
    clock.now += 0.75
    assert limiter.acquire("a") == 0.0 and limiter.acquire("a") == pytest.approx(1.0)
    clock.now += 3600
    assert [limiter.acquire("a") for _ in range(4)] == [0.0, 0.0, 0.0, 1.0]  # refills up to the burst, no more


def test_clients_have_their_own_buckets():
    clock = Clock()
    limiter = RateLimiter(per_minute=6, burst=1, clock=clock)
    assert limiter.acquire("ip:192.0.2.1") == 0.0
    assert limiter.acquire("ip:192.0.2.1") == pytest.approx(10.0)
    assert limiter.acquire("token:abc") == 0.0 and limiter.acquire("ip:192.0.2.2") == 0.0


def test_zero_turns_it_off_and_bad_values_say_what_to_do():
    limiter = RateLimiter(per_minute=0, burst=1)
    assert not limiter.enabled and all(limiter.acquire("a") == 0.0 for _ in range(1000)) and len(limiter) == 0
    with pytest.raises(ValueError, match="per_minute must be >= 0"):
        RateLimiter(per_minute=-1, burst=1)
    with pytest.raises(ValueError, match="burst must be >= 1, got 0"):
        RateLimiter(per_minute=60, burst=0)


def test_memory_is_bounded_and_the_least_recent_client_is_forgotten_first():
    clock = Clock()
    limiter = RateLimiter(per_minute=1, burst=1, clock=clock, max_clients=100)
    for i in range(10_000):
        limiter.acquire(f"ip:{i}")
    assert len(limiter) == 100
    assert limiter.acquire("ip:9999") > 0  # remembered: still empty
    assert limiter.acquire("ip:0") == 0.0  # forgotten: back with a full bucket


@settings(max_examples=300, deadline=None)
@given(
    per_minute=st.integers(1, 600),
    burst=st.integers(1, 30),
    gaps=st.lists(st.floats(0, 5, allow_nan=False), min_size=1, max_size=200),
)
def test_never_more_than_the_burst_plus_the_rate_and_the_wait_is_honest(per_minute, burst, gaps):
    """Over any window, granted <= burst + rate * window; after the announced wait, a request is granted."""
    clock = Clock()
    limiter = RateLimiter(per_minute=per_minute, burst=burst, clock=clock)
    start = clock.now
    granted = 0
    for gap in gaps:
        clock.now += gap
        wait = limiter.acquire("c")
        if wait == 0.0:
            granted += 1
        else:
            assert 0 < wait <= 60 / per_minute + 1e-9
        assert granted <= burst + (clock.now - start) * per_minute / 60 + 1e-6
    wait = limiter.acquire("c")
    if wait:
        clock.now += wait + 1e-9
        assert limiter.acquire("c") == 0.0


def test_a_client_at_exactly_the_rate_is_never_refused():
    clock = Clock()
    limiter = RateLimiter(per_minute=60, burst=1, clock=clock)
    for _ in range(1000):
        assert limiter.acquire("steady") == 0.0
        clock.now += 1.0
    assert math.isclose(limiter.acquire("steady"), 0.0)
