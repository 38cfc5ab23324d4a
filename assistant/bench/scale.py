"""Scale: synthetic corpora of 10k–1M chunks, each FAISS index kind built and searched in turn.

Per kind: build time, the memory the vector index adds, single-query search latency, recall@10
against exact search and, with texts, the whole retrieval step without the encoder:
`assistant.retrieval.hybrid_search` (dense + BM25 + fusion) over a `FaissView` of the chunks,
the very reader the FAISS store hands each question.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from assistant.bench.machine import in_fresh_process, peak_rss_mb, release_memory, rss_mb, run_here
from assistant.bench.synthetic import ADD_BATCH, SyntheticVectors, synthetic_files, synthetic_queries, synthetic_texts
from assistant.bench.timing import recall_at_k, summarize, time_searches
from assistant.settings import Settings

logger = logging.getLogger(__name__)

KINDS = ("flat", "hnsw")  # what `FaissVectors` builds
HNSW_PARAMS = ("m", "efc", "ef")  # HNSW's M, efConstruction and efSearch

#: Each search is timed with FAISS's OpenMP threads as they are, then with one thread: on a small
#: shared machine, waking a second thread for one query costs more than it saves (see docs/benchmarks.md).
THREAD_SETTINGS: tuple[tuple[int | None, str], ...] = ((None, ""), (1, "_1_thread"))


@contextmanager
def faiss_threads(count: int | None) -> Iterator[None]:
    """FAISS's OpenMP thread count for the calling thread: `count` inside the block, as before after it (None: as is)."""
    import faiss

    if count is None:
        yield
        return
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(count)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def parse_kind(spec: str) -> tuple[str, dict[str, int]]:
    """`flat` or `hnsw` as the FAISS store builds them, or `hnsw:m=16:efc=40:ef=256` to try other HNSW parameters.

    >>> parse_kind("hnsw:m=16:ef=256")
    ('hnsw', {'m': 16, 'ef': 256})
    """
    kind, *items = spec.split(":")
    if kind not in KINDS:
        raise ValueError(f"unknown index kind {spec!r}; choose from {', '.join(KINDS)} (or hnsw:m=M:efc=N:ef=N)")
    params: dict[str, int] = {}
    for item in filter(None, items):
        name, _, value = item.partition("=")
        if kind != "hnsw" or name not in HNSW_PARAMS or not value.isdigit() or int(value) <= 0:
            raise ValueError(f"bad index parameter {item!r} in {spec!r}: hnsw takes {', '.join(HNSW_PARAMS)} as positive integers")
        params[name] = int(value)
    return kind, params


def build_vectors(spec: str, vectors: np.ndarray, *, show_progress: bool = False) -> tuple[Any, float]:
    """`FaissVectors` of `spec` (see `parse_kind`) holding `vectors`, and the seconds the build took.

    Vectors go in by batches under a progress bar. Without parameters of its own, a kind is
    built with `FaissVectors`' defaults, which are what the FAISS store builds.
    """
    from tqdm import tqdm

    from assistant.stores.faiss import FaissVectors

    kind, params = parse_kind(spec)
    started = time.perf_counter()
    options = {"hnsw_m": params.get("m", 32), "ef_construction": params.get("efc", 80), "ef_search": params.get("ef", 128)}
    target = FaissVectors(dimension=vectors.shape[1], kind=kind, **(options if params else {}))
    with tqdm(total=len(vectors), unit="vec", desc=f"{spec} {len(vectors):,}", disable=not show_progress, leave=False) as bar:
        for start in range(0, len(vectors), ADD_BATCH):
            target.add(np.ascontiguousarray(vectors[start : start + ADD_BATCH]))
            bar.update(min(ADD_BATCH, len(vectors) - start))
    return target, time.perf_counter() - started


def dense_ids(index: Any, k: int, vector: np.ndarray) -> np.ndarray:
    """The ids of the `k` nearest rows of a FAISS index (or `FaissVectors`) for one vector."""
    return index.search(vector[None, :], k)[1][0]


def _fused_ids(reader: Any, settings: Settings, query: tuple[str, np.ndarray]) -> list[int]:
    from assistant.retrieval import hybrid_search

    text, vector = query
    hits = hybrid_search(reader, text, vector, settings.candidates, fusion=settings.fusion, alpha=settings.alpha,
                         rrf_k=settings.rrf_k, neighbour_weight=settings.neighbour_weight)
    return [hit.chunk.id for hit in hits]


