"""Milvus Lite against FAISS on the same synthetic corpora (the `milvus` part; long, so not run by default).

Each engine is filled through the product's `ChunkStore` contract, one `add` per synthetic file
and one `commit`, in a process of its own: `FaissChunkStore` exact and HNSW, and
`MilvusChunkStore` on a Milvus Lite file. Reported: build time until searchable, peak memory,
size on disk, dense and hybrid latency (`assistant.retrieval.hybrid_search` with the settings'
fusion, query vectors given), dense recall@10, and the hybrid top 10 against that over exact FAISS.

The private internals of milvus_lite this module reads (its server registry and segments, to
wait for background indexing and to stop the in-process server) stay in this module.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from assistant.bench.machine import MemoryWatch, folder_mb, in_fresh_process, release_memory, rss_mb, run_here, version
from assistant.bench.synthetic import DIMENSION, FILE_CHUNKS, SyntheticCorpus
from assistant.bench.timing import interleaved, recall_at_k, summarize
from assistant.settings import Settings

logger = logging.getLogger(__name__)

#: The engines the `milvus` part compares, each built and searched in a process of its own.
MILVUS_ENGINES = ("faiss-flat", "faiss-hnsw", "milvus-lite")
#: Chunks per synthetic file given to `ChunkStore.add`. The Milvus store writes a file with one
#: delete-by-filter and one file record besides its rows, so the number of files, not only of
#: chunks, sets Milvus's build time (docs/benchmarks.md, "Milvus Lite vs FAISS").
MILVUS_FILE_CHUNKS = FILE_CHUNKS
MILVUS_WARMUP = 5
#: The model name the synthetic stores record.
SYNTHETIC_MODEL = "synthetic-topical"


def search_options(settings: Settings) -> dict[str, Any]:
    """The fusion the assistant's retriever runs (`hybrid_search` keyword arguments)."""
    return {"fusion": settings.fusion, "alpha": settings.alpha, "rrf_k": settings.rrf_k, "neighbour_weight": settings.neighbour_weight}


def faiss_hnsw_params() -> dict[str, int]:
    """The HNSW parameters the FAISS store builds with (`FaissVectors`' defaults)."""
    from assistant.stores.faiss import FaissVectors

    p = inspect.signature(FaissVectors.__init__).parameters
    return {"m": p["hnsw_m"].default, "ef_construction": p["ef_construction"].default, "ef_search": p["ef_search"].default}


def time_engine_queries(store: Any, corpus: SyntheticCorpus, settings: Settings, *, k: int = 10) -> dict[str, Any]:
    """Single-query dense and hybrid search on a `ChunkStore`, query vectors given, interleaved.

    The first query of each kind is timed apart (`first_*_ms`: caches and lazily built
    structures), then `MILVUS_WARMUP` queries warm up, then every query is timed. Returns the
    latency summaries, recall@k of the dense top k against exact search, and the hybrid top k
    as chunk ids (for the overlap with exact FAISS, which the caller computes).
    """
    from assistant.retrieval import hybrid_search

    options = search_options(settings)
    vectors, texts = corpus.query_vectors, corpus.query_texts

    def dense(i: int) -> list[Any]:
        return store.view().dense(vectors[i], k)

    def hybrid(i: int) -> list[Any]:
        return hybrid_search(store.view(), texts[i], vectors[i], settings.candidates, **options)

    first = {}
    for name, search in (("dense", dense), ("hybrid", hybrid)):
        started = time.perf_counter()
        search(0)
        first[f"first_{name}_ms"] = round((time.perf_counter() - started) * 1000, 3)
    for i in range(1, min(MILVUS_WARMUP, len(vectors))):
        dense(i)
        hybrid(i)
    times: dict[str, list[float]] = {"dense": [], "hybrid": []}
    found: dict[str, list[Any]] = {"dense": [None] * len(vectors), "hybrid": [None] * len(vectors)}
    for i, dense_first in interleaved(len(vectors), 1):
        for name, search in (("dense", dense), ("hybrid", hybrid)) if dense_first else (("hybrid", hybrid), ("dense", dense)):
            started = time.perf_counter()
            found[name][i] = search(i)
            times[name].append(time.perf_counter() - started)
    dense_ids = []
    for pairs in found["dense"]:  # keys to chunk ids, outside the timing
        records = store.records([key for key, _ in pairs])
        dense_ids.append([records[key].chunk.id for key, _ in pairs if key in records])
    return {
        "dense": summarize(times["dense"]),
        "hybrid": summarize(times["hybrid"]),
        **first,
        "recall_at_k": recall_at_k(dense_ids, corpus.truth, min(k, corpus.n)),
        "hybrid_top": [[hit.chunk.id for hit in hits[:k]] for hits in found["hybrid"]],
    }


