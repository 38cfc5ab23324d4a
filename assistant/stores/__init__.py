"""Vector stores behind one small interface; `make_store` picks one by name.

FAISS (in-process, files in `index/`) is the default. A distributed engine plugs in as another
`VectorStore` without the retrieval code changing.
"""

from __future__ import annotations

from assistant.stores.base import VectorStore


def make_store(backend: str, *, dimension: int, kind: str = "flat") -> VectorStore:
    """A new, empty store of the named backend."""
    if backend == "faiss":
        from assistant.stores.faiss_store import FaissStore

        return FaissStore(dimension=dimension, kind=kind)
    raise ImportError(f"Unable to resolve vector store backend: '{backend}' (known: faiss)")


def load_store(backend: str, path: str) -> VectorStore:
    """A store saved by `VectorStore.save` under `path`."""
    if backend == "faiss":
        from assistant.stores.faiss_store import FaissStore

        return FaissStore.load(path)
    raise ImportError(f"Unable to resolve vector store backend: '{backend}' (known: faiss)")


__all__ = ["VectorStore", "load_store", "make_store"]
