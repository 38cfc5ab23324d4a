"""Retrieval quality on a BEIR-format data set: dense, lexical and hybrid side by side.

A BEIR folder (Thakur et al., "BEIR: A Heterogeneous Benchmark for Zero-shot Evaluation of
Information Retrieval Models", NeurIPS 2021) holds `corpus.jsonl` (`_id`, `title`, `text`),
`queries.jsonl` (`_id`, `text`) and `qrels/<split>.tsv` (`query-id corpus-id score`). The
metrics (nDCG@10, Recall@10, Recall@100, MRR@10) come from ranx, a maintained IR metrics
library whose nDCG uses linear gains like trec_eval, so figures compare with published ones.

Documents are embedded as `title + " " + text`, as BEIR and MTEB do; the corpus embeddings are
cached on disk, keyed by model and corpus hash, so a second run only embeds the queries.

Example:
    >>> dataset = load_beir("tests/fixtures/beir_tiny")  # doctest: +SKIP
    >>> report = evaluate_beir(dataset, get_embedder(), cache_dir=Path("cache"))  # doctest: +SKIP
    >>> report.figures["hybrid"]["ndcg@10"]  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np

from assistant.corpus import sha256_hex
from assistant.embedding import Embedder
from assistant.lexical import LexicalIndex
from assistant.retrieval import fuse_ranks, fuse_scores
from assistant.settings import PROJECT_ROOT

logger = logging.getLogger(__name__)

#: The figures reported for every method, in ranx's names.
METRICS = ("ndcg@10", "recall@10", "recall@100", "mrr@10")
#: How deep each run goes: enough for Recall@100.
RUN_DEPTH = 100
#: Where corpus embeddings are cached unless told otherwise (git-ignored).
DEFAULT_CACHE_DIR = PROJECT_ROOT / "cache"


@dataclass(frozen=True)
class BeirDataset:
    """One split of a BEIR data set: the whole corpus, and the queries that have judgements."""

    doc_ids: list[str]
    titles: list[str]
    texts: list[str]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]

    def documents(self) -> list[str]:
        """What is embedded and indexed: `title + " " + text`, as in BEIR and MTEB."""
        return [f"{title} {text}".strip() for title, text in zip(self.titles, self.texts)]


@dataclass(frozen=True)
class HybridConfig:
    """How the hybrid ranking is made.

    `fusion="convex"`: `alpha`·cosine + (1−alpha)·BM25/max(BM25) over the top `candidates` of
    each retriever; keeps how far apart the scores are. `fusion="rrf"`: weighted reciprocal-rank
    fusion of the same candidates; needs no calibration, but throws the score gaps away.
    `passages=(words, stride)`: also embed windows of long documents and score a document by its
    best window or its whole text (see `split_long_documents`); None embeds whole documents only.
    """

    fusion: Literal["convex", "rrf"] = "convex"
    alpha: float = 0.7
    rrf_k: int = 60
    dense_weight: float = 1.0
    lexical_weight: float = 1.0
    candidates: int = RUN_DEPTH
    passages: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.fusion not in ("rrf", "convex"):
            raise ValueError(f"fusion must be 'rrf' or 'convex', got {self.fusion!r}")
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha must be within [0, 1], got {self.alpha}")
        if self.candidates <= 0:
            raise ValueError(f"candidates must be > 0, got {self.candidates}")

    def label(self) -> str:
        if self.fusion == "convex":
            fusion = f"convex alpha={self.alpha:g}"
        else:
            fusion = f"rrf k={self.rrf_k} weights={self.dense_weight:g}/{self.lexical_weight:g}"
        return fusion + (f" + passages {self.passages[0]}/{self.passages[1]} words" if self.passages else "")


#: The hybrid `eval --beir` reports: alpha tuned on SciFact train (docs/retrieval-quality.md has the evidence).
DEFAULT_HYBRID = HybridConfig()
#: Reported beside it: reciprocal-rank fusion with the paper's k=60 (untuned), and with k tuned on SciFact train.
RRF_VARIANTS = (HybridConfig(fusion="rrf"), HybridConfig(fusion="rrf", rrf_k=5))


class BeirFormatError(ValueError):
    """The folder is not in BEIR format; the message names the file, the line and the fix."""


# -- loading -------------------------------------------------------------------------------


def _read_jsonl(path: Path) -> Iterable[tuple[int, dict]]:
    if not path.is_file():
        raise BeirFormatError(
            f"{path} not found; a BEIR folder holds corpus.jsonl, queries.jsonl and qrels/<split>.tsv"
        )
    with path.open(encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise BeirFormatError(
                    f"{path}:{number}: not valid JSON ({exc.msg}); each line must be one object"
                ) from exc
            if not isinstance(record, dict) or "_id" not in record:
                raise BeirFormatError(f"{path}:{number}: each line must be a JSON object with an \"_id\"")
            yield number, record


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """`query-id corpus-id score` rows (tab-separated, optional header, LF or CRLF)."""
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8-sig", newline="") as handle:
        for number, line in enumerate(handle, start=1):
            fields = line.strip().split("\t") if "\t" in line else line.split()
            if not fields or fields == [""]:
                continue
            if number == 1 and fields[0] == "query-id":
                continue
            if len(fields) != 3:
                raise BeirFormatError(
                    f"{path}:{number}: expected 'query-id<TAB>corpus-id<TAB>score', got {line.strip()!r}"
                )
            try:
                score = int(float(fields[2]))
            except ValueError as exc:
                raise BeirFormatError(f"{path}:{number}: score must be a number, got {fields[2]!r}") from exc
            qrels.setdefault(fields[0], {})[fields[1]] = score
    return qrels


def load_beir(folder: Path | str, split: str = "test") -> BeirDataset:
    """Read a BEIR folder; only the queries judged in `qrels/<split>.tsv` are kept."""
    folder = Path(folder)
    qrels_path = folder / "qrels" / f"{split}.tsv"
    if not qrels_path.is_file():
        splits = sorted(p.stem for p in (folder / "qrels").glob("*.tsv")) if (folder / "qrels").is_dir() else []
        raise BeirFormatError(
            f"{qrels_path} not found; splits in {folder}: {', '.join(splits) or 'none'} (pass --split NAME)"
        )
    doc_ids: list[str] = []
    titles: list[str] = []
    texts: list[str] = []
    seen: set[str] = set()
    path = folder / "corpus.jsonl"
    for number, record in _read_jsonl(path):
        doc_id = str(record["_id"])
        if doc_id in seen:
            raise BeirFormatError(f"{path}:{number}: document id {doc_id!r} appears twice")
        seen.add(doc_id)
        doc_ids.append(doc_id)
        titles.append(str(record.get("title") or ""))
        texts.append(str(record.get("text") or ""))
    if not doc_ids:
        raise BeirFormatError(f"{path} has no documents")
    all_queries = {str(r["_id"]): str(r.get("text") or "") for _, r in _read_jsonl(folder / "queries.jsonl")}
    qrels = read_qrels(qrels_path)
    missing = sorted(set(qrels) - set(all_queries))
    if missing:
        logger.warning("%d judged queries are not in queries.jsonl and are skipped (e.g. %s)", len(missing), missing[0])
    qrels = {qid: docs for qid, docs in qrels.items() if qid in all_queries}
    if not qrels:
        raise BeirFormatError(f"{qrels_path} judges none of the queries in {folder / 'queries.jsonl'}")
    unknown = {doc for docs in qrels.values() for doc in docs} - seen
    if unknown:
        logger.warning("%d judged documents are not in the corpus; they count as missed", len(unknown))
    return BeirDataset(doc_ids, titles, texts, {qid: all_queries[qid] for qid in qrels}, qrels)


def split_long_documents(dataset: BeirDataset, *, words: int, stride: int) -> tuple[list[str], np.ndarray]:
    """Extra passages for the part of each long document that the model truncates, and their owners.

    The whole document is embedded as usual; the model only sees its first `max_seq_length`
    tokens (256 for all-MiniLM-L6-v2, about 180 words). Each document whose body is longer than
    `words` also gets windows of `words` words starting every `stride` words from `stride` on,
    each prefixed with the title, so a claim that matches the end of an abstract is still seen.
    A document's dense score is then the best cosine of its whole text and its windows
    (max-pooling). Returns the passage texts and, for each, the index of its document
    (non-decreasing, so the windows of one document are contiguous).
    """
    if words <= 0 or not 0 < stride <= words:
        raise ValueError(f"need words > 0 and 0 < stride <= words, got words={words}, stride={stride}")
    passages: list[str] = []
    owners: list[int] = []
    for index, (title, text) in enumerate(zip(dataset.titles, dataset.texts)):
        body = text.split()
        start = 0
        while start + words < len(body):
            start += stride
            passages.append(f"{title} {' '.join(body[start:start + words])}".strip())
            owners.append(index)
    return passages, np.asarray(owners, dtype=np.int64)


# -- embedding cache -----------------------------------------------------------------------


def cache_key(model: str, texts: Sequence[str], *, max_seq_length: int | None = None) -> str:
    """The hash of the model's name, its truncation length and every text, in order."""
    return sha256_hex(json.dumps([model, max_seq_length, list(texts)], ensure_ascii=False))


