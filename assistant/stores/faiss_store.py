"""FAISS inner-product store: exact (`flat`) for small corpora, HNSW for large ones.

Exact search costs O(n·d) a query: at 384 dimensions that is under a millisecond up to a few
tens of thousands of chunks, and it is what small corpora get (recall 1.0). HNSW trades a
little recall for sub-linear search; `Settings.hnsw_threshold` says where the switch happens.
"""

from __future__ import annotations

import os

import numpy as np

from assistant.stores.base import VectorStore

try:
    import faiss
except ImportError as exc:  # pragma: no cover - faiss-cpu is a core dependency
    raise ImportError("FAISS is not installed: install faiss-cpu to enable the faiss backend") from exc

INDEX_FILE = "vectors.faiss"


class FaissStore(VectorStore):
    """Example:
    >>> store = FaissStore(dimension=2)
    >>> store.add(np.array([[1, 0], [0, 1]], dtype=np.float32))
    >>> store.search(np.array([[0, 1]], dtype=np.float32), 1)[1].tolist()
    [[1]]
    """

    files = (INDEX_FILE,)

    def __init__(
        self, *, dimension: int, kind: str = "flat", hnsw_m: int = 32, ef_construction: int = 80, ef_search: int = 128
    ) -> None:
        if kind not in ("flat", "hnsw"):
            raise ValueError(f"FAISS index kind must be 'flat' or 'hnsw', got {kind!r}")
        self.dimension = dimension
        if kind == "flat":
            self._index = faiss.IndexFlatIP(dimension)
        else:
            self._index = faiss.IndexHNSWFlat(dimension, hnsw_m, faiss.METRIC_INNER_PRODUCT)
            self._index.hnsw.efConstruction = ef_construction
            self._index.hnsw.efSearch = ef_search

    def add(self, vectors: np.ndarray) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dimension:
            raise ValueError(f"vectors must have shape (n, {self.dimension}), got {vectors.shape}")
        self._index.add(vectors)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        queries = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.dimension)
        return self._index.search(queries, min(k, max(self.count(), 1)))

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        return np.stack([self._index.reconstruct(int(i)) for i in ids]) if len(ids) else np.zeros((0, self.dimension), np.float32)

    def count(self) -> int:
        return int(self._index.ntotal)

    def save(self, path: str) -> None:
        faiss.write_index(self._index, os.path.join(path, INDEX_FILE))

    @classmethod
    def load(cls, path: str) -> "FaissStore":
        index = faiss.read_index(os.path.join(path, INDEX_FILE))
        store = cls.__new__(cls)
        store.dimension = index.d
        store._index = index
        return store
