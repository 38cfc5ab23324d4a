"""Timing statistics: summaries in milliseconds, interleaving, a timed embedder, recall against exact search."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from assistant.embedding import Embedder


def summarize(seconds: Sequence[float]) -> dict[str, float]:
    """p50, p95 and mean in milliseconds, and the number of samples.

    >>> summarize([0.001, 0.002, 0.003])["p50_ms"]
    2.0
    """
    values = np.asarray(seconds, dtype=np.float64) * 1000.0
    if not values.size:
        return {"n": 0, "p50_ms": float("nan"), "p95_ms": float("nan"), "mean_ms": float("nan")}
    return {
        "n": int(values.size),
        "p50_ms": round(float(np.percentile(values, 50)), 3),
        "p95_ms": round(float(np.percentile(values, 95)), 3),
        "mean_ms": round(float(values.mean()), 3),
    }


def ratio(a: float, b: float) -> float:
    return round(a / b, 3) if b else float("nan")


def interleaved(count: int, rounds: int) -> Iterable[tuple[int, bool]]:
    """(item, measured-first) pairs: every item `rounds` times, the order of each pair alternating.

    Alternating which of the two runs first keeps warm caches and load spikes from favouring either.
    """
    for r in range(rounds):
        for i in range(count):
            yield i, (i + r) % 2 == 0


class TimedEmbedder:
    """An `Embedder` that adds up the time spent in `encode`, to split a timing into encoder and rest.

    Example:
        >>> timed = TimedEmbedder(embedder)  # doctest: +SKIP
        >>> timed.encode(["magnesium"]); timed.seconds  # doctest: +SKIP
    """

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.name = inner.name
        self.dimension = inner.dimension
        self.seconds = 0.0
        self.calls = 0

    def encode(self, texts: Sequence[str], *, batch_size: int = 64, show_progress: bool = False) -> np.ndarray:
        started = time.perf_counter()
        try:
            return self.inner.encode(texts, batch_size=batch_size, show_progress=show_progress)
        finally:
            self.seconds += time.perf_counter() - started
            self.calls += 1

    def encode_tokens(self, texts: Sequence[str], *, batch_size: int = 64) -> tuple[np.ndarray, list]:
        started = time.perf_counter()
        try:
            return self.inner.encode_tokens(texts, batch_size=batch_size)
        finally:
            self.seconds += time.perf_counter() - started
            self.calls += 1


def time_searches(search: Callable[[Any], Any], queries: Iterable[Any]) -> tuple[list[float], list[Any]]:
    """Time `search(query)` for every query, one at a time, as the assistant searches; (seconds, results)."""
    times, results = [], []
    for query in queries:
        started = time.perf_counter()
        results.append(search(query))
        times.append(time.perf_counter() - started)
    return times, results


def recall_at_k(found: Sequence[Sequence[int]], truth: Sequence[Sequence[int]], k: int) -> float:
    """Mean share of the exact top `k` that the search found (ids < 0 are empty slots).

    >>> recall_at_k([[1, 2, -1]], [[2, 3, 1]], 3)
    0.6667
    """
    shares = [len({int(i) for i in f[:k] if i >= 0} & {int(i) for i in t[:k]}) / k for f, t in zip(found, truth)]
    return round(float(np.mean(shares)), 4)
