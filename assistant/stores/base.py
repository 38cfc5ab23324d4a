"""The interface every vector store implements."""

from __future__ import annotations

import numpy as np


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
