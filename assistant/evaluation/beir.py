"""Retrieval quality on a BEIR data set, measured on the product's own retrieval.

A BEIR folder (Thakur et al., "BEIR: A Heterogeneous Benchmark for Zero-shot Evaluation of
Information Retrieval Models", NeurIPS 2021) holds `corpus.jsonl` (`_id`, `title`, `text`),
`queries.jsonl` (`_id`, `text`) and `qrels/<split>.tsv` (`query-id corpus-id score`).

Nothing here retrieves on its own. Each BEIR document becomes one Markdown document of a corpus
folder (`# {title}`, a blank line, the text), which the product indexes by its own path
(`assistant.indexing.sync_store` into a FAISS `ChunkStore`: the product's chunker, embedder,
BM25 and index kind) and searches with `assistant.retrieval.hybrid_search` under the product's
`Settings` (fusion, alpha, neighbour weight). A document ranks where its best chunk ranks. The
`dense` and `lexical` rows are the same store's own `dense` and `lexical` searches.

BEIR-specific choices (another alpha, no neighbour smoothing, another chunk length, exact
search) are `Settings` variants, reported as rows named by the settings that differ from the
product's. Variants that change only retrieval share the product's store; those that change
chunking or the index kind get a store of their own (their texts come from the embedding cache
when they were embedded before).

The metrics (nDCG@10, Recall@10, Recall@100, MRR@10) come from ranx, whose nDCG uses linear
gains like trec_eval, so figures compare with published ones.

Example:
    >>> dataset = load_beir("tests/fixtures/beir_tiny")  # doctest: +SKIP
    >>> report = evaluate_beir(dataset, get_embedder(), Settings(), variants=[{"alpha": 0.7}])  # doctest: +SKIP
    >>> report.rows["product"]["ndcg@10"], report.rows["alpha=0.7"]["ndcg@10"]  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from assistant.embedding import Embedder
from assistant.evaluation.beir_data import BeirDataset, BeirFormatError, load_beir, read_qrels, write_corpus
from assistant.evaluation.embedding_cache import CachedEmbedder
from assistant.indexing import sync_store
from assistant.models import Chunk
from assistant.retrieval import hybrid_search
from assistant.settings import PROJECT_ROOT, Settings
from assistant.stores import ChunkReader, ChunkStore, open_store

logger = logging.getLogger(__name__)

#: The figures reported for every row, in ranx's names.
METRICS = ("ndcg@10", "recall@10", "recall@100", "mrr@10")
#: Documents ranked per query: enough for Recall@100.
RUN_DEPTH = 100
#: Where embeddings are cached unless told otherwise (git-ignored).
DEFAULT_CACHE_DIR = PROJECT_ROOT / "cache"
#: Settings a variant may change: retrieval alone (the product's store serves them) ...
RETRIEVAL_FIELDS = ("fusion", "alpha", "rrf_k", "neighbour_weight")
#: ... or how the store is built (a store of its own).
STORE_FIELDS = ("max_chunk_chars", "max_heading_words", "faiss_index", "hnsw_threshold")
#: The variants `eval --beir` reports beside the product (docs/retrieval-quality.md): the best on
#: SciFact train (alpha 0.7, a lighter neighbour weight), no neighbour smoothing, the alpha the
#: earlier BEIR figures used, reciprocal-rank fusion, and exact search instead of HNSW.
DEFAULT_VARIANTS: tuple[dict[str, Any], ...] = (
    {"alpha": 0.7, "neighbour_weight": 0.15},
    {"neighbour_weight": 0.0},
    {"alpha": 0.7},
    {"fusion": "rrf"},
    {"faiss_index": "flat"},
)

__all__ = [
    "DEFAULT_CACHE_DIR",
    "DEFAULT_VARIANTS",
    "METRICS",
    "BeirDataset",
    "BeirFormatError",
    "BeirReport",
    "Variant",
    "evaluate_beir",
    "load_beir",
    "make_variants",
    "rank_documents",
    "read_qrels",
    "score_run",
    "write_corpus",
]


# -- variants --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    """A named row: the product's settings with `changes` applied."""

    name: str
    settings: Settings
    changes: dict[str, Any] = field(default_factory=dict)

    def store_key(self) -> tuple[Any, ...]:
        """Variants with equal keys can share one store."""
        return tuple(getattr(self.settings, name) for name in STORE_FIELDS)


