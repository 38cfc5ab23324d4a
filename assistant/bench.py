"""Speed, memory and scale benchmarks: the figures of docs/benchmarks.md.

Every figure is set against the floor it cannot beat, measured the same way, in the same kind
of process and interleaved with it, so that load from other processes falls on both alike:

* `latency`: warm `Assistant.ask` against one bare `SentenceTransformer.encode` of the same
  question (target: answer p50 ≤ 1.2× encode p50);
* `cold`: a new `python -m assistant ask` process, import to first answer with an existing
  index, against a process that only loads the model and encodes once (target ≤ 1.15×);
* `indexing`: chunks per second of a full index build against bare `encode` of the same
  chunk texts (target ≥ 0.9×);
* `scale`: synthetic corpora of 10k–1M chunks: build time, memory, query latency and
  recall@10 of each FAISS index kind against exact search, and the whole retrieval step
  (dense + BM25 + fusion, without the encoder) on top of it.
* `milvus` (not run by default: long): the same synthetic corpora in Milvus Lite through
  `MilvusChunkStore` and in the FAISS index (exact and HNSW with Milvus's parameters), each
  in a process of its own: build time until searchable, peak memory, size on disk, dense and
  hybrid latency, dense recall@10, and hybrid top 10 against hybrid over exact FAISS.

Synthetic vectors come in two distributions. `random` (i.i.d. unit vectors) is the worst case
for approximate search: nothing is close to anything. `topical` imitates all-MiniLM-L6-v2
embeddings of real chunks: documents of 9 chunks whose centres lie in a 64-dimensional topic
subspace, plus a direction every embedding shares and isotropic noise. Its parameters were fit
on the embeddings of 3,596 SciFact chunks (`benchmarks/calibrate_synthetic.py`: nearest-neighbour
cosine 0.755 vs 0.749, random-pair cosine 0.10±0.11 vs 0.13±0.11, recall@10 of a deliberately
weak HNSW 0.92 vs 0.91).

These are measurements, not tests: nothing here asserts a target. `python -m assistant bench`
prints them and `benchmarks/` runs the same code under pytest-benchmark. A scale case runs in
a fresh process of its own so that its peak RSS is its own.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property, partial
from importlib import metadata
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from assistant.embedding import Embedder, resolve_model_path
from assistant.settings import Settings

logger = logging.getLogger(__name__)

PARTS = ("latency", "cold", "indexing", "scale")  # what runs by default
ALL_PARTS = (*PARTS, "milvus")
DISTRIBUTIONS = ("topical", "random")
KINDS = ("flat", "hnsw")  # what `FaissStore` builds
HNSW_PARAMS = ("m", "efc", "ef")  # HNSW's M, efConstruction and efSearch
DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
DIMENSION = 384  # all-MiniLM-L6-v2
ADD_BATCH = 50_000
#: The batch size a build encodes with (`Embedder.encode`'s default); the indexing floor uses it too,
#: so that the comparison is of the pipeline, not of batch sizes (sentence-transformers' own default is 32).
ENCODE_BATCH = 64

#: What the bare-encode process of the cold-start benchmark runs: the model, one encode, nothing else.
BARE_ENCODE_SCRIPT = """\
import sys
from sentence_transformers import SentenceTransformer
SentenceTransformer(sys.argv[1], device=sys.argv[2]).encode([sys.argv[3]])
"""

#: Both cold-start processes get the environment the CLI sets for itself.
QUIET_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
    "TOKENIZERS_PARALLELISM": "false",
}


# --- measuring ------------------------------------------------------------------------------


def summarize(seconds: Sequence[float]) -> dict[str, float]:
    """p50, p95 and mean in milliseconds, and the number of samples."""
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


def rss_mb() -> float:
    """This process's resident memory now, in MiB."""
    import psutil  # in the `bench` and `test` extras

    return psutil.Process().memory_info().rss / 2**20


