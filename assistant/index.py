"""The persisted index: chunks, vectors and BM25 in `index/`, described by `manifest.json`.

Layout::

    index/
      manifest.json        model, dimension, chunk settings, corpus fingerprints, checksums, `data`
      build-<id>/          chunks.json, vectors.faiss, bm25/…  (the folder `data` names)
      .lock                taken while a build runs

A build writes a new `build-<id>` folder under a temporary name, renames it into place, then
replaces `manifest.json` with `os.replace`: a process killed at any point leaves either the
old manifest and its folder or the new ones, never a mix. Readers check the manifest against
the corpus and settings, and every file against its checksum; any difference means a rebuild,
done by one process under an exclusive lock while the others wait and then read its result.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from functools import lru_cache
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from assistant import __version__
from assistant.chunking import chunk_corpus
from assistant.corpus import load_corpus, sha256_hex
from assistant.embedding import Embedder
from assistant.lexical import LexicalIndex
from assistant.models import Chunk, Document
from assistant.settings import Settings
from assistant.stores import VectorStore, load_store, make_store
from assistant.stores.base import ChunkStore, Record

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
CHUNKS = "chunks.json"


class IndexInvalid(Exception):
    """The index on disk cannot be used as it is; the message says why (stale, damaged, foreign)."""


@dataclass(eq=False)
class Index(ChunkStore):
    """A loaded FAISS index: chunks, vectors and BM25 statistics, row-aligned; keys are row ids.

    Adding or deleting a file works in memory, reusing the stored vectors of the other files;
    `save_index` persists the result. `open_index` rebuilds the whole index when the corpus
    changes, which for a corpus that fits one machine takes seconds.
    """

    manifest: dict[str, Any]
    chunks: list[Chunk]
    store: VectorStore
    bm25: LexicalIndex

    backend = "faiss"

    def __post_init__(self) -> None:
        # `lexical` and `lexical_scores` of one question use the same score array.
        self._bm25_scores = lru_cache(maxsize=4)(self.bm25.scores)
        self._groups: dict[tuple[str, int], Chunk] | None = None

    def count(self) -> int:
        return len(self.chunks)

    def dense(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        scores, ids = self.store.search(vector[None, :], k)
        return [(int(i), float(s)) for s, i in zip(scores[0], ids[0]) if i >= 0]

    def lexical(self, query: str, k: int) -> list[tuple[int, float]]:
        from assistant.lexical import top_positive

        scores, ids = top_positive(self._bm25_scores(query), k)
        return [(int(i), float(s)) for s, i in zip(scores, ids)]

    def lexical_scores(self, query: str, keys: Sequence[int]) -> np.ndarray:
        return self._bm25_scores(query)[np.asarray(keys, dtype=np.int64)]

    def vectors(self, keys: Sequence[int]) -> np.ndarray:
        return self.store.vectors(np.asarray(keys, dtype=np.int64))

    def records(self, keys: Sequence[int]) -> dict[int, Record]:
        out = {}
        for key in keys:
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

    def chunks_of(self, source: str) -> list[Record]:
        keys = [c.id for c in self.chunks if c.source == source]
        records = self.records(keys)
        return [records[k] for k in keys]

    def sources(self) -> dict[str, str]:
        return dict(self.manifest.get("files", {}))

    def stats(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "chunks": self.count(),
            "files": len(self.sources()),
            "model": self.manifest.get("model"),
            "dimension": self.manifest.get("dimension"),
            "index_kind": self.manifest.get("index_kind"),
        }

    def add(self, source: str, sha256: str, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        if any(c.source != source for c in chunks):
            raise ValueError(f"add takes the chunks of {source!r} only")
        if len(chunks) != len(vectors):
            raise ValueError(f"{len(chunks)} chunks but {len(vectors)} vectors")
        keep = self._others(source)
        kept = self.store.vectors(np.asarray(keep, dtype=np.int64))
        self._rebuild([self.chunks[i] for i in keep] + list(chunks), np.concatenate([kept, np.asarray(vectors, dtype=np.float32)]))
        self.manifest.setdefault("files", {})[source] = sha256

    def delete_source(self, source: str) -> int:
        keep = self._others(source)
        removed = self.count() - len(keep)
        self.manifest.get("files", {}).pop(source, None)
        if removed:
            self._rebuild([self.chunks[i] for i in keep], self.store.vectors(np.asarray(keep, dtype=np.int64)))
        return removed

    def _others(self, source: str) -> list[int]:
        """Row ids of the chunks of every file but `source`."""
        return [i for i, c in enumerate(self.chunks) if c.source != source]

    def _rebuild(self, chunks: list[Chunk], vectors: np.ndarray) -> None:
        """Re-number `chunks` in corpus order (by source, then document order) and re-index them."""
        order = sorted(range(len(chunks)), key=lambda i: (chunks[i].source, chunks[i].id))
        self.chunks = [chunks[i].model_copy(update={"id": n}) for n, i in enumerate(order)]
        dimension = int(self.manifest.get("dimension") or vectors.shape[1])
        self.store = make_store(self.backend, dimension=dimension, kind=self.manifest.get("index_kind", "flat"))
        if self.chunks:
            self.store.add(np.asarray(vectors, dtype=np.float32)[order])
        self.bm25 = LexicalIndex.build([c.embedding_text() for c in self.chunks] or [""])
        self.manifest["chunk_count"] = len(self.chunks)
        self.__post_init__()


def resolve_index_kind(settings: Settings, n_chunks: int) -> str:
    if settings.faiss_index != "auto":
        return settings.faiss_index
    return "hnsw" if n_chunks >= settings.hnsw_threshold else "flat"


def expected_manifest(settings: Settings, *, model: str, dimension: int, files: dict[str, str]) -> dict[str, Any]:
    """The fields a usable index must match: anything else in the manifest is information."""
    return {
        "format_version": FORMAT_VERSION,
        "package_version": __version__,
        "backend": settings.backend,
        "model": model,
        "dimension": dimension,
        "chunking": {"max_chunk_chars": settings.max_chunk_chars, "max_heading_words": settings.max_heading_words},
        "faiss_index": settings.faiss_index,
        "files": files,
    }


def build_index(docs: list[Document], embedder: Embedder, settings: Settings, *, show_progress: bool = False) -> Index:
    """Chunk, embed and index `docs` in memory."""
    chunks = chunk_corpus(docs, max_chunk_chars=settings.max_chunk_chars, max_heading_words=settings.max_heading_words)
    texts = [c.embedding_text() for c in chunks]
    started = time.perf_counter()
    vectors = embedder.encode(texts, show_progress=show_progress) if texts else np.zeros((0, embedder.dimension), np.float32)
    kind = resolve_index_kind(settings, len(chunks))
    store = make_store(settings.backend, dimension=embedder.dimension, kind=kind)
    if len(chunks):
        store.add(vectors)
    lexical = LexicalIndex.build(texts) if texts else LexicalIndex.build([""])
    manifest = expected_manifest(
        settings, model=embedder.name, dimension=embedder.dimension, files={d.source: d.sha256 for d in docs}
    )
    manifest.update(
        {
            "chunk_count": len(chunks),
            "index_kind": kind,
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "build_seconds": round(time.perf_counter() - started, 3),
            "versions": _library_versions(),
        }
    )
    logger.info("indexed %d chunks from %d files", len(chunks), len(docs))
    return Index(manifest=manifest, chunks=chunks, store=store, bm25=lexical)


def _library_versions() -> dict[str, str]:
    from importlib import metadata

    versions = {}
    for name in ("faiss-cpu", "bm25s", "sentence-transformers", "torch"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


def _checksums(folder: Path) -> dict[str, str]:
    return {
        path.relative_to(folder).as_posix(): sha256_hex(path.read_bytes())
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def _write_json(path: Path, data: Any) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, sort_keys=True, ensure_ascii=False)
        f.flush()
        os.fsync(f.fileno())


def save_index(index: Index, index_dir: Path) -> None:
    """Write `index` into `index_dir` atomically (see the module docstring) and drop older builds."""
    index_dir.mkdir(parents=True, exist_ok=True)
    name = f"build-{time.strftime('%Y%m%d%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:8]}"
    tmp = index_dir / f".tmp-{name}"
    tmp.mkdir()
    _write_json(tmp / CHUNKS, [c.model_dump() for c in index.chunks])
    index.store.save(str(tmp))
    (tmp / "bm25").mkdir()
    index.bm25.save(str(tmp / "bm25"))
    manifest = {**index.manifest, "data": name, "checksums": _checksums(tmp)}
    os.replace(tmp, index_dir / name)
    _write_json(index_dir / f".{MANIFEST}.tmp", manifest)
    os.replace(index_dir / f".{MANIFEST}.tmp", index_dir / MANIFEST)
    index.manifest = manifest
    for old in index_dir.iterdir():
        if old.is_dir() and old.name != name and (old.name.startswith("build-") or old.name.startswith(".tmp-")):
            shutil.rmtree(old, ignore_errors=True)


def read_manifest(index_dir: Path) -> dict[str, Any]:
    path = index_dir / MANIFEST
    if not path.exists():
        raise IndexInvalid(f"no index in {index_dir} yet")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IndexInvalid(f"{path} is damaged ({exc})") from exc
    if not isinstance(manifest, dict):
        raise IndexInvalid(f"{path} is damaged (not a JSON object)")
    return manifest


def check_manifest(manifest: dict[str, Any], expected: dict[str, Any]) -> None:
    """Raise `IndexInvalid` naming the first field that differs from what the corpus and settings need."""
    for key, want in expected.items():
        have = manifest.get(key)
        if have == want:
            continue
        if key == "files":
            added = sorted(set(want) - set(have or {}))
            removed = sorted(set(have or {}) - set(want))
            changed = sorted(k for k in set(want) & set(have or {}) if want[k] != have[k])
            raise IndexInvalid(f"the corpus changed (added {added}, removed {removed}, changed {changed})")
        raise IndexInvalid(f"the index was built with {key}={have!r}, the settings ask for {want!r}")


def load_index(index_dir: Path, expected: dict[str, Any] | None = None) -> Index:
    """Load and verify the index in `index_dir`; raise `IndexInvalid` if it is stale or damaged."""
    manifest = read_manifest(index_dir)
    if expected is not None:
        check_manifest(manifest, expected)
    data = index_dir / str(manifest.get("data", ""))
    checksums = manifest.get("checksums")
    if not manifest.get("data") or not data.is_dir() or not isinstance(checksums, dict):
        raise IndexInvalid(f"the index data folder {data} named by the manifest is missing")
    actual = _checksums(data)
    if actual != checksums:
        bad = sorted(k for k in set(actual) | set(checksums) if actual.get(k) != checksums.get(k))
        raise IndexInvalid(f"index files do not match their checksums: {bad}")
    try:
        chunks = [Chunk(**row) for row in json.loads((data / CHUNKS).read_text(encoding="utf-8"))]
        store = load_store(manifest["backend"], str(data))
        lexical = LexicalIndex.load(str(data / "bm25"))
    except Exception as exc:  # any reader error means the same thing: rebuild
        raise IndexInvalid(f"index files in {data} cannot be read ({type(exc).__name__}: {exc})") from exc
    if not (store.count() == len(chunks) == manifest.get("chunk_count")) or (chunks and lexical.count() != len(chunks)):
        raise IndexInvalid(f"index files in {data} disagree on the number of chunks")
    return Index(manifest=manifest, chunks=chunks, store=store, bm25=lexical)


@contextmanager
def index_lock(index_dir: Path) -> Iterator[None]:
    """An exclusive lock on the index folder, held while a process checks and rebuilds it."""
    index_dir.mkdir(parents=True, exist_ok=True)
    with open(index_dir / ".lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def open_index(
    settings: Settings,
    embedder: Embedder,
    *,
    force: bool = False,
    show_progress: bool = False,
    on_rebuild: Callable[[str], None] | None = None,
) -> Index:
    """The index for the current corpus and settings: loaded if it matches, else rebuilt and saved.

    `on_rebuild` is told why a rebuild happens (the CLI prints it on stderr).
    """
    docs = load_corpus(settings.corpus_dir, max_bytes=settings.max_file_bytes)
    expected = expected_manifest(
        settings, model=embedder.name, dimension=embedder.dimension, files={d.source: d.sha256 for d in docs}
    )
    if not force:
        try:
            return load_index(settings.index_dir, expected)
        except IndexInvalid:
            pass  # check again under the lock: another process may be rebuilding it right now
    with index_lock(settings.index_dir):
        reason = "a rebuild was asked for"
        if not force:
            try:
                return load_index(settings.index_dir, expected)
            except IndexInvalid as exc:
                reason = str(exc)
        message = f"building the index in {settings.index_dir}: {reason}"
        if on_rebuild is not None:
            on_rebuild(message)
        else:
            logger.warning(message)
        index = build_index(docs, embedder, settings, show_progress=show_progress)
        save_index(index, settings.index_dir)
        return index