def measure_scale(
    n: int,
    distribution: str,
    kinds: Sequence[str],
    *,
    queries: int = 200,
    k: int = 10,
    vocabulary: tuple[list[str], np.ndarray] | None = None,
    settings: Settings | None = None,
    seed: int = 0,
    show_progress: bool = False,
) -> dict[str, Any]:
    """One synthetic corpus of `n` chunks, every index kind in `kinds` built and searched in turn.

    Per kind: build seconds, the RSS the index added, single-query search p50/p95, recall@k
    against exact search (`faiss.knn`), and, with a `vocabulary`, the whole retrieval step
    (`hybrid_search` given the query vector, with the settings' fusion, over the same chunks).
    Run it in a fresh process (`bench_scale` does) for a meaningful `peak_rss_mb`.
    """
    import faiss

    from assistant.lexical import LexicalIndex
    from assistant.stores.faiss import FaissView

    settings = settings or Settings()
    started = time.perf_counter()
    gen = SyntheticVectors(distribution, n=n, seed=seed)
    corpus, query_vectors = gen.corpus(), gen.queries(queries)
    _, truth = faiss.knn(query_vectors, corpus, min(k, n), metric=faiss.METRIC_INNER_PRODUCT)
    case: dict[str, Any] = {
        "n": n,
        "distribution": distribution,
        "queries": queries,
        "k": k,
        "vectors_mb": round(corpus.nbytes / 2**20, 1),
        "setup_s": round(time.perf_counter() - started, 1),
    }
    chunks = lexical = query_texts = None
    if vocabulary is not None:
        LexicalIndex.build(["load the libraries first, so that their memory is not counted as the chunks'"])
        started, before = time.perf_counter(), rss_mb()
        texts = synthetic_texts(n, *vocabulary, seed=seed)
        query_texts = synthetic_queries(texts, queries, seed=seed + 1)
        chunks = [chunk for file in synthetic_files(texts, doc_size=gen.doc_size) for chunk in file]
        lexical = LexicalIndex.build([c.embedding_text() for c in chunks])  # what the FAISS store indexes
        del texts
        release_memory()
        case["text_build_s"] = round(time.perf_counter() - started, 1)
        case["text_mb"] = round(rss_mb() - before, 1)
    case["kinds"] = {}
    exact_hits: list[list[int]] | None = None
    for kind in kinds:
        release_memory()
        before = rss_mb()
        index, build_s = build_vectors(kind, corpus, show_progress=show_progress)
        row: dict[str, Any] = {"build_s": round(build_s, 2), "index_mb": round(rss_mb() - before, 1)}
        with tempfile.TemporaryDirectory(prefix="bench-store-") as folder:
            index.save(folder)
            row["file_mb"] = round(sum(f.stat().st_size for f in Path(folder).iterdir()) / 2**20, 1)
        for threads, key in THREAD_SETTINGS:
            with faiss_threads(threads):
                times, found = time_searches(partial(dense_ids, index, k), query_vectors)
            row[f"search{key}"] = summarize(times)
            if threads is None:
                row["recall_at_k"] = recall_at_k(found, truth, min(k, n))
        if chunks is not None:
            view = FaissView(chunks, index, lexical)
            hits: list[list[int]] = []
            for threads, key in THREAD_SETTINGS:
                with faiss_threads(threads):
                    times, results = time_searches(partial(_fused_ids, view, settings), zip(query_texts, query_vectors))
                row[f"retrieval{key}"] = summarize(times)
                hits = hits or results
            if kind == "flat":
                exact_hits = hits
            elif exact_hits is not None:  # the fused top k with this index against the fused top k with exact search
                row["retrieval_recall_at_k"] = recall_at_k(hits, exact_hits, k)
            del view
        case["kinds"][kind] = row
        del index
    case["peak_rss_mb"] = round(peak_rss_mb(), 1)
    return case


def auto_kind(settings: Settings, n: int) -> str:
    """The index kind the FAISS store picks for `n` chunks under `settings`."""
    from assistant.stores.faiss.store import resolve_index_kind

    return resolve_index_kind(settings, n)


def bench_scale(
    sizes: Sequence[int],
    *,
    distributions: Sequence[str] = ("topical",),
    kinds: Sequence[str] = ("flat", "hnsw"),
    queries: int = 200,
    vocabulary: tuple[list[str], np.ndarray] | None = None,
    settings: Settings | None = None,
    isolate: bool = True,
    show_progress: bool = False,
    on_case: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """`measure_scale` for every size and distribution, each in a fresh process unless `isolate=False`."""
    settings = settings or Settings()
    run = in_fresh_process if isolate else run_here
    cases = []
    for distribution in distributions:
        for n in sizes:
            logger.info("scale: %s, %d chunks, kinds %s", distribution, n, ", ".join(kinds))
            case = run(
                measure_scale, n, distribution, list(kinds), queries=queries, vocabulary=vocabulary,
                settings=settings, show_progress=show_progress,
            )
            case["auto_kind"] = auto_kind(settings, n)
            cases.append(case)
            if on_case is not None:
                on_case(case)
    return {"cases": cases, "hnsw_threshold": settings.hnsw_threshold, "faiss_index": settings.faiss_index}