def embed_cached(
    texts: Sequence[str],
    embedder: Embedder,
    *,
    cache_dir: Path | None,
    show_progress: bool = False,
    batch_size: int = 64,
) -> np.ndarray:
    """Embeddings of `texts`, read from `cache_dir` when this model already embedded these texts.

    The file is written atomically (temporary file, then `os.replace`), so an interrupted run
    leaves no half-written cache; an unreadable or mismatched file is re-embedded.
    """
    if cache_dir is None:
        return embedder.encode(texts, batch_size=batch_size, show_progress=show_progress)
    key = cache_key(embedder.name, texts, max_seq_length=getattr(embedder, "max_seq_length", None))
    path = Path(cache_dir) / f"embeddings-{key[:32]}.npy"
    if path.is_file():
        try:
            vectors = np.load(path, allow_pickle=False)
            if vectors.shape == (len(texts), embedder.dimension):
                logger.info("corpus embeddings read from %s", path)
                return vectors
            logger.warning("cache file %s has shape %s, expected %s; re-embedding", path, vectors.shape,
                           (len(texts), embedder.dimension))
        except (OSError, ValueError) as exc:
            logger.warning("cache file %s is unreadable (%s); re-embedding", path, exc)
    started = time.perf_counter()
    vectors = embedder.encode(texts, batch_size=batch_size, show_progress=show_progress)
    logger.info("embedded %d texts in %.1f s", len(texts), time.perf_counter() - started)
    try:
        _save_atomically(path, vectors)
    except OSError as exc:  # a read-only cache costs time on the next run, not this run's figures
        logger.warning("could not write the embedding cache %s (%s)", path, exc)
    return vectors