def release_memory() -> None:
    """Collect garbage and hand freed heap pages back to the OS, so that the next RSS growth is all new memory."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: RSS figures may then undercount reused memory
        pass


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MiB.

    Linux's `VmHWM` belongs to the address space, so it starts afresh in a spawned process;
    `ru_maxrss` (the fallback elsewhere) survives `exec` and would report the parent's peak.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "absent"


def machine_info() -> dict[str, Any]:
    """CPU model, cores, RAM, load and library versions: what the figures depend on."""
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {"python": platform.python_version()}
    versions.update((name, _version(name)) for name in ("cited-health-assistant", "numpy", "faiss-cpu", "torch", "sentence-transformers", "bm25s"))
    try:
        import psutil

        ram_gib = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        ram_gib = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gib": ram_gib,
        "platform": platform.platform(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "versions": versions,
    }


# --- warm answer latency --------------------------------------------------------------------


def latency_items(path: Path) -> list[tuple[str, list[str]]]:
    """(question, earlier turns) for every item of a question set; a conversation asks its last turn."""
    from assistant.evaluation import load_questions

    items = []
    for item in load_questions(path):
        turns = item.get("turns") or [item["question"]]
        items.append((turns[-1], list(turns[:-1])))
    return items


def bench_latency(
    bot: Any, items: Sequence[tuple[str, Sequence[str]]], floor: Callable[[str], object], *, rounds: int = 3, warmup: int = 5
) -> dict[str, Any]:
    """Warm `bot.ask` against `floor` (one bare encode of the same question), interleaved.

    The retriever's embedder is wrapped for the run, so the answer time also splits into the
    encoder's share and the rest (retrieval, BM25, fusion, quoting), which should be near zero.
    """
    if not items:
        raise ValueError("the question set is empty: pass a JSONL file with at least one question")
    timed = TimedEmbedder(bot.retriever.embedder)
    bot.retriever.embedder = timed
    answer, bare, inside, rest, encodes = [], [], [], [], []
    try:
        for question, history in list(items)[:warmup]:
            bot.ask(question, history=list(history))
            floor(question)
        for i, answer_first in interleaved(len(items), rounds):
            question, history = items[i]
            for run_answer in (answer_first, not answer_first):
                if run_answer:
                    encoder_before, calls_before = timed.seconds, timed.calls
                    started = time.perf_counter()
                    bot.ask(question, history=list(history))
                    elapsed = time.perf_counter() - started
                    answer.append(elapsed)
                    inside.append(timed.seconds - encoder_before)
                    rest.append(elapsed - inside[-1])
                    encodes.append(timed.calls - calls_before)
                else:
                    started = time.perf_counter()
                    floor(question)
                    bare.append(time.perf_counter() - started)
    finally:
        bot.retriever.embedder = timed.inner
    answer_s, bare_s = summarize(answer), summarize(bare)
    return {
        "questions": len(items),
        "rounds": rounds,
        "answer": answer_s,
        "bare_encode": bare_s,
        "encoder_in_answer": summarize(inside),
        "non_encoder": summarize(rest),
        "encodes_per_answer": round(float(np.mean(encodes)), 3),
        "ratio_p50": ratio(answer_s["p50_ms"], bare_s["p50_ms"]),
        "ratio_p95": ratio(answer_s["p95_ms"], bare_s["p95_ms"]),
        "target_ratio_p50": 1.2,
    }


# --- cold start -----------------------------------------------------------------------------


def cold_commands(settings: Settings, question: str) -> dict[str, list[str]]:
    """The two processes the cold-start benchmark compares, as argument lists."""
    return {
        "assistant": [
            sys.executable, "-m", "assistant", "ask", "--quiet",
            "--corpus", str(settings.corpus_dir), "--index", str(settings.index_dir), question,
        ],
        "bare_encode": [sys.executable, "-c", BARE_ENCODE_SCRIPT, resolve_model_path(settings.model), settings.device, question],
    }


def time_processes(commands: dict[str, list[str]], *, runs: int, env: dict[str, str] | None = None) -> dict[str, list[float]]:
    """Wall time of each command, `runs` times each, interleaved with the order reversed every run.

    Raises `RuntimeError` with the end of its stderr when a command fails: a crash is not a time.
    """
    names = list(commands)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for run in range(runs):
        for name in names if run % 2 == 0 else names[::-1]:
            started = time.perf_counter()
            proc = subprocess.run(
                commands[name], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, text=True, check=False
            )
            elapsed = time.perf_counter() - started
            if proc.returncode != 0:
                raise RuntimeError(f"{name} exited with status {proc.returncode}: {proc.stderr.strip()[-500:]}")
            samples[name].append(elapsed)
    return samples


def bench_cold(settings: Settings, question: str, *, runs: int = 5) -> dict[str, Any]:
    """New-process time to first answer (index already built) against load-model-and-encode-once."""
    env = {**os.environ, **QUIET_ENV}
    samples = time_processes(cold_commands(settings, question), runs=runs, env=env)
    figures = {name: summarize(values) for name, values in samples.items()}
    return {
        "runs": runs,
        "question": question,
        **figures,
        "ratio_p50": ratio(figures["assistant"]["p50_ms"], figures["bare_encode"]["p50_ms"]),
        "target_ratio_p50": 1.15,
    }


# --- indexing throughput --------------------------------------------------------------------


def write_beir_corpus(dataset: Any, folder: Path, *, limit: int) -> Path:
    """Write the first `limit` documents of a `BeirDataset` as `<id>.txt` files: title, blank line, text."""
    folder.mkdir(parents=True, exist_ok=True)
    for doc_id, title, text in list(zip(dataset.doc_ids, dataset.titles, dataset.texts))[:limit]:
        name = "".join(c if c.isalnum() or c in "-_" else "_" for c in doc_id)
        (folder / f"{name}.txt").write_text(f"{title.strip()}\n\n{text.strip()}\n", encoding="utf-8")
    return folder


def chunk_texts(settings: Settings) -> list[str]:
    """The texts a build of `settings.corpus_dir` embeds, one a chunk."""
    from assistant.chunking import chunk_corpus
    from assistant.corpus import load_corpus

    docs = load_corpus(settings.corpus_dir, max_bytes=settings.max_file_bytes)
    chunks = chunk_corpus(docs, max_chunk_chars=settings.max_chunk_chars, max_heading_words=settings.max_heading_words)
    return [c.embedding_text() for c in chunks]


def bench_indexing(
    settings: Settings,
    embedder: Embedder,
    floor: Callable[[list[str]], object],
    *,
    rounds: int = 3,
    show_progress: bool = False,
) -> dict[str, Any]:
    """A full index build (read, chunk, embed, BM25, save) against `floor` encoding the same texts.

    Each build is forced (`open_index(force=True)`), so it does exactly what `python -m
    assistant index` does; the embedder is wrapped to split build time into encoder and rest.
    """
    from assistant.index import open_index

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
                open_index(settings, timed, force=True, show_progress=show_progress, on_rebuild=lambda message: None)
                elapsed = time.perf_counter() - started
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


# --- scale: synthetic corpora ----------------------------------------------------------------


def _unit(x: np.ndarray) -> np.ndarray:
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    return x


class SyntheticVectors:
    """Deterministic synthetic embeddings, `random` or `topical` (see the module docstring).

    Example:
        >>> gen = SyntheticVectors("topical", n=1000, seed=0)
        >>> gen.corpus().shape, gen.queries(5).shape
        ((1000, 384), (5, 384))

    `topical` rows are `a·shared + b·doc_centre + c·topic_noise + e·isotropic_noise`, normalised;
    the weights and the 64-d subspace were fit on real all-MiniLM-L6-v2 chunk embeddings. A
    document is 9 consecutive rows, as chunks of one file are; queries are new rows of random documents.
    """

    def __init__(
        self,
        distribution: str,
        *,
        n: int,
        dim: int = DIMENSION,
        seed: int = 0,
        rank: int = 64,
        doc_size: int = 9,
        weights: tuple[float, float, float, float] = (0.4, 1.0, 0.5, 0.45),
    ) -> None:
        if distribution not in DISTRIBUTIONS:
            raise ValueError(f"distribution must be one of {DISTRIBUTIONS}, got {distribution!r}")
        if n <= 0:
            raise ValueError(f"n must be > 0, got {n}")
        self.distribution, self.n, self.dim, self.doc_size, self.weights = distribution, n, dim, doc_size, weights
        self._rng = np.random.default_rng(seed)
        rng = self._rng
        self._shared = _unit(rng.standard_normal((1, dim), dtype=np.float32))
        self._basis = rng.standard_normal((dim, rank), dtype=np.float32) / np.float32(np.sqrt(dim))
        self.documents = max(1, n // doc_size)
        self._centres = _unit(rng.standard_normal((self.documents, rank), dtype=np.float32) @ self._basis.T)

    def _rows(self, documents: np.ndarray) -> np.ndarray:
        rng, count = self._rng, len(documents)
        noise = _unit(rng.standard_normal((count, self.dim), dtype=np.float32))
        if self.distribution == "random":
            return noise
        a, b, c, e = self.weights
        topic = _unit(rng.standard_normal((count, self._basis.shape[1]), dtype=np.float32) @ self._basis.T)
        return _unit(a * self._shared + b * self._centres[documents] + c * topic + e * noise)

    def corpus(self, batch: int = ADD_BATCH) -> np.ndarray:
        out = np.empty((self.n, self.dim), dtype=np.float32)
        for start in range(0, self.n, batch):
            stop = min(self.n, start + batch)
            out[start:stop] = self._rows(np.minimum(np.arange(start, stop) // self.doc_size, self.documents - 1))
        return out

    def queries(self, count: int) -> np.ndarray:
        return self._rows(self._rng.integers(0, self.documents, size=count))


def word_distribution(texts: Iterable[str], *, max_words: int = 50_000) -> tuple[list[str], np.ndarray]:
    """The `max_words` most frequent normalised words of `texts` and their probabilities."""
    from assistant.lexical import words

    counts = Counter(w for text in texts for w in words(text))
    if not counts:
        raise ValueError("no words to build synthetic text from: give a corpus with some text")
    common = counts.most_common(max_words)
    freq = np.array([c for _, c in common], dtype=np.float64)
    return [w for w, _ in common], freq / freq.sum()


def synthetic_texts(
    n: int, vocabulary: Sequence[str], probabilities: np.ndarray, *, seed: int = 0, min_words: int = 12, max_words: int = 36
) -> list[str]:
    """`n` texts of `min_words`–`max_words` words drawn from a unigram distribution.

    Not sentences, but their BM25 posting lists are as long as real ones of that vocabulary,
    which is what lexical search time depends on.
    """
    rng = np.random.default_rng(seed)
    lengths = rng.integers(min_words, max_words + 1, size=n)
    vocab = np.asarray(vocabulary, dtype=object)
    texts: list[str] = []
    for start in range(0, n, ADD_BATCH):
        stop = min(n, start + ADD_BATCH)
        draws = rng.choice(len(vocab), size=(stop - start, max_words), p=probabilities)
        texts.extend(" ".join(vocab[row[:length]]) for row, length in zip(draws, lengths[start:stop]))
    return texts


def synthetic_queries(texts: Sequence[str], count: int, *, seed: int = 1, words_per_query: int = 6) -> list[str]:
    """Questions made of words from random texts, as real questions reuse the document's words."""
    rng = np.random.default_rng(seed)
    queries = []
    for i in rng.integers(0, len(texts), size=count):
        words = texts[int(i)].split()
        picked = rng.choice(len(words), size=min(words_per_query, len(words)), replace=False)
        queries.append(" ".join(words[j] for j in sorted(picked)))
    return queries


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


