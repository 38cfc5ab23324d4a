"""Indexing throughput: a full build the product's way against bare `encode` of the same chunk texts (target ≥ 0.9×).

The build is `assistant.indexing.open_synced(force=True)`, what `python -m assistant index
--force` runs: the store is emptied, then `sync_store` reads, chunks, embeds and adds every
file and commits (BM25, vectors, an atomic save).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from assistant.bench.timing import TimedEmbedder, interleaved, ratio
from assistant.embedding import Embedder
from assistant.settings import Settings

#: The batch size a build encodes with (`Embedder.encode`'s default); the indexing floor uses it too,
#: so that the comparison is of the pipeline, not of batch sizes (sentence-transformers' own default is 32).
ENCODE_BATCH = 64


def write_beir_corpus(dataset: Any, folder: Path, *, limit: int) -> Path:
    """Write the first `limit` documents of a `BeirDataset` as the BEIR evaluation does (one Markdown file each)."""
    from assistant.evaluation.beir_data import write_corpus

    write_corpus(dataset, folder, limit=limit)
    return folder


def chunk_texts(settings: Settings) -> list[str]:
    """The texts a build of `settings.corpus_dir` embeds, one a chunk."""
    from assistant.chunking import chunk_corpus
    from assistant.corpus import load_corpus

    docs = load_corpus(settings.corpus_dir, max_bytes=settings.max_file_bytes)
    chunks = chunk_corpus(docs, max_chunk_chars=settings.max_chunk_chars, max_heading_words=settings.max_heading_words)
    return [c.embedding_text() for c in chunks]


def build_index(settings: Settings, embedder: Embedder, *, show_progress: bool = False) -> int:
    """Index `settings.corpus_dir` from empty, as `python -m assistant index --force` does; returns the chunks embedded."""
    from assistant.indexing import open_synced

    store, report = open_synced(settings, embedder, force=True, show_progress=show_progress, on_change=lambda message: None)
    store.close()
    return report.chunks


def bench_indexing(
    settings: Settings,
    embedder: Embedder,
    floor: Callable[[list[str]], object],
    *,
    rounds: int = 3,
    show_progress: bool = False,
) -> dict[str, Any]:
    """A full index build (`build_index`) against `floor` encoding the same texts, interleaved.

    The embedder is wrapped to split build time into encoder and rest.
    """
    texts = chunk_texts(settings)
    if not texts:
        raise ValueError(f"the corpus {settings.corpus_dir} has no chunks to index")
    timed = TimedEmbedder(embedder)
    floor(texts[:8])  # warm both paths the same way
    timed.encode(texts[:8])
    builds, bare, rest = [], [], []
    for _, build_first in interleaved(1, rounds):
        for run_build in (build_first, not build_first):
            if run_build:
                encoder_before = timed.seconds
                started = time.perf_counter()
                embedded = build_index(settings, timed, show_progress=show_progress)
                elapsed = time.perf_counter() - started
                if embedded != len(texts):
                    raise RuntimeError(f"the build embedded {embedded} chunks, the corpus has {len(texts)}")
                builds.append(elapsed)
                rest.append(elapsed - (timed.seconds - encoder_before))
            else:
                started = time.perf_counter()
                floor(texts)
                bare.append(time.perf_counter() - started)
    build_s, bare_s = float(np.median(builds)), float(np.median(bare))
    return {
        "chunks": len(texts),
        "rounds": rounds,
        "mean_chunk_chars": round(float(np.mean([len(t) for t in texts])), 1),
        "build_s": round(build_s, 3),
        "bare_encode_s": round(bare_s, 3),
        "non_encoder_s": round(float(np.median(rest)), 3),
        "build_chunks_per_s": round(len(texts) / build_s, 1),
        "bare_chunks_per_s": round(len(texts) / bare_s, 1),
        "ratio": ratio(bare_s, build_s),
        "target_ratio": 0.9,
    }