@contextmanager
def timed_saves() -> Iterator[dict[str, float]]:
    """The seconds the FAISS store spends writing its build (`persist.write_build`) inside the block,
    so that a commit splits into building the next state and saving it."""
    from assistant.stores.faiss import persist

    original = persist.write_build
    spent = {"s": 0.0, "calls": 0}

    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent["s"] += time.perf_counter() - started
            spent["calls"] += 1

    persist.write_build = timed
    try:
        yield spent
    finally:
        persist.write_build = original


def _build_faiss_engine(
    kind: str, corpus: SyntheticCorpus, settings: Settings, folder: Path, show_progress: bool
) -> tuple[Any, None, dict[str, Any]]:
    """A `FaissChunkStore` of `kind` filled with one `add` per synthetic file and committed (which saves it).

    `build_s` is until the new state is built and searchable in memory; `save_s` the atomic
    write that the commit ends with (when it can be told apart).
    """
    from tqdm import tqdm

    from assistant.stores.faiss import FaissChunkStore

    faiss_settings = settings.model_copy(update={"backend": "faiss", "index_dir": folder, "faiss_index": kind})
    started = time.perf_counter()
    store = FaissChunkStore.create(faiss_settings, model=SYNTHETIC_MODEL, dimension=DIMENSION)
    with tqdm(total=corpus.n, unit="chunk", desc=f"faiss-{kind} {corpus.n:,}", disable=not show_progress, leave=False) as bar:
        for document, chunks, vectors in corpus.files():
            store.add(document, chunks, vectors)
            bar.update(len(chunks))
    add_s = time.perf_counter() - started
    with timed_saves() as saves:
        store.commit()
    total = time.perf_counter() - started
    save_s = saves["s"] if saves["calls"] else None
    build_s = total - (save_s or 0.0)
    built = {
        "build_s": round(build_s, 2),
        "steps_s": {"add": round(add_s, 2), "commit": round(build_s - add_s, 2)},
        "disk_mb": folder_mb(folder),
        "vector_file_mb": folder_mb(folder / store.manifest["data"] / "vectors.faiss"),
    }
    if save_s is not None:
        built["save_s"] = round(save_s, 2)
    if kind == "hnsw":
        built["hnsw"] = faiss_hnsw_params()
    return store, None, built


def _lite_collection(uri: str, name: str) -> Any:
    """The Milvus Lite collection object behind `uri`, when Milvus Lite serves it in this process, else None."""
    try:
        from milvus_lite import server_manager_instance

        _, db, _ = server_manager_instance._servers[str(Path(uri).resolve())]
        return db.get_collection(name)
    except (ImportError, AttributeError, KeyError, ValueError):
        return None


def _unindexed_segments(collection: Any) -> tuple[int, int]:
    """(segments, segments without their vector index) of a Milvus Lite collection."""
    segments = [s for s in collection._segments_snapshot() if s.num_rows]
    return len(segments), sum("vector" not in s.indexes for s in segments)


class CallTimes:
    """Adds up the seconds a client spends in some of its methods, per method and collection."""

    def __init__(self, client: Any, methods: Sequence[str], name: str) -> None:
        self.seconds: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()
        for method in methods:
            setattr(client, method, self._wrap(method, getattr(client, method), name))

    def _wrap(self, method: str, call: Callable[..., Any], name: str) -> Callable[..., Any]:
        def timed(collection: str, *args: Any, **kwargs: Any) -> Any:  # collection `name` is "chunks", `name`_x is "x"
            key = f"{method} {'chunks' if collection == name else collection.removeprefix(name + '_')}"
            started = time.perf_counter()
            try:
                return call(collection, *args, **kwargs)
            finally:
                self.seconds[key] += time.perf_counter() - started
                self.calls[key] += 1

        return timed

    def report(self) -> dict[str, dict[str, float]]:
        """The seconds and calls so far, per method and collection; the counts then start again."""
        out = {key: {"s": round(self.seconds[key], 2), "calls": self.calls[key]} for key in sorted(self.seconds)}
        self.seconds.clear()
        self.calls.clear()
        return out


