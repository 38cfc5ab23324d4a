"""The interfaces the stores implement.

* `VectorStore`: rows of vectors searched by inner product (FAISS; the benchmarks use it bare).
* `ChunkStore`: what the answer path needs from an index, whichever engine holds it: dense,
  lexical and hybrid search over chunks, the chunks themselves, their vectors, term document
  frequencies for the scope policy, and adding or deleting the chunks of one file. The FAISS
  index in `index/` (`assistant.index.Index`) and a Milvus collection
  (`assistant.stores.milvus_store.MilvusChunkStore`) both implement it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Hashable, Sequence

import numpy as np

from assistant.lexical import coverage, named_terms, tokenize
from assistant.models import Chunk

if TYPE_CHECKING:
    from assistant.retrieval import Hit


class VectorStore:
    """Rows of L2-normalised vectors, searched by inner product; row positions are chunk ids.

    Subclasses implement every method; the base only states the contract.
    """

    #: The file names `save` writes, so the index manifest can checksum them.
    files: tuple[str, ...] = ()

    def add(self, vectors: np.ndarray) -> None:
        """Append rows; the first added row gets id `count()` before the call."""
        raise NotImplementedError

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids), each shaped (len(queries), k), best first; missing slots have id -1."""
        raise NotImplementedError

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        """The stored rows for `ids`, shaped (len(ids), dimension)."""
        raise NotImplementedError

    def count(self) -> int:
        raise NotImplementedError

    def save(self, path: str) -> None:
        """Write the store's files into the folder `path` (which exists)."""
        raise NotImplementedError

    @classmethod
    def load(cls, path: str) -> "VectorStore":
        raise NotImplementedError


Key = Hashable


@dataclass(frozen=True)
class Record:
    """A stored chunk and the key of the chunk just before it in the same section (or None)."""

    key: Key
    chunk: Chunk
    previous: Key | None


class ChunkStore(ABC):
    """Chunks with their vectors and BM25 statistics, keyed by a backend-specific key.

    Scores: `dense` is the inner product of L2-normalised vectors (the cosine); `lexical` is
    BM25 on the project's normalised tokens (`assistant.lexical.tokenize`), on a scale the
    backend chooses, since fusion normalises it by its maximum. Ranking ties break on
    `(chunk.source, chunk.id)`: document order.
    """

    #: The `Settings.backend` value that selects this store.
    backend: str = ""

    # Reading.
    @abstractmethod
    def count(self) -> int:
        """How many chunks the store holds."""

    @abstractmethod
    def dense(self, vector: np.ndarray, k: int) -> list[tuple[Key, float]]:
        """The `k` chunks nearest to `vector`, best first."""

    @abstractmethod
    def lexical(self, query: str, k: int) -> list[tuple[Key, float]]:
        """The `k` best BM25 matches of `query` with a positive score, best first."""

    @abstractmethod
    def lexical_scores(self, query: str, keys: Sequence[Key]) -> np.ndarray:
        """BM25 score of each of `keys` for `query` (0 where no query word occurs), aligned with `keys`."""

    @abstractmethod
    def vectors(self, keys: Sequence[Key]) -> np.ndarray:
        """The stored vectors of `keys`, shaped (len(keys), dimension)."""

    @abstractmethod
    def records(self, keys: Sequence[Key]) -> dict[Key, Record]:
        """The chunks of `keys` (missing keys are left out)."""

    @abstractmethod
    def group(self, chunk: Chunk) -> Chunk | None:
        """The whole list or table chunk that `chunk` (a list item or table row) belongs to, if stored."""

    @abstractmethod
    def document_frequencies(self, tokens: Sequence[str]) -> dict[str, int]:
        """How many chunks contain each normalised token (0 for tokens the corpus never uses)."""

    @abstractmethod
    def chunks_of(self, source: str) -> list[Record]:
        """Every stored chunk of `source`, in document order."""

    def intact(self, record: Record) -> bool:
        """Whether a stored row still holds what was indexed (backends that can tell override this)."""
        return True

    @abstractmethod
    def sources(self) -> dict[str, str]:
        """The indexed files: source path → sha256 of the bytes they were indexed from."""

    @abstractmethod
    def stats(self) -> dict[str, Any]:
        """What is in the store: backend, chunk and file counts, model, dimension, index kind."""

    # Writing.
    @abstractmethod
    def add(self, source: str, sha256: str, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        """Add the file `source` (sha256 of its bytes) as `chunks` with their vectors, replacing what it had."""

    @abstractmethod
    def delete_source(self, source: str) -> int:
        """Remove every chunk of `source`; returns how many were removed."""

    # Built on the above; backends may override with something faster.
    def hybrid(self, query: str, vector: np.ndarray, k: int, **fusion: Any) -> list["Hit"]:
        """Dense and BM25 candidates fused; `fusion` takes the options of `assistant.retrieval.hybrid_search`."""
        from assistant.retrieval import hybrid_search

        return hybrid_search(self, query, vector, k, **fusion)

    def coverage(self, query: str) -> float:
        """IDF-weighted share of the query's content words that the corpus uses (`lexical.coverage`)."""
        tokens = tokenize(query)
        return coverage(tokens, self.document_frequencies(tokens), self.count())

    def names_known(self, query: str) -> bool:
        """True when the query names something (`lexical.named_terms`) and the corpus uses every such name."""
        names = named_terms(query)
        if not names:
            return False
        df = self.document_frequencies(names)
        return all(df.get(name, 0) > 0 for name in names)