def _save_atomically(path: Path, vectors: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=".embeddings-", suffix=".npy")
    try:
        with os.fdopen(handle, "wb") as out:
            np.save(out, np.ascontiguousarray(vectors, dtype=np.float32), allow_pickle=False)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


# -- retrieval -----------------------------------------------------------------------------


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the `k` highest scores, best first; ties break on the smaller index."""
    k = min(k, scores.size)
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    part = np.argpartition(-scores, k - 1)[:k] if k < scores.size else np.arange(scores.size)
    return part[np.lexsort((part, -scores[part]))]


@dataclass(frozen=True)
class Candidates:
    """One query's top `depth` documents from each retriever, with both scores of their union."""

    dense_ids: np.ndarray
    lexical_ids: np.ndarray
    ids: np.ndarray  # the union, sorted
    dense: np.ndarray  # cosine of every id in `ids`
    lexical: np.ndarray  # BM25 of every id in `ids`

    def fuse(self, config: HybridConfig, depth: int) -> list[int]:
        """The fused ranking of the top `config.candidates` of each retriever, best first."""
        n = config.candidates
        if config.fusion == "rrf":
            fused = fuse_ranks([self.dense_ids[:n].tolist(), self.lexical_ids[:n].tolist()], k=config.rrf_k,
                               weights=[config.dense_weight, config.lexical_weight])
            return [doc for doc, _ in fused[:depth]]
        keep = np.isin(self.ids, np.union1d(self.dense_ids[:n], self.lexical_ids[:n]))
        ids, scores = self.ids[keep], fuse_scores(self.dense[keep], self.lexical[keep], alpha=config.alpha)
        return ids[np.lexsort((ids, -scores))][:depth].tolist()


