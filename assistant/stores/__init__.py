"""Where chunks live: one contract (`ChunkStore`), one factory, one sub-package per backend.

* `faiss` (default): files in the index folder, loaded into the process (`assistant.stores.faiss`).
* `milvus`: a Milvus collection reached with pymilvus — a Milvus Lite file, a standalone server or
  a cluster (`assistant.stores.milvus`). Needs the extra `.[milvus]`; pymilvus is imported only
  when this backend is chosen.

Opening reads; it never indexes. `assistant.indexing` brings a store in line with a corpus folder.
"""

from __future__ import annotations

from typing import Callable

from assistant.settings import Settings
from assistant.stores.base import ChunkReader, ChunkStore, Record, StoreError, StoreInvalid

BACKENDS = ("faiss", "milvus")


def open_store(
    settings: Settings, *, model: str, dimension: int, reset: bool = False, on_reset: Callable[[str], None] | None = None
) -> ChunkStore:
    """The store of `settings.backend` as it is; with `reset`, emptied (FAISS: on its next commit).

    Raises `StoreInvalid` when it exists but cannot be used as it is (damaged, older format,
    other chunking: resetting fixes it) and `StoreError` when resetting would not help (a
    foreign collection, another model's Milvus collection, a server that cannot be reached).
    """
    if settings.backend == "faiss":
        from assistant.stores.faiss import FaissChunkStore

        if reset:
            return FaissChunkStore.create(settings, model=model, dimension=dimension)
        return FaissChunkStore.open(settings, model=model, dimension=dimension)
    if settings.backend == "milvus":
        from assistant.stores.milvus import MilvusChunkStore

        return MilvusChunkStore.open(settings, model=model, dimension=dimension, reset=reset, on_reset=on_reset)
    raise ImportError(f"Unable to resolve store backend: '{settings.backend}' (known: {', '.join(BACKENDS)})")


__all__ = ["BACKENDS", "ChunkReader", "ChunkStore", "Record", "StoreError", "StoreInvalid", "open_store"]