def _build_milvus_engine(
    corpus: SyntheticCorpus, settings: Settings, folder: Path, show_progress: bool
) -> tuple[Any, CallTimes, dict[str, Any]]:
    """A Milvus Lite collection filled through `MilvusChunkStore.add`, one call per synthetic file, then
    committed, with the build timed until every segment has its HNSW index; the client's calls are timed."""
    from tqdm import tqdm

    from assistant.stores.milvus import MilvusChunkStore

    lite = settings.model_copy(update={
        "backend": "milvus", "milvus_uri": str(folder / "milvus.db"), "index_dir": folder / "index", "milvus_index_type": "HNSW",
    })
    steps: dict[str, float] = {}
    started = time.perf_counter()
    store = MilvusChunkStore.open(lite, model=SYNTHETIC_MODEL, dimension=DIMENSION, reset=True)
    steps["open"] = time.perf_counter() - started
    calls = CallTimes(store.client, ("insert", "upsert", "delete", "query", "search"), store.name)
    mark = time.perf_counter()
    with tqdm(total=corpus.n, unit="chunk", desc=f"milvus-lite {corpus.n:,}", disable=not show_progress, leave=False) as bar:
        for document, chunks, vectors in corpus.files():
            store.add(document, chunks, vectors)
            bar.update(len(chunks))
    steps["add"] = time.perf_counter() - mark
    mark = time.perf_counter()
    store.commit()
    steps["commit"] = time.perf_counter() - mark
    collection = _lite_collection(lite.milvus_uri, store.name)
    info: dict[str, Any] = {}
    if collection is not None:  # Milvus Lite builds segment indexes on a background thread after a flush
        info["segments"], info["unindexed_segments_after_flush"] = _unindexed_segments(collection)
        mark = time.perf_counter()
        collection._wait_for_bg()
        steps["index_wait"] = time.perf_counter() - mark
        info["segments"], info["unindexed_segments"] = _unindexed_segments(collection)
    build_s = time.perf_counter() - started
    if store.count() != corpus.n:
        raise RuntimeError(f"Milvus Lite holds {store.count()} chunks, {corpus.n} were added")
    return store, calls, {
        "build_s": round(build_s, 2),
        "steps_s": {name: round(seconds, 2) for name, seconds in steps.items()},
        "client_s": calls.report(),
        "disk_mb": folder_mb(folder),
        "files": -(-corpus.n // corpus.file_chunks),
        **info,
    }


def _close_milvus(store: Any) -> None:
    """Close the client and stop the Milvus Lite server this process runs for its file."""
    from assistant.stores.milvus import resolve_uri

    store.close()
    try:
        from milvus_lite import server_manager_instance

        server_manager_instance.release_server(resolve_uri(store.settings))
    except (ImportError, AttributeError):
        pass


def _milvus_store_digest() -> str:
    """A short hash of the Milvus store's code, so that a figure can be tied to the code that made it."""
    import assistant.stores.milvus as package

    digest = hashlib.sha256()
    for path in sorted(Path(package.__file__).parent.glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def measure_engine(
    n: int,
    engine: str,
    *,
    queries: int = 200,
    k: int = 10,
    vocabulary: tuple[list[str], np.ndarray],
    settings: Settings | None = None,
    seed: int = 0,
    file_chunks: int = MILVUS_FILE_CHUNKS,
    workdir: Path | None = None,
    show_progress: bool = False,
) -> dict[str, Any]:
    """One engine of `MILVUS_ENGINES` on the synthetic corpus of `n` chunks: build, memory, disk, queries.

    The corpus (vectors, texts, queries, exact neighbours) is made first and the libraries
    loaded; `inputs_rss_mb` is the RSS then, and `engine_peak_mb` what the engine added on top
    at its peak (build, save, queries). Run it in a fresh process (`bench_milvus` does).
    """
    if engine not in MILVUS_ENGINES:
        raise ValueError(f"unknown engine {engine!r}; choose from {', '.join(MILVUS_ENGINES)}")
    import psutil

    from assistant.lexical import LexicalIndex

    settings = settings or Settings()
    started = time.perf_counter()
    corpus = SyntheticCorpus.make(n, queries, vocabulary, k=k, seed=seed, file_chunks=file_chunks)
    row: dict[str, Any] = {"engine": engine, "inputs_sha256": corpus.digest(), "setup_s": round(time.perf_counter() - started, 1)}
    LexicalIndex.build(["load the libraries first, so that their memory is not counted as the engine's"])
    if engine == "milvus-lite":
        import milvus_lite  # noqa: F401
        import pymilvus  # noqa: F401

        row["store_sha256"] = _milvus_store_digest()
    release_memory()
    row["inputs_rss_mb"] = round(rss_mb(), 1)
    watch = MemoryWatch().start()
    store = None
    with tempfile.TemporaryDirectory(prefix=f"bench-{engine}-", dir=workdir) as tmp:
        try:
            if engine == "milvus-lite":
                store, calls, built = _build_milvus_engine(corpus, settings, Path(tmp), show_progress)
            else:
                store, calls, built = _build_faiss_engine(engine.split("-")[1], corpus, settings, Path(tmp), show_progress)
            row.update(built)
            row["chunks_per_s"] = round(n / built["build_s"], 1) if built["build_s"] else float("nan")
            row.update(time_engine_queries(store, corpus, settings, k=k))
            if calls is not None:  # Milvus: where the query time went, searches and queries (counts, rows by key)
                row["query_client_s"] = calls.report()
            row["engine_rss_mb"] = round(rss_mb() - row["inputs_rss_mb"], 1)
            row["threads"] = psutil.Process().num_threads()  # Milvus Lite serves gRPC from threads of this process
        finally:
            memory = watch.stop()
            if engine == "milvus-lite" and store is not None:
                _close_milvus(store)
            elif store is not None:
                store.close()
    row.update(memory)
    row["engine_peak_mb"] = round(memory["peak_rss_mb"] - row["inputs_rss_mb"], 1)
    return row


def bench_milvus(
    sizes: Sequence[int],
    *,
    engines: Sequence[str] = MILVUS_ENGINES,
    queries: int = 200,
    k: int = 10,
    vocabulary: tuple[list[str], np.ndarray],
    settings: Settings | None = None,
    file_chunks: int = MILVUS_FILE_CHUNKS,
    workdir: Path | None = None,
    isolate: bool = True,
    show_progress: bool = False,
    on_case: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """`measure_engine` for every size and engine, each in a fresh process unless `isolate=False`.

    Every engine gets the same corpus (checked by its digest); hybrid results are compared
    with those over exact FAISS (`faiss-flat`, when it is among the engines). An engine whose
    process fails gets a row with the `error` and the seconds it ran; the others are kept.
    """
    settings = settings or Settings()
    run = in_fresh_process if isolate else run_here
    cases = []
    for n in sizes:
        case: dict[str, Any] = {"n": n, "distribution": "topical", "queries": queries, "k": k, "file_chunks": file_chunks,
                                "vectors_mb": round(n * DIMENSION * 4 / 2**20, 1), "engines": {}}
        for engine in engines:
            logger.info("milvus: %s, %d chunks", engine, n)
            started = time.perf_counter()
            try:
                row = run(measure_engine, n, engine, queries=queries, k=k, vocabulary=vocabulary, settings=settings,
                          file_chunks=file_chunks, workdir=workdir, show_progress=show_progress)
            except Exception as exc:  # a crashed or killed engine process (BrokenProcessPool) ends its row only
                logger.warning("milvus: %s at %d chunks failed: %s", engine, n, exc)
                row = {"engine": engine, "error": f"{type(exc).__name__}: {exc}"}
            row["wall_s"] = round(time.perf_counter() - started, 1)
            case["engines"][engine] = row
        digests = {row.pop("inputs_sha256") for row in case["engines"].values() if "error" not in row}
        if len(digests) > 1:
            raise RuntimeError(f"the engines of the {n:,}-chunk case were given different corpora")
        case["inputs_sha256"] = digests.pop() if digests else None
        reference = case["engines"].get("faiss-flat", {}).get("hybrid_top")
        for name, row in case["engines"].items():
            if reference is not None and name != "faiss-flat" and "hybrid_top" in row:
                row["hybrid_overlap_at_k"] = recall_at_k(row["hybrid_top"], reference, k)  # share of exact FAISS's top k
        for row in case["engines"].values():
            row.pop("hybrid_top", None)
        cases.append(case)
        if on_case is not None:
            on_case(case)
    return {
        "cases": cases,
        "hnsw": {"m": settings.milvus_hnsw_m, "ef_construction": settings.milvus_ef_construction, "ef_search": settings.milvus_ef_search},
        "faiss_hnsw": faiss_hnsw_params(),
        "hybrid": {"k": settings.candidates, **search_options(settings)},
        "versions": {name: version(name) for name in ("pymilvus", "milvus-lite", "faiss-cpu", "pyarrow", "grpcio")},
    }
