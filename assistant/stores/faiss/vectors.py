"""FAISS inner-product vectors: exact (`flat`) for small corpora, HNSW for large ones.

Exact search costs O(n·d) a query: at 384 dimensions that is under a millisecond up to a few
tens of thousands of chunks, and it is what small corpora get (recall 1.0). HNSW trades a
little recall for sub-linear search; `Settings.hnsw_threshold` says where the switch happens.
Row positions are the ids.
"""

from __future__ import annotations

import os

import numpy as np

try:
    import faiss
except ImportError as exc:  # pragma: no cover - faiss-cpu is a core dependency
    raise ImportError("FAISS is not installed: install faiss-cpu to enable the faiss backend") from exc

INDEX_FILE = "vectors.faiss"
KINDS = ("flat", "hnsw")


class FaissVectors:
    """Rows of L2-normalised vectors searched by inner product.

    Example:
        >>> vectors = FaissVectors(dimension=2)
        >>> vectors.add(np.array([[1, 0], [0, 1]], dtype=np.float32))
        >>> vectors.search(np.array([[0, 1]], dtype=np.float32), 1)[1].tolist()
        [[1]]
    """

    def __init__(
        self, *, dimension: int, kind: str = "flat", hnsw_m: int = 32, ef_construction: int = 80, ef_search: int = 128
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"FAISS index kind must be 'flat' or 'hnsw', got {kind!r}")
        self.dimension = dimension
        self.kind = kind
        if kind == "flat":
            self._index = faiss.IndexFlatIP(dimension)
        else:
            self._index = faiss.IndexHNSWFlat(dimension, hnsw_m, faiss.METRIC_INNER_PRODUCT)
            self._index.hnsw.efConstruction = ef_construction
            self._index.hnsw.efSearch = ef_search

    def add(self, vectors: np.ndarray) -> None:
        """Append rows; the first gets id `count()` as it was before the call."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dimension:
            raise ValueError(f"vectors must have shape (n, {self.dimension}), got {vectors.shape}")
        if len(vectors):
            self._index.add(vectors)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids), each shaped (len(queries), k'), best first; missing slots have id -1."""
        queries = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.dimension)
        return self._index.search(queries, min(k, max(self.count(), 1)))

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        """The stored rows of `ids`, shaped (len(ids), dimension)."""
        if not len(ids):
            return np.zeros((0, self.dimension), np.float32)
        return np.stack([self._index.reconstruct(int(i)) for i in ids])

    def all(self) -> np.ndarray:
        """Every stored row, in id order (a copy)."""
        if not self.count():
            return np.zeros((0, self.dimension), np.float32)
        return self._index.reconstruct_n(0, self.count())

    def count(self) -> int:
        return int(self._index.ntotal)

    def save(self, folder: str) -> None:
        faiss.write_index(self._index, os.path.join(folder, INDEX_FILE))

    @classmethod
    def load(cls, folder: str) -> "FaissVectors":
        index = faiss.read_index(os.path.join(folder, INDEX_FILE))
        vectors = cls.__new__(cls)
        vectors.dimension = index.d
        vectors.kind = "hnsw" if isinstance(index, faiss.IndexHNSW) else "flat"
        vectors._index = index
        return vectors
