"""The two collections of a Milvus store, their manifest, and how a damaged or foreign one is told apart.

* `<name>`: one row per chunk. Primary key `id` = sha256 of (source, start, end, sha256 of the
  text), so a chunk keeps its key across re-indexing and a row can be checked against its
  content. Fields: the chunk (source, seq = position in its document, section, kind, start,
  end, block, text, context), `prev` (key of the chunk before it in the same section),
  `file_sha` (the file version it came from), `vector` (dense, inner product, HNSW),
  `tokens` (the project's normalised tokens, `assistant.lexical.tokenize`, space-separated)
  and `sparse`, filled by Milvus's BM25 function from `tokens` (SPARSE_INVERTED_INDEX). BM25
  therefore sees the very tokens bm25s sees in the FAISS backend.
* `<name>_meta`: the corpus statistics, keyed rows of three kinds. `file:` one per indexed
  file (source, sha256, chunk and token counts), written only after all of the file's chunks
  are in: it is what makes indexing resumable. `terms:` the file's term counts (how many of
  its chunks contain each token), in parts under Milvus's 64 KB JSON limit. `df:` one per
  token, the number of chunks containing it, for exact BM25 and the scope policy. `text:` the
  document's text (its `source_text`) in parts, so quotes can be shown in their passage and
  merged into passages where the corpus folder is not at hand. `geometry:` a PDF's page geometry
  (`PageGeometry.to_bytes`, base64) in parts, so quotes are cited with page and boxes without
  the file.

What the FAISS manifest records (model, dimension, chunking, tokenizer, format) is stored as JSON
in the chunk collection's property `assistant.manifest`, fixed when the collection is created.
"""

from __future__ import annotations

import json
from typing import Any

from assistant.chunking import chunking_manifest
from assistant.lexical import BM25_B, BM25_K1
from assistant.settings import Settings

from pymilvus import DataType, Function, FunctionType, MilvusClient

FORMAT_VERSION = 5  # 4: document texts kept in `text:` rows; 5: PDF page geometry in `geometry:` rows
TOKENIZER = "assistant.lexical.tokenize/snowball-english/v1"
MAX_VARCHAR = 65_535  # bytes: Milvus's longest VARCHAR
CHUNK_FIELDS = ["id", "source", "seq", "section", "kind", "start", "end", "block", "text", "context", "prev"]
ROW_FIELDS = [*CHUNK_FIELDS, "tokens", "vector"]  # what answering a question reads of a row
META_SUFFIX = "_meta"
MANIFEST_PROPERTY = "assistant.manifest"
#: Manifest fields that name what the vectors are: a collection made with others is refused, never replaced.
IDENTITY = ("model", "dimension")


def collection_manifest(settings: Settings, *, model: str, dimension: int) -> dict[str, Any]:
    """What a collection must have been made with to be used with these settings and this model."""
    return {
        "assistant_format": FORMAT_VERSION,
        "model": model,
        "dimension": dimension,
        "chunking": chunking_manifest(max_chunk_chars=settings.max_chunk_chars, max_heading_words=settings.max_heading_words),
        "tokenizer": TOKENIZER,
    }


def read_manifest(client: MilvusClient, name: str) -> dict[str, Any] | None:
    """The manifest of collection `name`, or None when it was not made by this assistant."""
    try:
        manifest = json.loads(client.describe_collection(name).get("properties", {}).get(MANIFEST_PROPERTY) or "")
    except ValueError:
        return None
    return manifest if isinstance(manifest, dict) and "assistant_format" in manifest else None


def damage(client: MilvusClient, name: str, dimension: int) -> str | None:
    """What is missing from a collection of ours, or None when it is whole."""
    if not client.has_collection(name + META_SUFFIX):
        return f"its statistics collection {name + META_SUFFIX!r} is missing"
    fields = {f["name"]: f for f in client.describe_collection(name)["fields"]}
    missing = sorted(set(CHUNK_FIELDS + ["vector", "sparse", "tokens", "file_sha"]) - set(fields))
    if missing:
        return f"fields {missing} are missing"
    if fields["vector"].get("params", {}).get("dim") not in (dimension, str(dimension)):
        return "its vector field has another dimension"
    return None


def drop(client: MilvusClient, name: str) -> None:
    for collection in (name, name + META_SUFFIX):
        if client.has_collection(collection):
            client.drop_collection(collection)


def create(client: MilvusClient, name: str, manifest: dict[str, Any], dimension: int, settings: Settings) -> None:
    schema = client.create_schema(auto_id=False, description="chunks indexed by the assistant")
    schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=64)
    schema.add_field("source", DataType.VARCHAR, max_length=4096)
    schema.add_field("seq", DataType.INT64)
    schema.add_field("section", DataType.VARCHAR, max_length=MAX_VARCHAR)
    schema.add_field("kind", DataType.VARCHAR, max_length=16)
    schema.add_field("start", DataType.INT64)
    schema.add_field("end", DataType.INT64)
    schema.add_field("block", DataType.INT64)
    schema.add_field("text", DataType.VARCHAR, max_length=MAX_VARCHAR)
    schema.add_field("context", DataType.VARCHAR, max_length=MAX_VARCHAR)
    schema.add_field("prev", DataType.VARCHAR, max_length=64)
    schema.add_field("file_sha", DataType.VARCHAR, max_length=64)
    schema.add_field(
        "tokens", DataType.VARCHAR, max_length=MAX_VARCHAR, enable_analyzer=True,
        analyzer_params={"tokenizer": "standard"},  # the text is already normalised, space-separated tokens
    )
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dimension)
    schema.add_function(Function(
        name="bm25", function_type=FunctionType.BM25, input_field_names=["tokens"], output_field_names=["sparse"],
        params={"bm25_k1": BM25_K1, "bm25_b": BM25_B},
    ))
    index = client.prepare_index_params()
    index.add_index(
        "vector", index_type=settings.milvus_index_type, metric_type="IP",
        params={"M": settings.milvus_hnsw_m, "efConstruction": settings.milvus_ef_construction}
        if settings.milvus_index_type == "HNSW" else {},
    )
    index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
    index.add_index("source", index_type="INVERTED")
    client.create_collection(name, schema=schema, index_params=index, consistency_level="Strong",
                             properties={MANIFEST_PROPERTY: json.dumps(manifest, sort_keys=True)})

    meta = client.create_schema(auto_id=False, description="files and term statistics of " + name)
    meta.add_field("key", DataType.VARCHAR, is_primary=True, max_length=256)
    meta.add_field("kind", DataType.VARCHAR, max_length=8)  # file, terms, df, text or geometry
    meta.add_field("source", DataType.VARCHAR, max_length=4096)
    meta.add_field("sha256", DataType.VARCHAR, max_length=64)  # empty: the file was removed
    meta.add_field("chunks", DataType.INT64)
    meta.add_field("tokens", DataType.INT64)  # with `chunks`, gives BM25's mean chunk length
    meta.add_field("df", DataType.INT64)
    meta.add_field("data", DataType.JSON)  # terms: {token: chunks containing it}; text, geometry: {"t": part}; file: {"parts": n, "geometry": m}
    meta.add_field("indexed_at", DataType.VARCHAR, max_length=32)
    meta.add_field("dummy", DataType.FLOAT_VECTOR, dim=2)  # Milvus needs one vector field
    meta_index = client.prepare_index_params()
    meta_index.add_index("dummy", index_type="FLAT", metric_type="L2")
    meta_index.add_index("kind", index_type="INVERTED")
    client.create_collection(name + META_SUFFIX, schema=meta, index_params=meta_index, consistency_level="Strong")
