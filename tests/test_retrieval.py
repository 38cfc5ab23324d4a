from __future__ import annotations

import numpy as np
import pytest

from assistant.indexing import open_synced
from assistant.retrieval import Retriever, fuse_ranks, fuse_scores


def test_rrf_sums_reciprocal_ranks_and_breaks_ties_by_id():
    fused = fuse_ranks([[3, 1, 2], [1, 3]], k=60)
    assert [doc for doc, _ in fused] == [1, 3, 2]  # 1 and 3 tie; the smaller id wins
    assert fused[0][1] == pytest.approx(1 / 62 + 1 / 61)
    assert fuse_ranks([[5], [6]], weights=[1.0, 2.0])[0][0] == 6
    with pytest.raises(ValueError, match="k must be > 0"):
        fuse_ranks([[1]], k=0)


def test_convex_fusion_normalises_bm25():
    fused = fuse_scores(np.array([0.5, 0.4]), np.array([0.0, 8.0]), alpha=0.5)
    assert fused.tolist() == pytest.approx([0.25, 0.7])
    assert fuse_scores(np.array([0.3]), np.array([0.0]), alpha=0.8).tolist() == pytest.approx([0.24])
    with pytest.raises(ValueError):
        fuse_scores(np.array([0.1]), np.array([0.1]), alpha=1.5)


@pytest.mark.parametrize("fusion", ["convex", "rrf"])
def test_hybrid_search_finds_the_passage(settings, fake_embedder, fusion):
    store, _ = open_synced(settings, fake_embedder, on_change=lambda m: None)
    retriever = Retriever(store, fake_embedder, fusion=fusion, neighbour_weight=0.3)
    hits = retriever.search("Do black beans and lentils contain magnesium?", k=5)
    assert any("lentils contain significant magnesium" in h.chunk.text for h in hits[:3])
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert len({h.chunk.id for h in hits}) == len(hits)
    assert retriever.search("zzzz qqqq", k=3)  # no lexical match still gives dense results


def test_search_rejects_bad_k(settings, fake_embedder):
    retriever = Retriever(open_synced(settings, fake_embedder, on_change=lambda m: None)[0], fake_embedder)
    with pytest.raises(ValueError, match="k must be > 0"):
        retriever.search("x", k=0)