def time_searches(search: Callable[[Any], Any], queries: Iterable[Any]) -> tuple[list[float], list[Any]]:
    """Time `search(query)` for every query, one at a time, as the assistant searches; (seconds, results)."""
    times, results = [], []
    for query in queries:
        started = time.perf_counter()
        results.append(search(query))
        times.append(time.perf_counter() - started)
    return times, results


def dense_ids(store: Any, k: int, vector: np.ndarray) -> np.ndarray:
    return store.search(vector[None, :], k)[1][0]


def _fused_ids(retriever: Any, k: int, query: tuple[str, np.ndarray]) -> list[int]:
    text, vector = query
    return [hit.chunk.id for hit in retriever.search(text, k=k, vector=vector)]


def recall_at_k(found: Sequence[Sequence[int]], truth: Sequence[Sequence[int]], k: int) -> float:
    """Mean share of the exact top `k` that the search found (ids < 0 are empty slots)."""
    shares = [len({int(i) for i in f[:k] if i >= 0} & {int(i) for i in t[:k]}) / k for f, t in zip(found, truth)]
    return round(float(np.mean(shares)), 4)


class _NoEncoder:
    """The scale benchmark hands vectors to the retriever: nothing may be encoded."""

    name, dimension = "none", DIMENSION

    def encode(self, texts: Sequence[str], **_: Any) -> np.ndarray:
        raise RuntimeError("the scale benchmark passes query vectors; the encoder must not be called")


def parse_kind(spec: str) -> tuple[str, dict[str, int]]:
    """`flat` or `hnsw` as `FaissStore` builds them, or `hnsw:m=16:efc=40:ef=256` to try other HNSW parameters.

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


def build_store(spec: str, vectors: np.ndarray, *, show_progress: bool = False) -> tuple[Any, float]:
    """A `FaissStore` of `spec` (see `parse_kind`) holding `vectors`, and the seconds the build took.

    Vectors go in by batches under a progress bar; HNSW parameters of the spec's own go to
    `FaissStore` itself, so every variant is the store the assistant would use.
    """
    from tqdm import tqdm

    from assistant.stores import make_store
    from assistant.stores.faiss_store import FaissStore

    kind, params = parse_kind(spec)
    started = time.perf_counter()
    if params:
        target = FaissStore(
            dimension=vectors.shape[1],
            kind="hnsw",
            hnsw_m=params.get("m", 32),
            ef_construction=params.get("efc", 80),
            ef_search=params.get("ef", 128),
        )
    else:
        target = make_store("faiss", dimension=vectors.shape[1], kind=kind)
    with tqdm(total=len(vectors), unit="vec", desc=f"{spec} {len(vectors):,}", disable=not show_progress, leave=False) as bar:
        for start in range(0, len(vectors), ADD_BATCH):
            target.add(np.ascontiguousarray(vectors[start : start + ADD_BATCH]))
            bar.update(min(ADD_BATCH, len(vectors) - start))
    return target, time.perf_counter() - started


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

    Per kind: build seconds, the RSS the store added, single-query search p50/p95, recall@k
    against exact search (`faiss.knn`), and, with a `vocabulary`, the whole retrieval step
    (`Retriever.search` given the query vector: dense + BM25 + fusion over the same chunks).
    Run it in a fresh process (`bench_scale` does) for a meaningful `peak_rss_mb`.
    """
    import faiss

    from assistant.index import Index
    from assistant.lexical import LexicalIndex
    from assistant.models import Chunk
    from assistant.retrieval import Retriever

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
    index = None
    if vocabulary is not None:
        LexicalIndex.build(["load the libraries first, so that their memory is not counted as the chunks'"])
        started, before = time.perf_counter(), rss_mb()
        texts = synthetic_texts(n, *vocabulary, seed=seed)
        query_texts = synthetic_queries(texts, queries, seed=seed + 1)
        chunks = [
            Chunk(id=i, source=f"synthetic/{i // gen.doc_size}.txt", section="", kind="sentence", start=0, end=len(t), text=t, block=0)
            for i, t in enumerate(texts)
        ]
        lexical = LexicalIndex.build(texts)
        del texts
        release_memory()
        case["text_build_s"] = round(time.perf_counter() - started, 1)
        case["text_mb"] = round(rss_mb() - before, 1)
        index = Index(manifest={}, chunks=chunks, store=None, bm25=lexical)  # the store is set per kind
    case["kinds"] = {}
    exact_hits: list[list[int]] | None = None
    for kind in kinds:
        release_memory()
        before = rss_mb()
        store, build_s = build_store(kind, corpus, show_progress=show_progress)
        row: dict[str, Any] = {"build_s": round(build_s, 2), "index_mb": round(rss_mb() - before, 1)}
        with tempfile.TemporaryDirectory(prefix="bench-store-") as folder:
            store.save(folder)
            row["file_mb"] = round(sum(f.stat().st_size for f in Path(folder).iterdir()) / 2**20, 1)
        for threads, key in THREAD_SETTINGS:
            with faiss_threads(threads):
                times, found = time_searches(partial(dense_ids, store, k), query_vectors)
            row[f"search{key}"] = summarize(times)
            if threads is None:
                row["recall_at_k"] = recall_at_k(found, truth, min(k, n))
        if index is not None:
            index.store = store
            retriever = Retriever(
                index, _NoEncoder(), fusion=settings.fusion, alpha=settings.alpha, rrf_k=settings.rrf_k,
                neighbour_weight=settings.neighbour_weight,
            )
            hits: list[list[int]] = []
            for threads, key in THREAD_SETTINGS:
                with faiss_threads(threads):
                    times, results = time_searches(
                        partial(_fused_ids, retriever, settings.candidates), zip(query_texts, query_vectors)
                    )
                row[f"retrieval{key}"] = summarize(times)
                hits = hits or results
            if kind == "flat":
                exact_hits = hits
            elif exact_hits is not None:  # the fused top k with this index against the fused top k with exact search
                row["retrieval_recall_at_k"] = recall_at_k(hits, exact_hits, k)
            index.store = None
        case["kinds"][kind] = row
        del store
    case["peak_rss_mb"] = round(peak_rss_mb(), 1)
    return case