RunDict = dict[str, dict[str, float]]  # query id -> {doc id: score}, what ranx reads


@dataclass(frozen=True)
class RetrievalRuns:
    """Candidates for every query of a split; every method's run is computed from these alone."""

    doc_ids: list[str]
    candidates: dict[str, Candidates]

    def dense_run(self, depth: int = RUN_DEPTH) -> RunDict:
        return {q: self._as_run(c.dense_ids[:depth].tolist()) for q, c in self.candidates.items()}

    def lexical_run(self, depth: int = RUN_DEPTH) -> RunDict:
        return {q: self._as_run(c.lexical_ids[:depth].tolist()) for q, c in self.candidates.items()}

    def hybrid_run(self, config: HybridConfig = DEFAULT_HYBRID, depth: int = RUN_DEPTH) -> RunDict:
        return {q: self._as_run(c.fuse(config, depth)) for q, c in self.candidates.items()}

    def _as_run(self, order: Sequence[int]) -> dict[str, float]:
        """Rank-derived scores (n, n-1, ...): ranx re-sorts by score, and these keep our tie order."""
        return {self.doc_ids[i]: float(len(order) - rank) for rank, i in enumerate(order)}


class BeirRetriever:
    """Dense and BM25 scores of every document of a BEIR corpus for a query.

    Dense scoring is exhaustive (what a flat FAISS index returns), not approximate: fusion needs
    the cosine of every lexical candidate too, and an evaluation should not mix index error into
    its figures. With `passages=(words, stride)`, long documents also get the windows of
    `split_long_documents`, and `retrieve(..., pooled=True)` scores a document by its best one.

    Example:
        >>> retriever = BeirRetriever(load_beir(folder), get_embedder())  # doctest: +SKIP
        >>> runs = retriever.retrieve(retriever.dataset.queries)  # doctest: +SKIP
    """

    def __init__(
        self,
        dataset: BeirDataset,
        embedder: Embedder,
        *,
        cache_dir: Path | None = None,
        show_progress: bool = False,
        passages: tuple[int, int] | None = None,
        k1: float = 1.2,
        b: float = 0.75,
    ) -> None:
        self.dataset = dataset
        self.embedder = embedder
        documents = dataset.documents()
        self.doc_vectors = embed_cached(documents, embedder, cache_dir=cache_dir, show_progress=show_progress)
        self.passage_vectors = np.zeros((0, embedder.dimension), dtype=np.float32)
        self.passage_owners = np.zeros(0, dtype=np.int64)
        if passages is not None:
            texts, self.passage_owners = split_long_documents(dataset, words=passages[0], stride=passages[1])
            logger.info("%d passages for the tails of %d long documents", len(texts), len(set(self.passage_owners)))
            if texts:
                self.passage_vectors = embed_cached(texts, embedder, cache_dir=cache_dir, show_progress=show_progress)
        started = time.perf_counter()
        self.lexical = LexicalIndex.build(documents, k1=k1, b=b)
        logger.info("BM25 index over %d documents built in %.1f s", len(documents), time.perf_counter() - started)

    def dense_scores(self, vectors: np.ndarray, *, pooled: bool = False) -> np.ndarray:
        """Cosines (queries × documents); pooled: each document's best of itself and its passages."""
        scores = vectors @ self.doc_vectors.T
        if pooled and self.passage_owners.size:
            owners, starts = np.unique(self.passage_owners, return_index=True)
            best = np.maximum.reduceat(vectors @ self.passage_vectors.T, starts, axis=1)
            scores[:, owners] = np.maximum(scores[:, owners], best)
        return scores

    def retrieve(
        self,
        queries: Mapping[str, str],
        *,
        vectors: np.ndarray | None = None,
        pooled: bool = False,
        depth: int = RUN_DEPTH,
        batch_size: int = 64,
    ) -> RetrievalRuns:
        """The top `depth` of each retriever for every query (`vectors`: the queries' embeddings)."""
        ids = list(queries)
        if vectors is None:
            vectors = self.embedder.encode([queries[q] for q in ids], batch_size=batch_size)
        candidates: dict[str, Candidates] = {}
        for start in range(0, len(ids), batch_size):
            dense_batch = self.dense_scores(vectors[start:start + batch_size], pooled=pooled)
            for dense, qid in zip(dense_batch, ids[start:start + batch_size]):
                lexical = self.lexical.scores(queries[qid])
                dense_ids = top_k(dense, depth)
                lexical_ids = top_k(lexical, depth)
                lexical_ids = lexical_ids[lexical[lexical_ids] > 0]  # no word in common: not retrieved
                union = np.union1d(dense_ids, lexical_ids)
                candidates[qid] = Candidates(dense_ids, lexical_ids, union, dense[union], lexical[union])
        return RetrievalRuns(self.dataset.doc_ids, candidates)