def variant_name(changes: Mapping[str, Any]) -> str:
    """ "alpha=0.7, neighbour_weight=0": the settings that differ, in the order given.

    >>> variant_name({"alpha": 0.7, "neighbour_weight": 0.0})
    'alpha=0.7, neighbour_weight=0'
    """
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in changes.items())


def make_variants(settings: Settings, variants: Sequence[Mapping[str, Any]] = ()) -> list[Variant]:
    """"product" (`settings` as they are), then each variant that differs from it.

    A variant may only change `RETRIEVAL_FIELDS` and `STORE_FIELDS`; its values are validated as
    `Settings` validates them. A variant equal to the product (e.g. `alpha=0.7` when the product
    already uses 0.7) or to an earlier variant is left out, with a log line.
    """
    rows = [Variant("product", settings)]
    known = set(RETRIEVAL_FIELDS) | set(STORE_FIELDS)
    for changes in variants:
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"a BEIR variant may change {', '.join(sorted(known))}; got {', '.join(unknown)}")
        differing = {k: v for k, v in changes.items() if getattr(settings, k) != v}
        name = variant_name(differing)
        if not differing or any(row.name == name for row in rows):
            logger.info("variant %s is the product's setting or repeats another; not repeated", variant_name(dict(changes)))
            continue
        changed = Settings(**{**settings.model_dump(), **differing})
        rows.append(Variant(name, changed, differing))
    return rows


# -- runs ------------------------------------------------------------------------------------

RunDict = dict[str, dict[str, float]]  # query id -> {doc id: score}, what ranx reads


def rank_documents(search: Callable[[int], Sequence[Chunk]], owner: Mapping[str, str], *, depth: int, start: int,
                   limit: int) -> list[str]:
    """The first `depth` documents of a chunk ranking, each where its best chunk ranks.

    `search(k)` returns the best `k` chunks, best first. `k` starts at `start` and doubles until
    the chunks name `depth` documents, the search runs out, or `k` reaches `limit` (the store's size).
    """
    k = max(1, min(start, limit))
    while True:
        chunks = search(k)
        documents = list(dict.fromkeys(owner[c.source] for c in chunks))
        if len(documents) >= depth or len(chunks) < k or k >= limit:
            return documents[:depth]
        k = min(limit, 2 * k)


def as_run(order: Sequence[str]) -> dict[str, float]:
    """Rank-derived scores (n, n-1, ...): ranx sorts by score, and these keep the product's tie order."""
    return {doc: float(len(order) - rank) for rank, doc in enumerate(order)}


@dataclass
class SearchContext:
    """What every search of one store needs: the reader, which document owns each source, the sizes."""

    reader: ChunkReader
    owner: Mapping[str, str]
    depth: int
    start: int

    def chunks(self, pairs: Sequence[tuple[Any, float]]) -> list[Chunk]:
        records = self.reader.records([key for key, _ in pairs])
        return [records[key].chunk for key, _ in pairs if key in records]

    def run(self, search: Callable[[int], Sequence[Chunk]]) -> dict[str, float]:
        return as_run(rank_documents(search, self.owner, depth=self.depth, start=self.start, limit=self.reader.count()))


