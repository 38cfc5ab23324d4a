"""The chunk store on FAISS: chunks, vectors and BM25 in the index folder, loaded into the process.

State is an immutable `FaissView` (chunks, vectors, BM25 statistics, documents); readers take
one per question. `add` and `remove` stage changes; `commit` builds the next view from the
current one — reusing the stored vectors of every document it does not change, so adding one
file embeds one file — writes it atomically (`persist.write_build`) and swaps it in.

Keys are row positions in a view. A document's chunks are contiguous rows in document order,
so `(source, id)` orders chunks as the documents do.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import AbstractSet, Any, Sequence

import numpy as np

from assistant.chunking import chunking_manifest
from assistant.lexical import LexicalIndex, Vocabulary, build_vocabulary, top_positive
from assistant.models import Chunk, Document
from assistant.readers import PageGeometry
from assistant.settings import Settings
from assistant.stores.base import ChunkReader, ChunkStore, Record, StoreInvalid, check_document_chunks
from assistant.stores.faiss import persist
from assistant.stores.faiss.vectors import FaissVectors

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class FaissView(ChunkReader):
    """One state of the FAISS store: chunks, their vectors and BM25 statistics, row-aligned."""

    chunks: list[Chunk]
    vectors_index: FaissVectors
    bm25: LexicalIndex
    documents: dict[str, Document] = field(default_factory=dict)
    _groups: dict[tuple[str, int], Chunk] | None = field(default=None, repr=False)
    _vocabulary: Vocabulary | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        # `lexical` and `lexical_scores` of one question use the same score array.
        self._bm25_scores = lru_cache(maxsize=4)(self.bm25.scores)

    def count(self) -> int:
        return len(self.chunks)

    def dense(self, vector: np.ndarray, k: int, sources: AbstractSet[str] | None = None) -> list[tuple[int, float]]:
        if not self.chunks:
            return []
        if sources is None:
            scores, ids = self.vectors_index.search(vector[None, :], k)
            return [(int(i), float(s)) for s, i in zip(scores[0], ids[0]) if i >= 0]
        rows = self._rows_of(sources)  # a few documents: exact inner products over their rows alone
        scores = self.vectors_index.vectors(rows) @ vector if rows.size else np.zeros(0, np.float32)
        order = np.lexsort((rows, -scores))[:k]
        return [(int(rows[i]), float(scores[i])) for i in order]

    def lexical(self, query: str, k: int, sources: AbstractSet[str] | None = None) -> list[tuple[int, float]]:
        if not self.chunks:
            return []
        scores = self._bm25_scores(query)
        if sources is not None:
            kept = np.zeros_like(scores)
            rows = self._rows_of(sources)
            kept[rows] = scores[rows]
            scores = kept
        top, ids = top_positive(scores, k)
        return [(int(i), float(s)) for s, i in zip(top, ids)]

    def _rows_of(self, sources: AbstractSet[str]) -> np.ndarray:
        """Row positions of the chunks of `sources`, ascending."""
        return np.array([i for i, c in enumerate(self.chunks) if c.source in sources], dtype=np.int64)

    def lexical_scores(self, query: str, keys: Sequence[int]) -> np.ndarray:
        if not self.chunks:
            return np.zeros(len(keys), dtype=np.float32)
        return self._bm25_scores(query)[np.asarray(keys, dtype=np.int64)]

    def vectors(self, keys: Sequence[int]) -> np.ndarray:
        return self.vectors_index.vectors(np.asarray(keys, dtype=np.int64))

    def records(self, keys: Sequence[int]) -> dict[int, Record]:
        out = {}
        for key in keys:
            if not 0 <= key < len(self.chunks):
                continue
            chunk = self.chunks[key]
            before = self.chunks[key - 1] if key > 0 else None
            same = before is not None and before.source == chunk.source and before.section == chunk.section
            out[key] = Record(key, chunk, key - 1 if same else None)
        return out

    def group(self, chunk: Chunk) -> Chunk | None:
        if self._groups is None:
            self._groups = {(c.source, c.block): c for c in self.chunks if c.kind in ("list", "table")}
        return self._groups.get((chunk.source, chunk.block))

    def document_frequencies(self, tokens: Sequence[str]) -> dict[str, int]:
        return self.bm25.document_frequencies(tokens) if self.chunks else {t: 0 for t in tokens}

    def document_text(self, source: str) -> str | None:
        doc = self.documents.get(source)
        return doc.text if doc is not None else None

    def geometry(self, source: str) -> PageGeometry | None:
        doc = self.documents.get(source)
        return doc.geometry if doc is not None else None

    def vocabulary(self) -> Vocabulary:
        if self._vocabulary is None:
            self._vocabulary = build_vocabulary(c.embedding_text() for c in self.chunks)
        return self._vocabulary


def empty_view(dimension: int, kind: str = "flat") -> FaissView:
    return FaissView([], FaissVectors(dimension=dimension, kind=kind), LexicalIndex.build([""]))


def compatibility(settings: Settings, *, model: str, dimension: int) -> dict[str, Any]:
    """The manifest fields a usable index must match: anything else in it is information."""
    return {
        "format_version": persist.FORMAT_VERSION,
        "backend": "faiss",
        "model": model,
        "dimension": dimension,
        "chunking": chunking_manifest(max_chunk_chars=settings.max_chunk_chars, max_heading_words=settings.max_heading_words),
    }


def resolve_index_kind(settings: Settings, n_chunks: int) -> str:
    if settings.faiss_index != "auto":
        return settings.faiss_index
    return "hnsw" if n_chunks >= settings.hnsw_threshold else "flat"


class FaissChunkStore(ChunkStore):
    """A `ChunkStore` in `settings.index_dir` (see the module docstring).

    Example:
        >>> store = FaissChunkStore.create(settings, model=embedder.name, dimension=embedder.dimension)  # doctest: +SKIP
        >>> store.add(document, chunks, embedder.encode([c.embedding_text() for c in chunks]))  # doctest: +SKIP
        >>> store.commit()  # doctest: +SKIP
    """

    backend = "faiss"

    def __init__(self, settings: Settings, manifest: dict[str, Any], view: FaissView) -> None:
        self.settings = settings
        self.manifest = manifest
        self._view = view
        self._staged: dict[str, tuple[Document, list[Chunk], np.ndarray] | None] = {}
        self._lock = threading.Lock()

    @classmethod
    def open(cls, settings: Settings, *, model: str, dimension: int) -> "FaissChunkStore":
        """The index in `settings.index_dir`; `StoreInvalid` if absent, damaged or made with other settings."""
        index_dir = settings.index_dir
        try:
            manifest = persist.read_manifest(index_dir)
            persist.check_manifest(manifest, compatibility(settings, model=model, dimension=dimension))
            folder = persist.build_folder(index_dir, manifest)
            persist.verify_checksums(folder, manifest)
        except persist.ManifestInvalid as exc:
            raise StoreInvalid(str(exc)) from exc
        try:
            chunks = persist.read_chunks(folder)
            documents, text_hashes = persist.read_documents(folder)
            vectors = FaissVectors.load(str(folder))
            bm25 = LexicalIndex.load(str(folder / persist.BM25))
        except Exception as exc:  # any reader error means the same thing: the files cannot be used
            raise StoreInvalid(f"index files in {folder} cannot be read ({type(exc).__name__}: {exc})") from exc
        files = manifest.get("files")
        if not isinstance(files, dict) or not (vectors.count() == len(chunks) == manifest.get("chunk_count")):
            raise StoreInvalid(f"index files in {folder} disagree on the number of chunks")
        if chunks and bm25.count() != len(chunks):
            raise StoreInvalid(f"index files in {folder} disagree on the number of chunks")
        if vectors.dimension != dimension:
            raise StoreInvalid(f"the stored vectors have {vectors.dimension} dimensions, the model {dimension}")
        try:
            persist.check_documents(documents, text_hashes, chunks, files)
        except persist.ManifestInvalid as exc:
            raise StoreInvalid(str(exc)) from exc
        return cls(settings, manifest, FaissView(chunks, vectors, bm25, documents))

    @classmethod
    def create(cls, settings: Settings, *, model: str, dimension: int) -> "FaissChunkStore":
        """An empty store for these settings; nothing is written until `commit`."""
        manifest = {**compatibility(settings, model=model, dimension=dimension), "files": {}, "chunk_count": 0}
        return cls(settings, manifest, empty_view(dimension))

    # Reading: the current view.
    def view(self) -> FaissView:
        return self._view

    def count(self) -> int:
        return self._view.count()

    def dense(self, vector: np.ndarray, k: int, sources: AbstractSet[str] | None = None) -> list[tuple[int, float]]:
        return self._view.dense(vector, k, sources)

    def lexical(self, query: str, k: int, sources: AbstractSet[str] | None = None) -> list[tuple[int, float]]:
        return self._view.lexical(query, k, sources)

    def lexical_scores(self, query: str, keys: Sequence[int]) -> np.ndarray:
        return self._view.lexical_scores(query, keys)

    def vectors(self, keys: Sequence[int]) -> np.ndarray:
        return self._view.vectors(keys)

    def records(self, keys: Sequence[int]) -> dict[int, Record]:
        return self._view.records(keys)

    def group(self, chunk: Chunk) -> Chunk | None:
        return self._view.group(chunk)

    def document_frequencies(self, tokens: Sequence[str]) -> dict[str, int]:
        return self._view.document_frequencies(tokens)

    def vocabulary(self) -> Vocabulary:
        return self._view.vocabulary()

    def sources(self) -> dict[str, str]:
        return {source: doc.sha256 for source, doc in sorted(self._view.documents.items())}

    def chunks_of(self, source: str) -> list[Record]:
        view = self._view
        keys = [i for i, c in enumerate(view.chunks) if c.source == source]
        records = view.records(keys)
        return [records[k] for k in keys]

    def document_text(self, source: str) -> str | None:
        return self._view.document_text(source)

    def geometry(self, source: str) -> PageGeometry | None:
        return self._view.geometry(source)

    def stats(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "location": str(self.settings.index_dir),
            "chunks": self.count(),
            "files": len(self._view.documents),
            "model": self.manifest.get("model"),
            "dimension": self.manifest.get("dimension"),
            "index_kind": self._view.vectors_index.kind,
            "built_at": self.manifest.get("built_at"),
        }

    # Writing.
    def add(self, document: Document, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        check_document_chunks(document, chunks, vectors)
        with self._lock:
            self._staged[document.source] = (document, list(chunks), np.asarray(vectors, dtype=np.float32))

    def remove(self, source: str) -> int:
        with self._lock:
            staged = self._staged.get(source)
            self._staged[source] = None
        if staged is not None:
            return len(staged[1])
        return sum(1 for c in self._view.chunks if c.source == source)

    def commit(self) -> None:
        """Build the next view from the current one and the staged changes, save it, swap it in.

        Also rebuilds the vector index when `Settings.faiss_index` asks for another kind than
        the stored one, so `index` applies a changed setting without re-embedding anything.
        """
        with self._lock:
            staged, self._staged = self._staged, {}
            current = self._view
            kind = resolve_index_kind(self.settings, self._size_after(current, staged))
            if not staged and kind == current.vectors_index.kind and "data" in self.manifest:
                return
            started = time.perf_counter()
            view, documents = self._next_view(current, staged, kind)
            manifest = {
                **self.manifest,
                "package_version": _version("cited-health-assistant"),
                "files": {source: doc.sha256 for source, doc in sorted(documents.items())},
                "chunk_count": view.count(),
                "index_kind": kind,
                "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "versions": _library_versions(),
            }
            self.manifest = persist.write_build(self.settings.index_dir, manifest, lambda folder: _write_view(folder, view, documents))
            self._view = view
            logger.info("saved %d chunks of %d files in %.2f s", view.count(), len(documents), time.perf_counter() - started)

    @staticmethod
    def _size_after(view: FaissView, staged: dict[str, Any]) -> int:
        kept = sum(1 for c in view.chunks if c.source not in staged)
        return kept + sum(len(change[1]) for change in staged.values() if change is not None)

    def _next_view(self, current: FaissView, staged: dict[str, Any], kind: str) -> tuple[FaissView, dict[str, Document]]:
        keep = np.array([c.source not in staged for c in current.chunks], dtype=bool)
        added = [change for _, change in sorted(staged.items()) if change is not None]
        chunks = [c for c, k in zip(current.chunks, keep) if k] + [c for _, cs, _ in added for c in cs]
        chunks = [c.model_copy(update={"id": i}) for i, c in enumerate(chunks)]
        new_vectors = [v for _, _, v in added]
        dimension = int(self.manifest["dimension"])
        if kind == "hnsw" and current.vectors_index.kind == "hnsw" and keep.all():
            import faiss  # only appending: extend a copy of the graph rather than build it again

            index = FaissVectors.__new__(FaissVectors)
            index.dimension, index.kind, index._index = dimension, kind, faiss.clone_index(current.vectors_index._index)
        else:
            index = FaissVectors(dimension=dimension, kind=kind)
            index.add(current.vectors_index.all()[keep] if keep.any() else np.zeros((0, dimension), np.float32))
        for vectors in new_vectors:
            index.add(vectors)
        bm25 = LexicalIndex.build([c.embedding_text() for c in chunks] or [""])
        documents = {s: d for s, d in current.documents.items() if s not in staged}
        documents.update((doc.source, doc) for doc, _, _ in added)
        return FaissView(chunks, index, bm25, documents), documents


def _write_view(folder: Path, view: FaissView, documents: dict[str, Document]) -> None:
    persist.write_json(folder / persist.CHUNKS, [c.model_dump() for c in view.chunks])
    persist.write_documents(folder, documents)
    view.vectors_index.save(str(folder))
    (folder / persist.BM25).mkdir()
    view.bm25.save(str(folder / persist.BM25))


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "absent"


def _library_versions() -> dict[str, str]:
    return {name: _version(name) for name in ("faiss-cpu", "bm25s", "sentence-transformers", "torch", "onnxruntime")}
