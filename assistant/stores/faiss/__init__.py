"""The FAISS backend: the index folder's files, loaded into the process (`Settings.backend = "faiss"`)."""

from assistant.stores.faiss.store import FaissChunkStore, FaissView
from assistant.stores.faiss.vectors import FaissVectors

__all__ = ["FaissChunkStore", "FaissVectors", "FaissView"]
