"""Hybrid retrieval: dense and lexical (BM25) candidates from a store, fused.

Two fusions are offered, because they suit different corpora:

* `fuse_scores`, a convex combination of the cosine and the max-normalised BM25 score
  (Bruch et al., "An Analysis of Fusion Functions for Hybrid Retrieval", TOIS 2023): keeps
  how far apart the scores are. It ranks better than rank fusion both on the article
  (dev-set hit@3) and on SciFact through the product's own retrieval (test nDCG@10 0.721
  against 0.709 for RRF, see docs/retrieval-quality.md), so it is the default.
* `fuse_ranks`, reciprocal-rank fusion (Cormack et al., SIGIR 2009): needs no score
  calibration; kept as `Settings.fusion = "rrf"` and as a comparison row of `eval --beir`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import AbstractSet, Sequence

import numpy as np

from assistant.embedding import Embedder
from assistant.models import Chunk
from assistant.stores.base import ChunkReader, ChunkStore, Key


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk with its fused score, the two scores it came from, and its store key."""

    chunk: Chunk
    score: float
    dense: float
    lexical: float
    key: Key | None = None


def fuse_ranks(
    rankings: Sequence[Sequence[int]], *, k: int = 60, weights: Sequence[float] | None = None
) -> list[tuple[int, float]]:
    """Reciprocal-rank fusion: score(d) = Σ w_i / (k + rank_i(d)), ranks counted from 1.

    k=60 is the value of the original paper (as in pyserini). Ties break on the smaller id so
    that results are deterministic.

    >>> fuse_ranks([[1, 2], [2, 3]])[0][0]
    2
    """
    if k <= 0:
        raise ValueError(f"k must be > 0, got {k}")
    weights = weights if weights is not None else [1.0] * len(rankings)
    scores: dict[int, float] = {}
    for ranking, weight in zip(rankings, weights):
        for rank, doc in enumerate(ranking, start=1):
            scores[doc] = scores.get(doc, 0.0) + weight / (k + rank)
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))


def fuse_scores(dense: np.ndarray, lexical: np.ndarray, *, alpha: float) -> np.ndarray:
    """alpha·cosine + (1−alpha)·BM25/max(BM25), element-wise over aligned candidates."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be within [0, 1], got {alpha}")
    top = float(lexical.max()) if lexical.size else 0.0
    scaled = lexical / top if top > 0 else np.zeros_like(lexical)
    return alpha * dense + (1.0 - alpha) * scaled


def hybrid_search(
    store: ChunkReader,
    query: str,
    vector: np.ndarray,
    k: int,
    *,
    fusion: str = "convex",
    alpha: float = 0.8,
    rrf_k: int = 60,
    neighbour_weight: float = 0.0,
    sources: AbstractSet[str] | None = None,
) -> list[Hit]:
    """The `k` best chunks of `store` for `query` (embedded as `vector`), best first; only of `sources` when given.

    Each retriever proposes `k` candidates; every candidate then gets both of its scores
    exactly (the cosine of a lexical-only candidate, the BM25 of a dense-only one), so the
    fused ranking does not depend on which retriever found a chunk. Ties break on document
    order, which makes results the same whichever backend holds the chunks.
    """
    if fusion not in ("convex", "rrf"):
        raise ValueError(f"fusion must be 'convex' or 'rrf', got {fusion!r}")
    if k <= 0:
        raise ValueError(f"k must be > 0, got {k}")
    if not store.count():
        return []
    dense_pairs = store.dense(vector, k, sources)
    lexical_pairs = store.lexical(query, k, sources)
    records = store.records(list(dict.fromkeys([key for key, _ in dense_pairs + lexical_pairs])))
    keys = sorted(records, key=lambda key: (records[key].chunk.source, records[key].chunk.id))
    if not keys:
        return []
    position = {key: j for j, key in enumerate(keys)}
    dense_by_key = {key: score for key, score in dense_pairs}
    missing = [key for key in keys if key not in dense_by_key]
    if missing:  # lexical-only candidates: score them exactly rather than guess
        dense_by_key.update(zip(missing, (store.vectors(missing) @ vector).tolist()))
    dense_c = np.array([dense_by_key[key] for key in keys], dtype=np.float32)
    lexical_c = np.asarray(store.lexical_scores(query, keys), dtype=np.float32)
    if fusion == "convex":
        fused = fuse_scores(dense_c, lexical_c, alpha=alpha)
        ranked = [(int(j), float(fused[j])) for j in np.lexsort((np.arange(len(keys)), -fused))]
    else:
        rankings = [[position[key] for key, _ in pairs if key in position] for pairs in (dense_pairs, lexical_pairs)]
        ranked = fuse_ranks(rankings, k=rrf_k)
    if neighbour_weight:
        ranked = _with_neighbours(ranked, [records[key].previous for key in keys], position, neighbour_weight)
    return [Hit(records[keys[j]].chunk, score, float(dense_c[j]), float(lexical_c[j]), keys[j]) for j, score in ranked[:k]]


def _with_neighbours(
    ranked: list[tuple[int, float]], previous: list[Key | None], position: dict[Key, int], weight: float
) -> list[tuple[int, float]]:
    """Add `weight` × the score of the chunk just before, within the same section.

    A passage that opens a topic ("other nutrients play a role…", "here are some sources:")
    is continued by what follows it; letting the follower inherit part of the opener's
    relevance ranks the sentence or list that carries the answer next to its introduction.
    """
    score = dict(ranked)
    rescored = []
    for j, value in ranked:
        before = position.get(previous[j]) if previous[j] is not None else None
        if before is not None:
            value += weight * score.get(before, 0.0)
        rescored.append((j, value))
    return sorted(rescored, key=lambda item: (-item[1], item[0]))


class Retriever:
    """Embeds questions and searches one `ChunkStore` with the configured fusion.

    Example:
        >>> retriever = Retriever(store, embedder)  # doctest: +SKIP
        >>> [h.chunk.text for h in retriever.search("foods with magnesium", k=3)]  # doctest: +SKIP
    """

    def __init__(
        self,
        store: ChunkStore,
        embedder: Embedder,
        *,
        fusion: str = "convex",
        alpha: float = 0.8,
        rrf_k: int = 60,
        neighbour_weight: float = 0.0,
    ) -> None:
        if fusion not in ("convex", "rrf"):
            raise ValueError(f"fusion must be 'convex' or 'rrf', got {fusion!r}")
        self.store = store
        self.embedder = embedder
        self.fusion = fusion
        self.alpha = alpha
        self.rrf_k = rrf_k
        self.neighbour_weight = neighbour_weight

    def encode(self, query: str) -> np.ndarray:
        return self.embedder.encode([query])[0]

    def search(
        self, query: str, *, k: int = 30, vector: np.ndarray | None = None, reader: ChunkReader | None = None,
        sources: AbstractSet[str] | None = None,
    ) -> list[Hit]:
        """The `k` best chunks for `query`, best first (ties in document order); only of `sources` when given.

        `reader` is the view of the store to search (one per question); by default the store's current one.
        """
        if k <= 0:
            raise ValueError(f"k must be > 0, got {k}")
        vector = self.encode(query) if vector is None else vector
        return hybrid_search(
            reader or self.store.view(), query, vector, k,
            fusion=self.fusion, alpha=self.alpha, rrf_k=self.rrf_k, neighbour_weight=self.neighbour_weight, sources=sources,
        )
