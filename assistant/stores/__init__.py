"""Where chunks and vectors live: one interface (`ChunkStore`), two backends.

* `faiss` (default): the index in `index/`, in process; `assistant.index`.
* `milvus`: a Milvus collection reached with pymilvus (a Milvus Lite file, a standalone server
  or a cluster); `assistant.stores.milvus_store`. Needs the optional extra `.[milvus]`, and
  pymilvus is imported only when this backend is chosen.

`make_store`/`load_store` build or read the bare FAISS `VectorStore` that the FAISS index uses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from assistant.stores.base import ChunkStore, Record, VectorStore

if TYPE_CHECKING:
    from assistant.embedding import Embedder
    from assistant.settings import Settings

BACKENDS = ("faiss", "milvus")


def make_store(backend: str, *, dimension: int, kind: str = "flat") -> VectorStore:
    """A new, empty vector store of the named backend."""
    if backend == "faiss":
        from assistant.stores.faiss_store import FaissStore

        return FaissStore(dimension=dimension, kind=kind)
    raise ImportError(f"Unable to resolve vector store backend: '{backend}' (known: faiss)")


def load_store(backend: str, path: str) -> VectorStore:
    """A vector store saved by `VectorStore.save` under `path`."""
    if backend == "faiss":
        from assistant.stores.faiss_store import FaissStore

        return FaissStore.load(path)
    raise ImportError(f"Unable to resolve vector store backend: '{backend}' (known: faiss)")


def open_store(
    settings: "Settings",
    embedder: "Embedder",
    *,
    force: bool = False,
    show_progress: bool = False,
    on_rebuild: Callable[[str], None] | None = None,
) -> ChunkStore:
    """The chunk store of `settings.backend`, brought up to date with the corpus first."""
    if settings.backend == "faiss":
        from assistant.index import open_index

        return open_index(settings, embedder, force=force, show_progress=show_progress, on_rebuild=on_rebuild)
    if settings.backend == "milvus":
        from assistant.stores.milvus_store import open_milvus

        return open_milvus(settings, embedder, force=force, show_progress=show_progress, on_rebuild=on_rebuild)
    raise ValueError(f"unknown backend {settings.backend!r} (known: {', '.join(BACKENDS)})")


__all__ = ["BACKENDS", "ChunkStore", "Record", "VectorStore", "load_store", "make_store", "open_store"]
