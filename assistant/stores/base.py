"""The storage contract: a `ChunkStore` stores the chunks of documents and searches them. Nothing more.

Fusion, scope and quoting policy are functions in `assistant.retrieval` and `assistant.scope`
that take a store; keeping them out of the contract keeps each backend to what only it can do.

Two halves:

* `ChunkReader`: searches and lookups over one consistent state of the store (dense and BM25
  candidates, rows, vectors, term statistics). `ChunkStore.view()` hands one out per question,
  so a question never mixes two states while documents are being indexed.
* `ChunkStore`: a reader plus the writes. `add` and `remove` change one document; `commit`
  makes the changes durable and visible. A backend may show a change earlier (Milvus writes
  through), never later.

Scores: `dense` is the inner product of L2-normalised vectors (the cosine); `lexical` is BM25
over the project's tokens (`assistant.lexical.tokenize`), Lucene's variant with the corpus-wide
statistics, so both backends score alike. Ties break on `(chunk.source, chunk.id)`: document order.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import AbstractSet, Any, Hashable, Sequence

import numpy as np

from assistant.lexical import Vocabulary
from assistant.models import Chunk, Document
from assistant.readers import PageGeometry

Key = Hashable


class StoreInvalid(Exception):
    """The store on disk cannot be used as it is (damaged, stale format, other settings): rebuild it.

    The message says why; opening never repairs, so `verify` can report what it found.
    """


class StoreError(RuntimeError):
    """The store cannot be used and rebuilding would not help (foreign, unreachable, in use); the message says what to do."""


@dataclass(frozen=True)
class Record:
    """A stored chunk and the key of the chunk just before it in the same section (or None)."""

    key: Key
    chunk: Chunk
    previous: Key | None


class ChunkReader(ABC):
    """Searches and lookups over one consistent state of a store."""

    @abstractmethod
    def count(self) -> int:
        """How many chunks there are."""

    @abstractmethod
    def dense(self, vector: np.ndarray, k: int, sources: AbstractSet[str] | None = None) -> list[tuple[Key, float]]:
        """The `k` chunks nearest to `vector` by cosine, best first; only chunks of `sources` when given."""

    @abstractmethod
    def lexical(self, query: str, k: int, sources: AbstractSet[str] | None = None) -> list[tuple[Key, float]]:
        """Up to `k` chunks with a positive BM25 score for `query`, best first; only chunks of `sources` when given.

        BM25's statistics stay those of the whole store, so a chunk scores the same restricted or not.
        """

    @abstractmethod
    def lexical_scores(self, query: str, keys: Sequence[Key]) -> np.ndarray:
        """The BM25 score of each of `keys` for `query` (0 where no query word occurs), aligned with `keys`."""

    @abstractmethod
    def vectors(self, keys: Sequence[Key]) -> np.ndarray:
        """The stored vectors of `keys`, shaped (len(keys), dimension)."""

    @abstractmethod
    def records(self, keys: Sequence[Key]) -> dict[Key, Record]:
        """The chunks of `keys`; keys not stored (or whose row fails its integrity check) are left out."""

    @abstractmethod
    def group(self, chunk: Chunk) -> Chunk | None:
        """The whole list or table chunk that `chunk` (a list item or table row) belongs to, if stored."""

    @abstractmethod
    def document_frequencies(self, tokens: Sequence[str]) -> dict[str, int]:
        """How many chunks contain each token (0 for tokens no chunk uses)."""

    @abstractmethod
    def vocabulary(self) -> Vocabulary:
        """The words the chunks use and the acronyms they define (`lexical.build_vocabulary`), for query rewriting."""

    @abstractmethod
    def document_text(self, source: str) -> str | None:
        """The document's text as indexed (its `source_text`), or None when the document is not stored."""

    @abstractmethod
    def geometry(self, source: str) -> PageGeometry | None:
        """Where each character of the document's text sits on its page (PDFs), so quotes are cited
        with page and boxes without the file; None for documents without pages or not stored."""


class ChunkStore(ChunkReader):
    """Chunks of documents with their vectors and term statistics, keyed by a backend-specific key.

    Backends: `assistant.stores.faiss.FaissChunkStore` (files in the index folder, in process)
    and `assistant.stores.milvus.MilvusChunkStore` (a Milvus Lite file, server or cluster).
    `assistant.stores.open_store` picks one by `Settings.backend`; `assistant.indexing` keeps
    either in line with a corpus folder.
    """

    #: The `Settings.backend` value that selects this store.
    backend: str = ""

    def view(self) -> ChunkReader:
        """A reader of the current state that later commits do not change (a backend that has no
        such snapshot returns itself)."""
        return self

    @abstractmethod
    def sources(self) -> dict[str, str]:
        """The documents stored: source path → sha256 of the bytes they were read from."""

    @abstractmethod
    def chunks_of(self, source: str) -> list[Record]:
        """Every stored chunk of `source`, in document order."""

    def intact(self, record: Record) -> bool:
        """Whether a stored row still holds what was indexed (backends that can tell override this)."""
        return True

    @abstractmethod
    def stats(self) -> dict[str, Any]:
        """What is stored: backend, location, chunk and file counts, model, dimension, index kind."""

    @abstractmethod
    def add(self, document: Document, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        """Store `document` as `chunks` with their vectors, replacing any earlier version of it."""

    @abstractmethod
    def remove(self, source: str) -> int:
        """Remove every chunk of `source`; returns how many there were."""

    @abstractmethod
    def commit(self) -> None:
        """Make the changes so far durable and visible to new views."""

    def close(self) -> None:
        """Release what the store holds open (a client, a file lock); the store is unusable after."""


def check_document_chunks(document: Document, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
    """The checks every backend's `add` makes on its arguments."""
    if any(c.source != document.source for c in chunks):
        raise ValueError(f"add takes the chunks of {document.source!r} only")
    if len(chunks) != len(vectors):
        raise ValueError(f"{len(chunks)} chunks but {len(vectors)} vectors")