# -- metrics -------------------------------------------------------------------------------


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


@dataclass(frozen=True)
class BeirReport:
    """Figures of `dense`, `lexical` and `hybrid`, and of each step to the hybrid (`variants`)."""

    figures: dict[str, dict[str, float]]
    variants: dict[str, dict[str, float]]
    queries: int
    documents: int
    hybrid: str
    seconds: float

    def as_json(self) -> dict:
        return {**self.figures, "variants": self.variants, "queries": self.queries, "documents": self.documents,
                "hybrid_config": self.hybrid, "seconds": round(self.seconds, 1)}


def evaluate_beir(
    dataset: BeirDataset,
    embedder: Embedder,
    *,
    cache_dir: Path | None = None,
    show_progress: bool = False,
    hybrid: HybridConfig = DEFAULT_HYBRID,
) -> BeirReport:
    """Dense, lexical and the default hybrid for one split, and the steps between them."""
    started = time.perf_counter()
    retriever = BeirRetriever(dataset, embedder, cache_dir=cache_dir, show_progress=show_progress,
                              passages=hybrid.passages)
    vectors = embedder.encode(list(dataset.queries.values()))
    whole = retriever.retrieve(dataset.queries, vectors=vectors)
    pooled = retriever.retrieve(dataset.queries, vectors=vectors, pooled=True) if hybrid.passages else whole
    qrels = dataset.qrels
    figures = {
        "dense": score_run(qrels, whole.dense_run()),
        "lexical": score_run(qrels, whole.lexical_run()),
        "hybrid": score_run(qrels, pooled.hybrid_run(hybrid)),
    }
    variants = {f"hybrid {c.label()}": score_run(qrels, whole.hybrid_run(c)) for c in RRF_VARIANTS if c != hybrid}
    if hybrid.passages:
        variants["dense + passages"] = score_run(qrels, pooled.dense_run())
        without = replace(hybrid, passages=None)
        variants[f"hybrid {without.label()}"] = score_run(qrels, whole.hybrid_run(without))
    return BeirReport(figures, variants, len(dataset.queries), len(dataset.doc_ids), hybrid.label(),
                      time.perf_counter() - started)