def hybrid_runs(context: SearchContext, settings: Settings, queries: Mapping[str, str], vectors: np.ndarray) -> RunDict:
    """The product's hybrid search (`hybrid_search` with `settings`) for every query, as document rankings."""

    def search(text: str, vector: np.ndarray) -> Callable[[int], list[Chunk]]:
        return lambda k: [hit.chunk for hit in hybrid_search(
            context.reader, text, vector, k, fusion=settings.fusion, alpha=settings.alpha, rrf_k=settings.rrf_k,
            neighbour_weight=settings.neighbour_weight)]

    return {qid: context.run(search(text, vector)) for (qid, text), vector in zip(queries.items(), vectors)}


def single_runs(context: SearchContext, queries: Mapping[str, str], vectors: np.ndarray) -> tuple[RunDict, RunDict]:
    """The store's own dense and lexical searches for every query, as document rankings."""
    reader = context.reader
    dense, lexical = {}, {}
    for (qid, text), vector in zip(queries.items(), vectors):
        dense[qid] = context.run(lambda k, vector=vector: context.chunks(reader.dense(vector, k)))
        lexical[qid] = context.run(lambda k, text=text: context.chunks(reader.lexical(text, k)))
    return dense, lexical


# -- metrics ---------------------------------------------------------------------------------


def score_run(qrels: Mapping[str, Mapping[str, int]], run: Mapping[str, Mapping[str, float]],
              metrics: Sequence[str] = METRICS) -> dict[str, float]:
    """Mean of each metric over the judged queries (a query with no results counts 0), by ranx.

    ranx's `ndcg` uses linear gains (Järvelin & Kekäläinen), as trec_eval and so BEIR do, and
    documents judged 0 count as not relevant.
    """
    from ranx import Qrels, Run, evaluate

    judged = {q: dict(d) for q, d in qrels.items() if d}
    results = {q: dict(d) for q, d in run.items() if d and q in judged}
    if not results:
        return {m: 0.0 for m in metrics}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numba's "unsafe cast" notes from inside ranx
        scores = evaluate(Qrels.from_dict(judged), Run.from_dict(results), list(metrics), make_comparable=True)
    scores = scores if isinstance(scores, dict) else {metrics[0]: scores}
    return {m: float(scores[m]) for m in metrics}


# -- evaluation ------------------------------------------------------------------------------


@dataclass(frozen=True)
class BeirReport:
    """Figures per row ("product", each variant, then the product store's "dense" and "lexical"),
    the settings each row differs by, and what the run cost."""

    rows: dict[str, dict[str, float]]
    changes: dict[str, dict[str, Any]]
    product: dict[str, Any]  # the product's retrieval and store settings, index kind included
    queries: int
    documents: int
    chunks: int
    embedded: int | None  # texts the model embedded in this run (the rest came from the cache); None: no cache
    embed_seconds: float | None
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)  # seconds: "index <row>" per store built, then per row
    runs: dict[str, RunDict] = field(default_factory=dict)  # each row's document rankings, with `keep_runs`

    def as_json(self) -> dict[str, Any]:
        return {"rows": self.rows, "order": list(self.rows), "changes": self.changes, "product": self.product, "queries": self.queries,
                "documents": self.documents, "chunks": self.chunks, "embedded": self.embedded,
                "embed_seconds": None if self.embed_seconds is None else round(self.embed_seconds, 1), "seconds": round(self.seconds, 1),
                "timings": {name: round(value, 1) for name, value in self.timings.items()}}


def build_store(dataset: BeirDataset, settings: Settings, embedder: Embedder, folder: Path, *,
                show_progress: bool = False) -> tuple[ChunkStore, dict[str, str]]:
    """The dataset indexed the product's way in `folder` (a FAISS store), and each source's document id."""
    owner = write_corpus(dataset, folder / "corpus")
    settings = settings.model_copy(update={"backend": "faiss", "corpus_dir": folder / "corpus", "index_dir": folder / "index"})
    store = open_store(settings, model=embedder.name, dimension=embedder.dimension, reset=True)
    report = sync_store(store, settings, embedder, show_progress=show_progress)
    if report.skipped:
        logger.warning("%d BEIR documents were skipped by indexing, e.g. %s", len(report.skipped), report.skipped[0])
    return store, owner


