"""The Milvus backend (`Settings.backend = "milvus"`, extra `.[milvus]`): a Milvus Lite file, a server or a cluster.

`client` reaches Milvus, `schema` describes the collections, `rows` encodes chunks as rows and
`store` is the `ChunkStore`. pymilvus is imported only when this backend is chosen.
"""

from assistant.stores.milvus.client import MilvusStoreError, resolve_uri  # first: names the extra if pymilvus is missing
from assistant.stores.milvus.rows import chunk_key
from assistant.stores.milvus.store import MilvusChunkStore

__all__ = ["MilvusChunkStore", "MilvusStoreError", "chunk_key", "resolve_uri"]