def _in_fresh_process(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """`fn(*args, **kwargs)` in a new spawned interpreter, so its memory figures are its own."""
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(fn, *args, **kwargs).result()


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
    cases = []
    for distribution in distributions:
        for n in sizes:
            logger.info("scale: %s, %d chunks, kinds %s", distribution, n, ", ".join(kinds))
            run = _in_fresh_process if isolate else (lambda fn, *a, **kw: fn(*a, **kw))
            case = run(
                measure_scale, n, distribution, list(kinds), queries=queries, vocabulary=vocabulary,
                settings=settings, show_progress=show_progress,
            )
            case["auto_kind"] = _auto_kind(settings, n)
            cases.append(case)
            if on_case is not None:
                on_case(case)
    return {"cases": cases, "hnsw_threshold": settings.hnsw_threshold, "faiss_index": settings.faiss_index}


def _auto_kind(settings: Settings, n: int) -> str:
    from assistant.index import resolve_index_kind

    return resolve_index_kind(settings, n)


# --- milvus: Milvus Lite against FAISS on the same vectors -----------------------------------------

#: The engines the `milvus` part compares, each built and searched in a process of its own.
MILVUS_ENGINES = ("faiss-flat", "faiss-hnsw", "milvus-lite")
ENGINE_LABELS = {"faiss-flat": "FAISS flat (exact)", "faiss-hnsw": "FAISS HNSW", "milvus-lite": "Milvus Lite HNSW"}
#: Chunks per synthetic file given to `MilvusChunkStore.add`. The store writes a file with one
#: delete-by-filter and one file record besides its rows, so the number of files, not only of
#: chunks, sets Milvus's build time (docs/benchmarks.md, "Milvus Lite vs FAISS").
MILVUS_FILE_CHUNKS = 1000
MILVUS_WARMUP = 5


@dataclass
class SyntheticCorpus:
    """The same synthetic corpus in every engine's process: `topical` vectors, texts, queries and exact neighbours."""

    n: int
    vectors: np.ndarray
    texts: list[str]
    query_vectors: np.ndarray
    query_texts: list[str]
    truth: np.ndarray
    file_chunks: int
    doc_size: int

    @classmethod
    def make(
        cls, n: int, queries: int, vocabulary: tuple[list[str], np.ndarray], *, k: int = 10, seed: int = 0,
        file_chunks: int = MILVUS_FILE_CHUNKS,
    ) -> "SyntheticCorpus":
        import faiss

        gen = SyntheticVectors("topical", n=n, seed=seed)
        vectors, query_vectors = gen.corpus(), gen.queries(queries)
        _, truth = faiss.knn(query_vectors, vectors, min(k, n), metric=faiss.METRIC_INNER_PRODUCT)
        texts = synthetic_texts(n, *vocabulary, seed=seed)
        return cls(n, vectors, texts, query_vectors, synthetic_queries(texts, queries, seed=seed + 1), truth,
                   file_chunks, gen.doc_size)

    def digest(self) -> str:
        """sha256 of the vectors, texts and queries: equal in every process that made the same corpus."""
        import hashlib

        h = hashlib.sha256(self.vectors.tobytes())
        h.update(self.query_vectors.tobytes())
        for text in (*self.texts, *self.query_texts):
            h.update(text.encode("utf-8") + b"\0")
        return h.hexdigest()

    def files(self) -> Iterator[tuple[str, str, list[Any], np.ndarray]]:
        """(source, sha256, chunks, vectors) per synthetic file of `file_chunks` chunks, in order.

        A chunk's id is its row; its section is its 9-chunk document, so a chunk's neighbour
        (the chunk before it in the same section) is the same as in the `scale` part.
        """
        from assistant.corpus import sha256_hex
        from assistant.models import Chunk

        for first in range(0, self.n, self.file_chunks):
            source = f"synthetic/{first // self.file_chunks:06d}.txt"
            chunks, offset = [], 0
            for i in range(first, min(self.n, first + self.file_chunks)):
                text = self.texts[i]
                chunks.append(Chunk(id=i, source=source, section=f"document {i // self.doc_size}", kind="sentence",
                                    start=offset, end=offset + len(text), text=text, block=i // self.doc_size))
                offset += len(text) + 1
            yield source, sha256_hex("\n".join(c.text for c in chunks)), chunks, self.vectors[first : first + len(chunks)]


class MemoryWatch:
    """Peak resident memory of this process and of any child process, from `start` on.

    The process's own peak is the kernel's (`VmHWM`, reset at `start` through
    `/proc/self/clear_refs`); a thread also samples this process and its children every
    `interval` seconds, which is how a child process (a server an engine might spawn) is counted.
    Children that were already running at `start` (a pool's resource tracker) are not the engine's.
    """

    def __init__(self, interval: float = 0.1) -> None:
        import threading

        self.interval = interval
        self.peak_mb = self.children_peak_mb = 0.0
        self.children: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._reset_hwm = False
        self._before: set[int] = set()

    def start(self) -> "MemoryWatch":
        import psutil

        self._before = {child.pid for child in psutil.Process().children(recursive=True)}
        try:
            Path("/proc/self/clear_refs").write_text("5")  # the kernel's peak RSS starts again from the current RSS
            self._reset_hwm = True
        except OSError:
            pass
        self._thread.start()
        return self

    def _sample(self) -> None:
        import psutil

        me = psutil.Process()
        while True:
            children_mb = 0.0
            for child in me.children(recursive=True):
                if child.pid in self._before:
                    continue
                try:
                    children_mb += child.memory_info().rss / 2**20
                    self.children.add(child.name())
                except psutil.Error:
                    pass
            self.children_peak_mb = max(self.children_peak_mb, children_mb)
            self.peak_mb = max(self.peak_mb, me.memory_info().rss / 2**20 + children_mb)
            if self._stop.wait(self.interval):
                return

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        self._thread.join()
        own = peak_rss_mb() if self._reset_hwm else 0.0
        return {
            "peak_rss_mb": round(max(self.peak_mb, own + self.children_peak_mb), 1),
            "child_processes": sorted(self.children),
            "children_peak_mb": round(self.children_peak_mb, 1),
        }


def folder_mb(path: Path) -> float:
    """The size of the file `path`, or of the files under the folder `path`, in MiB."""
    files = [path] if path.is_file() else [f for f in path.rglob("*") if f.is_file()]
    return round(sum(f.stat().st_size for f in files) / 2**20, 1)


def _search_options(settings: Settings) -> dict[str, Any]:
    """The hybrid search the assistant runs (`Retriever.search`), as `ChunkStore.hybrid` takes it."""
    return {"fusion": settings.fusion, "alpha": settings.alpha, "rrf_k": settings.rrf_k, "neighbour_weight": settings.neighbour_weight}


def time_engine_queries(store: Any, corpus: SyntheticCorpus, settings: Settings, *, k: int = 10) -> dict[str, Any]:
    """Single-query dense and hybrid search on a `ChunkStore`, query vectors given, interleaved.

    The first query of each kind is timed apart (`first_*_ms`: caches and lazily built
    structures), then `MILVUS_WARMUP` queries warm up, then every query is timed. Returns the
    latency summaries, recall@k of the dense top k against exact search, and the hybrid top k
    as chunk ids (for the overlap with exact FAISS, which the caller computes).
    """
    options = _search_options(settings)
    vectors, texts = corpus.query_vectors, corpus.query_texts

    def dense(i: int) -> list[Any]:
        return store.dense(vectors[i], k)

    def hybrid(i: int) -> list[Any]:
        return store.hybrid(texts[i], vectors[i], settings.candidates, **options)

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


def _build_faiss_engine(
    kind: str, corpus: SyntheticCorpus, settings: Settings, folder: Path, show_progress: bool
) -> tuple[Any, None, dict[str, Any]]:
    """The FAISS `Index` the assistant loads (chunks, `FaissStore`, BM25), built from the corpus, then saved."""
    from assistant.index import Index, save_index
    from assistant.lexical import LexicalIndex

    spec = "flat" if kind == "flat" else (
        f"hnsw:m={settings.milvus_hnsw_m}:efc={settings.milvus_ef_construction}:ef={settings.milvus_ef_search}"
    )
    started = time.perf_counter()
    chunks = [chunk for _, _, file_chunks, _ in corpus.files() for chunk in file_chunks]
    lexical = LexicalIndex.build([c.embedding_text() for c in chunks])
    text_s = time.perf_counter() - started
    store, vectors_s = build_store(spec, corpus.vectors, show_progress=show_progress)
    index = Index(manifest={"dimension": DIMENSION, "index_kind": kind}, chunks=chunks, store=store, bm25=lexical)
    build_s = time.perf_counter() - started
    started = time.perf_counter()
    save_index(index, folder)
    save_s = time.perf_counter() - started
    data = folder / index.manifest["data"]
    return index, None, {
        "build_s": round(build_s, 2),
        "steps_s": {"chunks_and_bm25": round(text_s, 2), "vectors": round(vectors_s, 2)},
        "save_s": round(save_s, 2),
        "disk_mb": folder_mb(folder),
        "vector_file_mb": folder_mb(data / "vectors.faiss"),
    }


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
) -> tuple[Any, "CallTimes", dict[str, Any]]:
    """A Milvus Lite collection filled through `MilvusChunkStore.add`, one call per synthetic file, then
    flushed, with the build timed until every segment has its HNSW index; the client's calls are timed."""
    from tqdm import tqdm

    from assistant.stores.milvus_store import MilvusChunkStore

    lite = settings.model_copy(update={
        "backend": "milvus", "milvus_uri": str(folder / "milvus.db"), "index_dir": folder / "index", "milvus_index_type": "HNSW",
    })
    steps: dict[str, float] = {}
    started = time.perf_counter()
    store = MilvusChunkStore.open(lite, model="synthetic-topical", dimension=DIMENSION)
    steps["open"] = time.perf_counter() - started
    calls = CallTimes(store.client, ("insert", "upsert", "delete", "query", "search"), store.name)
    mark = time.perf_counter()
    with tqdm(total=corpus.n, unit="chunk", desc=f"milvus-lite {corpus.n:,}", disable=not show_progress, leave=False) as bar:
        for source, sha256, chunks, vectors in corpus.files():
            store.add(source, sha256, chunks, vectors)
            bar.update(len(chunks))
    steps["add"] = time.perf_counter() - mark
    mark = time.perf_counter()
    store.client.flush(store.name)
    steps["flush"] = time.perf_counter() - mark
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
    from assistant.stores.milvus_store import resolve_uri

    store.close()
    try:
        from milvus_lite import server_manager_instance

        server_manager_instance.release_server(resolve_uri(store.settings))
    except (ImportError, AttributeError):
        pass


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
    import hashlib

    import psutil

    from assistant.lexical import LexicalIndex

    settings = settings or Settings()
    started = time.perf_counter()
    corpus = SyntheticCorpus.make(n, queries, vocabulary, k=k, seed=seed, file_chunks=file_chunks)
    row: dict[str, Any] = {"engine": engine, "inputs_sha256": corpus.digest(), "setup_s": round(time.perf_counter() - started, 1)}
    LexicalIndex.build(["load the libraries first, so that their memory is not counted as the engine's"])
    if engine == "milvus-lite":
        import pymilvus  # noqa: F401
        import milvus_lite  # noqa: F401
        from assistant.stores import milvus_store

        row["store_sha256"] = hashlib.sha256(Path(milvus_store.__file__).read_bytes()).hexdigest()[:12]
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
    run = _in_fresh_process if isolate else (lambda fn, *a, **kw: fn(*a, **kw))
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
        if len(digests) != 1:
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
        "hybrid": {"k": settings.candidates, **_search_options(settings)},
        "versions": {name: _version(name) for name in ("pymilvus", "milvus-lite", "faiss-cpu", "pyarrow", "grpcio")},
    }


# --- running the parts --------------------------------------------------------------------------


@dataclass
class BenchOptions:
    """What `python -m assistant bench` was asked to run, and how big."""

    parts: Sequence[str] = PARTS
    questions: Path | None = None
    rounds: int = 3
    runs: int = 5
    beir: Path | None = None
    indexing_docs: int = 100
    sizes: Sequence[int] = DEFAULT_SIZES
    distributions: Sequence[str] = ("topical",)
    kinds: Sequence[str] = ("flat", "hnsw")
    queries: int = 200
    file_chunks: int = MILVUS_FILE_CHUNKS
    show_progress: bool = False
    on_case: Callable[[dict[str, Any]], None] | None = None

    def __post_init__(self) -> None:
        for name, values, known in (("part", self.parts, ALL_PARTS), ("distribution", self.distributions, DISTRIBUTIONS)):
            unknown = [v for v in values if v not in known]
            if unknown:
                raise ValueError(f"unknown {name} {unknown}; choose from {', '.join(known)}")
        for name in ("rounds", "runs", "indexing_docs", "queries", "file_chunks"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for spec in self.kinds:
            parse_kind(spec)
        if any(n <= 0 for n in self.sizes):
            raise ValueError(f"sizes must be > 0, got {list(self.sizes)}")


@dataclass
class BenchSession:
    """One benchmark run: settings whose index lives in `workdir`, and the bare model, loaded once.

    Example:
        >>> session = BenchSession(settings, BenchOptions(parts=["latency"]), Path("/tmp/b"))  # doctest: +SKIP
        >>> session.run()["latency"]["ratio_p50"]  # doctest: +SKIP
    """

    settings: Settings
    options: BenchOptions
    workdir: Path
    results: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def floor_model(self) -> Any:
        """A bare `SentenceTransformer` of the same model: the floor every figure is set against."""
        for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):  # never download: the model ships in a package
            os.environ.setdefault(name, "1")
        from sentence_transformers import SentenceTransformer

        return SentenceTransformer(resolve_model_path(self.settings.model), device=self.settings.device)

    def run(self, parts: Sequence[str] | None = None, *, on_part: Callable[[str], None] | None = None) -> dict[str, Any]:
        self.results["machine"] = machine_info()
        for part in parts or self.options.parts:
            if on_part is not None:
                on_part(part)
            started = time.perf_counter()
            self.results[part] = getattr(self, f"run_{part}")()
            self.results[part]["wall_s"] = round(time.perf_counter() - started, 1)
        self.results["machine"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
        return self.results

    def _questions(self) -> list[tuple[str, list[str]]]:
        if self.options.questions is None or not self.options.questions.exists():
            raise ValueError(f"question set {self.options.questions} not found; pass --questions FILE")
        return latency_items(self.options.questions)

    def _assistant(self) -> Any:
        from assistant import Assistant

        return Assistant.load(self.settings, show_progress=self.options.show_progress, on_rebuild=lambda message: None)

    def run_latency(self) -> dict[str, Any]:
        bot = self._assistant()
        result = bench_latency(bot, self._questions(), self.floor_model.encode, rounds=self.options.rounds)
        stats = bot.store.stats()
        return {**result, "chunks": stats["chunks"], "index_kind": stats.get("index_kind")}

    def run_cold(self) -> dict[str, Any]:
        self._assistant()  # the index must exist before the first cold process
        question = self._questions()[0][0]
        return bench_cold(self.settings, question, runs=self.options.runs)

    @cached_property
    def beir(self) -> Any:
        """The `BeirDataset` of `options.beir`, or None to use the settings' corpus instead."""
        from assistant.beir import load_beir

        return load_beir(self.options.beir) if self.options.beir is not None else None

    def run_indexing(self) -> dict[str, Any]:
        from assistant.embedding import get_embedder

        settings = self.settings.model_copy(update={"index_dir": self.workdir / "indexing-index"})
        if self.beir is not None:
            folder = write_beir_corpus(self.beir, self.workdir / "indexing-corpus", limit=self.options.indexing_docs)
            settings = settings.model_copy(update={"corpus_dir": folder})
        embedder = get_embedder(settings.model, device=settings.device)
        floor = partial(self.floor_model.encode, batch_size=ENCODE_BATCH)
        result = bench_indexing(settings, embedder, floor, rounds=self.options.rounds, show_progress=self.options.show_progress)
        source = f"{self.options.beir} (first {self.options.indexing_docs} documents)" if self.beir is not None else settings.corpus_dir
        return {**result, "corpus": str(source)}

    @cached_property
    def vocabulary(self) -> tuple[list[str], np.ndarray]:
        """The words of the synthetic texts: those of `options.beir`, else of the settings' corpus."""
        from assistant.corpus import load_corpus

        if self.beir is not None:
            texts = self.beir.documents()
        else:
            texts = [d.text for d in load_corpus(self.settings.corpus_dir, max_bytes=self.settings.max_file_bytes)]
        return word_distribution(texts)

    def run_scale(self) -> dict[str, Any]:
        return bench_scale(
            self.options.sizes,
            distributions=self.options.distributions,
            kinds=self.options.kinds,
            queries=self.options.queries,
            vocabulary=self.vocabulary,
            settings=self.settings,
            show_progress=self.options.show_progress,
            on_case=self.options.on_case,
        )

    def run_milvus(self) -> dict[str, Any]:
        return bench_milvus(
            self.options.sizes,
            queries=self.options.queries,
            vocabulary=self.vocabulary,
            settings=self.settings,
            file_chunks=self.options.file_chunks,
            workdir=self.workdir,
            show_progress=self.options.show_progress,
            on_case=self.options.on_case,
        )


# --- reporting --------------------------------------------------------------------------------


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    """A Markdown table; the first column is left-aligned, the others right-aligned."""
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return [*lines, ""]


def _verdict(name: str, value: float, target: float, *, at_most: bool) -> str:
    met = value <= target if at_most else value >= target
    return f"{name} {value:.3f} (target {'≤' if at_most else '≥'} {target}: {'met' if met else 'NOT met'})."


def _ms(summary: dict[str, float], scale: float = 1.0) -> list[str]:
    return [f"{summary['p50_ms'] * scale:.2f}", f"{summary['p95_ms'] * scale:.2f}"]


def _machine_lines(m: dict[str, Any]) -> list[str]:
    v = m["versions"]
    line = (
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['ram_gib']} GiB RAM, load average {m['load_average'][0]} before "
        f"and {m.get('load_average_after', ['?'])[0]} after. Python {v['python']}, torch {v['torch']}, "
        f"sentence-transformers {v['sentence-transformers']}, faiss-cpu {v['faiss-cpu']}, bm25s {v['bm25s']}, numpy {v['numpy']}."
    )
    return [line, ""]


def _latency_lines(r: dict[str, Any]) -> list[str]:
    rows = [
        [label, *_ms(r[key]), f"{r[key]['mean_ms']:.2f}"]
        for label, key in (
            ("`Assistant.ask`", "answer"),
            ("bare `encode` (floor)", "bare_encode"),
            ("encoder time inside `ask`", "encoder_in_answer"),
            ("`ask` minus its encoder time", "non_encoder"),
        )
    ]
    title = (
        f"Warm answer latency: {r['questions']} questions × {r['rounds']} rounds, {r['chunks']} chunks, "
        f"{r['index_kind']} index, {r['encodes_per_answer']} encodes per answer."
    )
    return [
        title,
        "",
        *_table(["", "p50 ms", "p95 ms", "mean ms"], rows),
        _verdict("Ratio of the p50s", r["ratio_p50"], r["target_ratio_p50"], at_most=True) + f" Ratio of the p95s {r['ratio_p95']:.3f}.",
        "",
    ]


def _cold_lines(r: dict[str, Any]) -> list[str]:
    rows = [
        ["`python -m assistant ask` (index built)", *_ms(r["assistant"], 1e-3)],
        ["load the model + one `encode` (floor)", *_ms(r["bare_encode"], 1e-3)],
    ]
    return [
        f"Cold start: {r['runs']} processes of each kind, interleaved; wall time from launch to exit.",
        "",
        *_table(["process", "p50 s", "p95 s"], rows),
        _verdict("Ratio of the p50s", r["ratio_p50"], r["target_ratio_p50"], at_most=True),
        "",
    ]


def _indexing_lines(r: dict[str, Any]) -> list[str]:
    rows = [
        ["full build (`open_index(force=True)`)", f"{r['build_s']:.2f}", f"{r['build_chunks_per_s']:.1f}"],
        ["bare `encode` of the same texts (floor)", f"{r['bare_encode_s']:.2f}", f"{r['bare_chunks_per_s']:.1f}"],
        ["build minus its encoder time", f"{r['non_encoder_s']:.2f}", ""],
    ]
    title = (
        f"Indexing: {r['chunks']} chunks ({r['mean_chunk_chars']} characters on average) from {r.get('corpus', 'the corpus')}, "
        f"median of {r['rounds']} interleaved rounds."
    )
    return [
        title,
        "",
        *_table(["", "seconds", "chunks/s"], rows),
        _verdict("Throughput ratio", r["ratio"], r["target_ratio"], at_most=False),
        "",
    ]


def render_scale_table(scale: dict[str, Any]) -> list[str]:
    rows = []
    for case in scale["cases"]:
        for kind, row in case["kinds"].items():
            retrieval = row.get("retrieval")
            single = row.get("search_1_thread")
            retrieval_single = row.get("retrieval_1_thread")
            rows.append([
                case["distribution"], f"{case['n']:,}", f"{kind}{' (auto)' if kind == case.get('auto_kind') else ''}",
                f"{row['build_s']:.1f}", f"{row['index_mb']:.0f}", f"{case['peak_rss_mb']:.0f}",
                " / ".join(_ms(row["search"])), " / ".join(_ms(single)) if single else "–", f"{row['recall_at_k']:.3f}",
                " / ".join(_ms(retrieval)) if retrieval else "–", " / ".join(_ms(retrieval_single)) if retrieval_single else "–",
                row.get("retrieval_recall_at_k", "–"),
            ])
    header = ["vectors", "chunks", "index", "build s", "index MiB", "peak RSS MiB", "search p50 / p95 ms",
              "1 thread", "recall@10", "retrieval p50 / p95 ms", "1 thread", "fused top-10 vs exact"]
    return _table(header, rows)


def render_milvus_table(milvus: dict[str, Any]) -> list[str]:
    rows = []
    for case in milvus["cases"]:
        for engine, row in case["engines"].items():
            if "error" in row:
                rows.append([f"{case['n']:,}", ENGINE_LABELS.get(engine, engine), f"failed after {row['wall_s']:.0f} s: {row['error']}"])
                continue
            rows.append([
                f"{case['n']:,}", ENGINE_LABELS.get(engine, engine), f"{row['build_s']:.1f}", f"{row['chunks_per_s']:,.0f}",
                f"{row['save_s']:.1f}" if "save_s" in row else "–", f"{row['disk_mb']:.0f}", f"{row['peak_rss_mb']:.0f}",
                f"{row['engine_peak_mb']:.0f}", " / ".join(_ms(row["dense"])), f"{row['recall_at_k']:.3f}",
                " / ".join(_ms(row["hybrid"])), f"{row['first_hybrid_ms']:.0f}", row.get("hybrid_overlap_at_k", "–"),
            ])
    hnsw, hybrid = milvus["hnsw"], milvus["hybrid"]
    first = milvus["cases"][0] if milvus["cases"] else {"queries": "?", "file_chunks": "?"}
    title = (
        f"Milvus Lite vs FAISS: topical vectors, {first['queries']} single queries (vectors given, no encoder), "
        f"{first['file_chunks']} chunks per file; HNSW M={hnsw['m']}, efConstruction={hnsw['ef_construction']}, "
        f"ef={hnsw['ef_search']}; hybrid k={hybrid['k']}, {hybrid['fusion']}, alpha {hybrid['alpha']}, "
        f"neighbour weight {hybrid['neighbour_weight']}. pymilvus {milvus['versions']['pymilvus']}, "
        f"milvus-lite {milvus['versions']['milvus-lite']}."
    )
    header = ["chunks", "engine", "build s", "chunks/s", "+ save s", "on disk MiB", "peak RSS MiB", "engine MiB",
              "dense p50 / p95 ms", "recall@10", "hybrid p50 / p95 ms", "1st hybrid ms", "hybrid top-10 vs exact FAISS"]
    return [title, "", *_table(header, rows)]


def render_markdown(results: dict[str, Any]) -> str:
    """The results as Markdown tables, as they go into docs/benchmarks.md."""
    out: list[str] = []
    for key, render in (("machine", _machine_lines), ("latency", _latency_lines), ("cold", _cold_lines),
                        ("indexing", _indexing_lines), ("scale", render_scale_table), ("milvus", render_milvus_table)):
        if key in results:
            out += render(results[key])
    return "\n".join(out).rstrip() + "\n"


def merge_results(runs: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Saved `--json` runs as one: a later run's part replaces an earlier one's, except that scale
    and milvus cases add up, one per (distribution, size), the later run's winning."""
    merged: dict[str, Any] = {}
    cases: dict[str, dict[tuple[str, int], dict[str, Any]]] = {"scale": {}, "milvus": {}}
    for run in runs:
        for key, value in run.items():
            if key in cases:
                cases[key].update({(case["distribution"], case["n"]): case for case in value["cases"]})
                value = {**value, "cases": []}
            merged[key] = value
    for key, found in cases.items():
        if key in merged:
            merged[key]["cases"] = [found[k] for k in sorted(found)]
    return merged


def plot_scale(scale: dict[str, Any], path: Path, *, title: str | None = None) -> Path:
    """Query latency and memory against corpus size: a colour per index kind, a line style per distribution.

    Left: single-query vector search p50 (circles) and, for `topical`, the whole retrieval step
    without the encoder (squares). Right: what each index kind holds, the chunks with their BM25
    index, and the peak RSS of the benchmark process (`topical`; `random` needs the same memory).
    """
    cases = sorted(scale["cases"], key=lambda c: (c["distribution"], c["n"]))
    kinds = list(dict.fromkeys(kind for case in cases for kind in case["kinds"]))
    colours = {kind: f"C{i}" for i, kind in enumerate(kinds)}
    styles = {"topical": "-", "random": "--"}
    fig, (latency_ax, memory_ax) = _figure()
    for distribution in [d for d in DISTRIBUTIONS if any(c["distribution"] == d for c in cases)]:
        mine = [c for c in cases if c["distribution"] == distribution]
        for kind in kinds:
            points = [(c["n"], c["kinds"][kind]) for c in mine if kind in c["kinds"]]
            sizes = [n for n, _ in points]
            style = {"color": colours[kind], "linestyle": styles[distribution]}
            latency_ax.plot(sizes, [r["search"]["p50_ms"] for _, r in points], marker="o",
                            label=f"{kind}, {distribution}: vector search", **style)
            if distribution == "topical" and all("retrieval" in r for _, r in points):
                latency_ax.plot(sizes, [r["retrieval"]["p50_ms"] for _, r in points], marker="s", alpha=0.5,
                                label=f"{kind}, {distribution}: dense + BM25 + fusion", **style)
            if distribution == "topical":
                memory_ax.plot(sizes, [r["index_mb"] for _, r in points], marker="o", label=f"{kind}: vector index", **style)
        if distribution == "topical":
            sizes = [c["n"] for c in mine]
            if all("text_mb" in c for c in mine):
                memory_ax.plot(sizes, [c["text_mb"] for c in mine], color="black", marker="s", label="chunks + BM25 index")
            memory_ax.plot(sizes, [c["peak_rss_mb"] for c in mine], color="grey", linestyle=":", marker="^",
                           label="peak RSS of the benchmark process")
    latency_ax.axhline(10, color="red", linewidth=0.8, linestyle=":", label="10 ms target at 1M (no encoder)")
    return _save_figure(fig, {latency_ax: ("single-query latency p50, encoder excluded", "ms"), memory_ax: ("memory", "MiB")},
                        path, title)


def plot_milvus(milvus: dict[str, Any], path: Path, *, title: str | None = None) -> Path:
    """Milvus Lite against FAISS, a colour per engine. Left: single-query p50 (line) and p95
    (dotted) of dense search (circles) and hybrid search (squares). Right: peak RSS of the
    engine's process (line) and the part of it the engine added to the inputs (dashed)."""
    cases = sorted(milvus["cases"], key=lambda c: c["n"])
    engines = list(dict.fromkeys(engine for case in cases for engine in case["engines"]))
    fig, (latency_ax, memory_ax) = _figure()
    for i, engine in enumerate(engines):
        points = [(c["n"], c["engines"][engine]) for c in cases if "error" not in c["engines"].get(engine, {"error": "absent"})]
        sizes, label, colour = [n for n, _ in points], ENGINE_LABELS.get(engine, engine), f"C{i}"
        for search, marker in (("dense", "o"), ("hybrid", "s")):
            latency_ax.plot(sizes, [r[search]["p50_ms"] for _, r in points], color=colour, marker=marker,
                            label=f"{label}: {search} p50")
            latency_ax.plot(sizes, [r[search]["p95_ms"] for _, r in points], color=colour, marker=marker, linestyle=":",
                            alpha=0.6, label=f"{label}: {search} p95")
        memory_ax.plot(sizes, [r["peak_rss_mb"] for _, r in points], color=colour, marker="o", label=f"{label}: peak RSS")
        memory_ax.plot(sizes, [r["engine_peak_mb"] for _, r in points], color=colour, marker="^", linestyle="--",
                       label=f"{label}: added to the inputs")
    return _save_figure(fig, {latency_ax: ("single-query latency, encoder excluded", "ms"), memory_ax: ("memory", "MiB")},
                        path, title)


def _figure() -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(1, 2, figsize=(12, 5))


def _save_figure(fig: Any, axes: dict[Any, tuple[str, str]], path: Path, title: str | None) -> Path:
    """Log-log axes titled `name` with `unit`, the figure titled `title`, saved as PNG at `path`."""
    import matplotlib.pyplot as plt

    for ax, (name, unit) in axes.items():
        ax.set(xscale="log", yscale="log", xlabel="chunks in the corpus", ylabel=unit, title=name)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