def evaluate_beir(
    dataset: BeirDataset,
    embedder: Embedder,
    settings: Settings | None = None,
    *,
    variants: Sequence[Mapping[str, Any]] = (),
    cache_dir: Path | None = None,
    workdir: Path | None = None,
    depth: int = RUN_DEPTH,
    show_progress: bool = False,
    keep_runs: bool = False,
) -> BeirReport:
    """Figures of the product's retrieval on one split, of each variant, and of dense and lexical alone.

    `cache_dir` keeps every embedded text's vector (`CachedEmbedder`); None embeds everything.
    The stores are built in `workdir`, or in a temporary folder removed afterwards. With
    `keep_runs`, the report keeps every row's rankings (for significance tests).
    """
    if depth <= 0:
        raise ValueError(f"depth must be > 0, got {depth}")
    started = time.perf_counter()
    settings = settings or Settings()
    rows = make_variants(settings, variants)
    cached = CachedEmbedder(embedder, cache_dir) if cache_dir is not None else None
    model = cached or embedder
    queries, qrels = dataset.queries, dataset.qrels
    figures: dict[str, dict[str, float]] = {}
    runs: dict[str, RunDict] = {}
    product: dict[str, Any] = {}
    timings: dict[str, float] = {}
    chunks = 0
    with tempfile.TemporaryDirectory(prefix="beir-", dir=workdir) as tmp:
        try:
            vectors = model.encode(list(queries.values()))
            groups: dict[tuple[Any, ...], list[Variant]] = {}
            for row in rows:
                groups.setdefault(row.store_key(), []).append(row)
            for number, members in enumerate(groups.values()):
                mark = time.perf_counter()
                store, owner = build_store(dataset, members[0].settings, model, Path(tmp) / f"store-{number}",
                                           show_progress=show_progress)
                timings[f"index {members[0].name}"] = time.perf_counter() - mark
                logger.info("BEIR: %d chunks indexed for %s in %.1f s", store.count(), members[0].name, timings[f"index {members[0].name}"])
                try:
                    context = SearchContext(store.view(), owner, depth, max(settings.candidates, 10 * depth))
                    for row in members:
                        mark = time.perf_counter()
                        runs[row.name] = hybrid_runs(context, row.settings, queries, vectors)
                        figures[row.name] = score_run(qrels, runs[row.name])
                        timings[row.name] = time.perf_counter() - mark
                        logger.info("BEIR: %s: nDCG@10 %.4f (%.1f s)", row.name, figures[row.name]["ndcg@10"], timings[row.name])
                    if members[0].name == "product":
                        mark = time.perf_counter()
                        runs["dense"], runs["lexical"] = single_runs(context, queries, vectors)
                        figures["dense"], figures["lexical"] = score_run(qrels, runs["dense"]), score_run(qrels, runs["lexical"])
                        timings["dense and lexical"] = time.perf_counter() - mark
                        chunks = store.count()
                        product = {**{name: getattr(settings, name) for name in (*RETRIEVAL_FIELDS, *STORE_FIELDS)},
                                   "index_kind": store.stats()["index_kind"]}
                finally:
                    store.close()
        finally:
            if cached is not None:
                cached.flush()
    order = [row.name for row in rows] + ["dense", "lexical"]
    return BeirReport(
        rows={name: figures[name] for name in order},
        changes={row.name: row.changes for row in rows},
        product=product,
        queries=len(queries),
        documents=len(dataset.doc_ids),
        chunks=chunks,
        embedded=cached.embedded if cached is not None else None,
        embed_seconds=cached.embed_seconds if cached is not None else None,
        seconds=time.perf_counter() - started,
        timings=timings,
        runs=runs if keep_runs else {},
    )
