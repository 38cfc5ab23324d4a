"""The chunk store on Milvus: a Milvus Lite file, a standalone server or a cluster, one client.

Two collections, named from `Settings.milvus_collection`:

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
  token, the number of chunks containing it, for exact BM25 and the scope policy. A file's
  record, its term counts and the document frequencies they change are written in one
  upsert request, so they move together.

What the FAISS manifest records (model, dimension, chunking settings, tokenizer, format) is
stored as JSON in the chunk collection's property `assistant.manifest`, fixed when the collection is created;
a collection made with other values is refused, never mixed into.

Indexing (`sync`) streams: files are read one at a time, chunks are embedded and upserted in
batches of `Settings.milvus_batch_size`, and a file's record is written once its chunks are.
A re-run after a kill skips the files recorded and, inside a file, the chunks already stored
for its current version, so it embeds only what is missing.

Document frequencies are kept rather than counted at question time: Milvus Lite evaluates
`TEXT_MATCH` by tokenising every row in Python, which took seconds per word at 100k chunks.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from assistant.chunking import chunk_document
from assistant.corpus import list_corpus_files, read_document, sha256_hex
from assistant.embedding import Embedder
from assistant.lexical import BM25_B, BM25_K1, bm25_scores, tokenize
from assistant.models import Chunk, Document
from assistant.settings import Settings
from assistant.stores.base import ChunkStore, Record

try:
    from pymilvus import DataType, Function, FunctionType, MilvusClient, MilvusException
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("the milvus backend needs pymilvus and milvus-lite: pip install -e '.[milvus]'") from exc

logger = logging.getLogger(__name__)

FORMAT_VERSION = 3
TOKENIZER = "assistant.lexical.tokenize/snowball-english/v1"
MAX_VARCHAR = 65_535  # bytes: Milvus's longest VARCHAR
CHUNK_FIELDS = ["id", "source", "seq", "section", "kind", "start", "end", "block", "text", "context", "prev"]
ROW_FIELDS = [*CHUNK_FIELDS, "tokens", "vector"]  # what answering a question reads of a row
_META_SUFFIX = "_meta"
TERMS_PART_BYTES = 60_000  # JSON per `terms:` row, under Milvus's 65,536-byte limit
MANIFEST_PROPERTY = "assistant.manifest"
QUERY_ITERATOR_LOGGER = "pymilvus.client.iterator.query_iterator"
LITE_SERVER_LOGGER = "milvus_lite.server_manager"


class MilvusStoreError(RuntimeError):
    """The collection cannot be used as it is (foreign, another model, unreachable); the message says what to do."""


def chunk_key(chunk: Chunk) -> str:
    """The stable key of a chunk: sha256 of its source, offsets and text hash."""
    return sha256_hex(f"{chunk.source}\x00{chunk.start}\x00{chunk.end}\x00{sha256_hex(chunk.text)}")


def collection_manifest(settings: Settings, *, model: str, dimension: int) -> dict[str, Any]:
    """What a collection must have been made with to be used with these settings and this model."""
    return {
        "assistant_format": FORMAT_VERSION,
        "model": model,
        "dimension": dimension,
        "chunking": {"max_chunk_chars": settings.max_chunk_chars, "max_heading_words": settings.max_heading_words},
        "tokenizer": TOKENIZER,
    }


def resolve_uri(settings: Settings) -> str:
    """`Settings.milvus_uri`, or a Milvus Lite file in the index folder when it is not set."""
    uri = settings.milvus_uri or str(settings.index_dir / "milvus.db")
    if "://" not in uri:
        Path(uri).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
        uri = str(Path(uri).expanduser().resolve())
    return uri


def _quiet_lite() -> None:
    """Milvus Lite lacks the AllocTimestamp call that pymilvus's query iterator tries first; the
    iterator falls back to a client-side timestamp, but the in-process gRPC server logs a
    traceback and pymilvus a warning each time. Both are noise for this known fallback."""
    logging.getLogger("grpc._server").setLevel(logging.CRITICAL)
    logging.getLogger(QUERY_ITERATOR_LOGGER).setLevel(logging.ERROR)


class _Collect(logging.Handler):
    """Keeps the exceptions a library logs instead of letting it print their tracebacks."""

    def __init__(self) -> None:
        super().__init__()
        self.errors: list[BaseException] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[1] is not None:
            self.errors.append(record.exc_info[1])


def connect(settings: Settings) -> MilvusClient:
    uri = resolve_uri(settings)
    token = settings.milvus_token.get_secret_value() if settings.milvus_token else ""
    if "://" in uri:
        try:
            return MilvusClient(uri=uri, token=token)
        except MilvusException as exc:
            raise MilvusStoreError(f"cannot reach Milvus at {uri}: {exc.message}") from exc
    _quiet_lite()
    # Milvus Lite logs why it could not start (with a traceback) and pymilvus raises a generic
    # error: keep the reason for the message instead.
    lite_logger = logging.getLogger(LITE_SERVER_LOGGER)
    collect, propagate = _Collect(), lite_logger.propagate
    lite_logger.addHandler(collect)
    lite_logger.propagate = False
    try:
        return MilvusClient(uri=uri, token=token)
    except MilvusException as exc:
        reason = str(collect.errors[-1]) if collect.errors else exc.message
        raise MilvusStoreError(
            f"cannot open the Milvus Lite file {uri}: {reason}. Milvus Lite serves one process at a time; "
            "stop the other process using it, or run a Milvus server (docs/scale-out.md)"
        ) from exc
    finally:
        lite_logger.removeHandler(collect)
        lite_logger.propagate = propagate


def _filter_literal(value: str | list[str]) -> str:
    """A Milvus filter literal for a string or a list of strings: JSON, which Milvus's parser reads.

    (Milvus Lite does not take `filter_params` templates, so values are written into the
    expression; JSON escaping keeps quotes and backslashes in paths from breaking out.)
    """
    return json.dumps(value, ensure_ascii=False)


def _eq(field: str, value: str) -> str:
    return f"{field} == {_filter_literal(value)}"


def _fit(text: str, limit: int = MAX_VARCHAR) -> str:
    """`text` cut to at most `limit` UTF-8 bytes (for fields that are never quoted)."""
    data = text.encode("utf-8")
    return text if len(data) <= limit else data[:limit].decode("utf-8", errors="ignore")


class MilvusChunkStore(ChunkStore):
    """A `ChunkStore` on one Milvus collection (see the module docstring); keys are chunk keys (hex).

    Example:
        >>> settings = Settings(backend="milvus", milvus_uri="/tmp/demo.db")  # doctest: +SKIP
        >>> store = MilvusChunkStore.open(settings, model=embedder.name, dimension=embedder.dimension)  # doctest: +SKIP
        >>> store.sync(settings.corpus_dir, embedder, max_file_bytes=settings.max_file_bytes)  # doctest: +SKIP
        {'files': 1, 'removed': 0, 'indexed': 1, 'embedded': 45, 'reused': 0}
    """

    backend = "milvus"

    def __init__(self, client: MilvusClient, name: str, manifest: dict[str, Any], settings: Settings) -> None:
        self.client = client
        self.name = name
        self.meta_name = name + _META_SUFFIX
        self.manifest = manifest
        self.settings = settings
        self._df_cache: dict[str, int] = {}
        self._count: int | None = None
        self._stats: tuple[int, float] | None = None
        self._cache = _RowCache(4096)
        self._lock = threading.Lock()

    # Opening and creating.
    @classmethod
    def open(cls, settings: Settings, *, model: str, dimension: int, force: bool = False,
             on_rebuild: Callable[[str], None] | None = None) -> "MilvusChunkStore":
        """The collection for these settings: created if absent, refused if made for something else.

        `force` drops the collection first (a full re-index). A collection with this
        assistant's manifest but a missing part (its files collection, a field) is damaged:
        it is dropped and rebuilt, and `on_rebuild` is told why.
        """
        client = connect(settings)
        name = settings.milvus_collection
        want = collection_manifest(settings, model=model, dimension=dimension)
        exists = client.has_collection(name)
        if exists and force:
            _notify(on_rebuild, f"dropping Milvus collection {name!r}: a rebuild was asked for")
            cls._drop(client, name)
            exists = False
        if exists:
            have = cls._read_manifest(client, name)
            if have is None:
                raise MilvusStoreError(
                    f"Milvus collection {name!r} was not made by this assistant; refusing to write into it. "
                    "Set ASSISTANT_MILVUS_COLLECTION to another name"
                )
            diff = {k: (have.get(k), v) for k, v in want.items() if have.get(k) != v}
            if diff:
                what = ", ".join(f"{k}={a!r} (settings ask for {b!r})" for k, (a, b) in diff.items())
                raise MilvusStoreError(
                    f"Milvus collection {name!r} was built with {what}; refusing to mix them. "
                    "Set ASSISTANT_MILVUS_COLLECTION to another name, or rebuild it with "
                    "`python -m assistant index --force`"
                )
            problem = cls._damage(client, name, dimension)
            if problem:
                _notify(on_rebuild, f"rebuilding Milvus collection {name!r}: {problem}")
                cls._drop(client, name)
                exists = False
        if not exists:
            cls._create(client, name, want, dimension, settings)
        client.load_collection(name)
        client.load_collection(name + _META_SUFFIX)
        return cls(client, name, want, settings)

    @staticmethod
    def _read_manifest(client: MilvusClient, name: str) -> dict[str, Any] | None:
        try:
            manifest = json.loads(client.describe_collection(name).get("properties", {}).get(MANIFEST_PROPERTY) or "")
        except ValueError:
            return None
        return manifest if isinstance(manifest, dict) and "assistant_format" in manifest else None

    @staticmethod
    def _damage(client: MilvusClient, name: str, dimension: int) -> str | None:
        """What is missing from a collection of ours, or None when it is whole."""
        if not client.has_collection(name + _META_SUFFIX):
            return f"its statistics collection {name + _META_SUFFIX!r} is missing"
        fields = {f["name"]: f for f in client.describe_collection(name)["fields"]}
        missing = sorted(set(CHUNK_FIELDS + ["vector", "sparse", "tokens", "file_sha"]) - set(fields))
        if missing:
            return f"fields {missing} are missing"
        if fields["vector"].get("params", {}).get("dim") not in (dimension, str(dimension)):
            return "its vector field has another dimension"
        return None

    @staticmethod
    def _drop(client: MilvusClient, name: str) -> None:
        for collection in (name, name + _META_SUFFIX):
            if client.has_collection(collection):
                client.drop_collection(collection)

    @staticmethod
    def _create(client: MilvusClient, name: str, manifest: dict[str, Any], dimension: int, settings: Settings) -> None:
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
        meta.add_field("kind", DataType.VARCHAR, max_length=8)  # file, terms or df
        meta.add_field("source", DataType.VARCHAR, max_length=4096)
        meta.add_field("sha256", DataType.VARCHAR, max_length=64)  # empty: the file was removed
        meta.add_field("chunks", DataType.INT64)
        meta.add_field("tokens", DataType.INT64)  # with `chunks`, gives BM25's mean chunk length
        meta.add_field("df", DataType.INT64)
        meta.add_field("data", DataType.JSON)  # terms: {token: chunks of the file containing it}
        meta.add_field("indexed_at", DataType.VARCHAR, max_length=32)
        meta.add_field("dummy", DataType.FLOAT_VECTOR, dim=2)  # Milvus needs one vector field
        meta_index = client.prepare_index_params()
        meta_index.add_index("dummy", index_type="FLAT", metric_type="L2")
        meta_index.add_index("kind", index_type="INVERTED")
        client.create_collection(name + _META_SUFFIX, schema=meta, index_params=meta_index, consistency_level="Strong")

    # Reading.
    def count(self) -> int:
        if self._count is None:
            self._count = self._count_where("")
        return self._count

    def _count_where(self, expr: str) -> int:
        rows = self.client.query(self.name, filter=expr, output_fields=["count(*)"])
        return int(rows[0]["count(*)"]) if rows else 0

    def dense(self, vector: np.ndarray, k: int) -> list[tuple[str, float]]:
        result = self.client.search(
            self.name, data=[np.asarray(vector, dtype=np.float32).tolist()], anns_field="vector", limit=k,
            output_fields=ROW_FIELDS, search_params={"metric_type": "IP", "params": {"ef": max(self.settings.milvus_ef_search, k)}},
        )
        self._cache.put(_hit_rows(result[0]))
        return [(hit["id"], float(hit["distance"])) for hit in result[0]]

    def lexical(self, query: str, k: int) -> list[tuple[str, float]]:
        """Milvus's BM25 index proposes the candidates; their scores are then computed exactly.

        Milvus scores BM25 on its own scale, and a filtered search (`id in [...]`) takes its
        statistics from the filtered rows only; so every BM25 score the fusion sees comes
        from `lexical_scores`, which uses corpus-wide statistics and equals bm25s's.
        """
        tokens = tokenize(query)
        if not tokens or k <= 0:
            return []
        result = self.client.search(
            self.name, data=[" ".join(tokens)], anns_field="sparse", limit=k, output_fields=ROW_FIELDS,
            search_params={"metric_type": "BM25"},
        )
        self._cache.put(_hit_rows(result[0]))
        keys = [hit["id"] for hit in result[0]]
        scored = sorted(zip(keys, self.lexical_scores(query, keys).tolist()), key=lambda item: -item[1])
        return [(key, score) for key, score in scored if score > 0]

    def lexical_scores(self, query: str, keys: Sequence[str]) -> np.ndarray:
        keys = list(keys)
        tokens = tokenize(query)
        if not keys or not tokens:
            return np.zeros(len(keys), dtype=np.float32)
        rows = self._rows(keys)
        n, avgdl = self._corpus_stats()
        docs = [rows[key]["tokens"].split() if key in rows else [] for key in keys]
        return bm25_scores(tokens, docs, self.document_frequencies(sorted(set(tokens))), n, avgdl)

    def _corpus_stats(self) -> tuple[int, float]:
        """(chunks, mean tokens per chunk), from the file records; cached until the store changes."""
        if self._stats is None:
            chunks = tokens = 0
            for row in self._file_rows(["chunks", "tokens"]):
                chunks += int(row["chunks"])
                tokens += int(row["tokens"])
            self._stats = (self.count(), tokens / chunks if chunks else 0.0)
        return self._stats

    def vectors(self, keys: Sequence[str]) -> np.ndarray:
        keys = list(keys)
        rows = self._rows(keys)
        dimension = int(self.manifest["dimension"])
        return np.array([rows[k]["vector"] if k in rows else [0.0] * dimension for k in keys],
                        dtype=np.float32).reshape(len(keys), dimension)

    def _rows(self, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Whole rows for `keys`: from the searches of this question when they returned them, else one query."""
        found = self._cache.get(keys)
        missing = [key for key in keys if key not in found]
        if missing:
            rows = self.client.query(self.name, ids=missing, output_fields=ROW_FIELDS)
            self._cache.put(rows)
            found.update((row["id"], row) for row in rows)
        return found

    def records(self, keys: Sequence[str]) -> dict[str, Record]:
        keys = list(keys)
        if not keys:
            return {}
        out = {}
        for row in self._rows(keys).values():
            record = _record(row)
            if not self.intact(record):  # the row's content no longer matches its key: never quote it
                logger.warning("Milvus row %s of %s does not match its key; skipped", record.key, record.chunk.source)
                continue
            out[record.key] = record
        return out

    def intact(self, record: Record) -> bool:
        return chunk_key(record.chunk) == record.key

    def chunks_of(self, source: str) -> list[Record]:
        records = [_record(row) for row in self._scan(self.name, _eq("source", source), CHUNK_FIELDS)]
        return sorted(records, key=lambda r: r.chunk.id)

    def group(self, chunk: Chunk) -> Chunk | None:
        rows = self.client.query(
            self.name, filter=f'{_eq("source", chunk.source)} and block == {int(chunk.block)} and kind in ["list", "table"]',
            output_fields=CHUNK_FIELDS, limit=1,
        )
        return _chunk(rows[0]) if rows else None

    def document_frequencies(self, tokens: Sequence[str]) -> dict[str, int]:
        missing = sorted({t for t in tokens if t not in self._df_cache})
        if missing:
            found = self._df_rows(missing)
            with self._lock:
                if len(self._df_cache) > 100_000:
                    self._df_cache.clear()
                self._df_cache.update((t, found.get(t, 0)) for t in missing)
        return {t: self._df_cache.get(t, 0) for t in tokens}

    def _df_rows(self, tokens: Sequence[str]) -> dict[str, int]:
        """Stored document frequencies of `tokens` (absent tokens are left out)."""
        by_key = {_df_key(t): t for t in tokens}
        return {by_key[key]: int(row["df"]) for key, row in self._meta_rows(list(by_key), ["df"]).items()}

    def _meta_rows(self, keys: Sequence[str], fields: list[str]) -> dict[str, dict[str, Any]]:
        """`<name>_meta` rows by key, 1,000 keys a request."""
        out = {}
        for start in range(0, len(keys), 1000):
            for row in self.client.query(self.meta_name, ids=list(keys[start : start + 1000]), output_fields=["key", *fields]):
                out[row["key"]] = row
        return out

    def sources(self) -> dict[str, str]:
        return {row["source"]: row["sha256"] for row in self._file_rows(["source", "sha256"])}

    def _file_rows(self, fields: list[str]) -> Iterator[dict[str, Any]]:
        """The records of the files indexed now (removed files keep a record with an empty sha256)."""
        return self._scan(self.meta_name, 'kind == "file" and sha256 != ""', fields)

    def _scan(self, collection: str, expr: str, fields: list[str]) -> Iterator[dict[str, Any]]:
        """Every row of `collection` matching `expr`, 1,000 a request (`query` alone stops at 16,384)."""
        iterator = self.client.query_iterator(collection, batch_size=1000, filter=expr, output_fields=fields)
        try:
            while batch := iterator.next():
                yield from batch
        finally:
            iterator.close()

    def stats(self) -> dict[str, Any]:
        files = list(self._file_rows(["source"]))
        return {
            "backend": self.backend,
            "uri": resolve_uri(self.settings),
            "collection": self.name,
            "chunks": self.count(),
            "files": len(files),
            "model": self.manifest["model"],
            "dimension": self.manifest["dimension"],
            "index_kind": self.settings.milvus_index_type,
        }

    # Writing.
    def _changed(self) -> None:
        self._count = self._stats = None
        self._cache.clear()
        with self._lock:
            self._df_cache.clear()

    def add(self, source: str, sha256: str, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        if any(c.source != source for c in chunks):
            raise ValueError(f"add takes the chunks of {source!r} only")
        if len(chunks) != len(vectors):
            raise ValueError(f"{len(chunks)} chunks but {len(vectors)} vectors")
        rows = _rows(chunks, sha256)
        present, versions = self._present({source})
        recorded = bool(self._meta_rows([_file_key(source)], ["sha256"]).get(_file_key(source), {}).get("sha256"))
        for start in range(0, len(rows), self.settings.milvus_batch_size):
            batch = rows[start : start + self.settings.milvus_batch_size]
            for row, vector in zip(batch, vectors[start : start + len(batch)]):
                del row["_embed"]
                row["vector"] = np.asarray(vector, dtype=np.float32).tolist()
            fresh = [row for row in batch if row["id"] not in present]
            if fresh:  # a plain insert is much cheaper than an upsert, which reads each row first
                self.client.insert(self.name, fresh)
            if len(fresh) < len(batch):
                self.client.upsert(self.name, [row for row in batch if row["id"] in present])
        replaces = recorded or bool(versions.get(source, set()) - {sha256})
        self._commit([_FileDone(source, sha256, [{"tokens": r["tokens"]} for r in rows], replaces)])

    def _commit(self, files: Sequence["_FileDone"]) -> None:
        """Record `files` as indexed (their chunk rows are all written): the commit point.

        Rows of older versions of these files are deleted first. Then one upsert request
        carries each file's record and term counts and the document frequencies they change
        (new counts minus those of the version recorded before), so the statistics and the
        records cannot disagree: Milvus Lite writes a request as one WAL entry. A run killed
        before this point leaves the old record, and its re-run computes the same change.
        """
        for done in files:
            if done.replaces:
                self.client.delete(self.name, filter=f"{_eq('source', done.source)} and file_sha != {_filter_literal(done.sha256)}")
        old = self._term_counts([d.source for d in files if d.replaces])
        rows = self._statistics_rows([(d.source, old.get(d.source, {}), _term_counts(d.rows)) for d in files])
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        rows += [_meta_row(_file_key(d.source), "file", source=d.source, sha256=d.sha256, chunks=len(d.rows),
                           tokens=_token_total(d.rows), indexed_at=now) for d in files]
        self.client.upsert(self.meta_name, rows)
        self._changed()

    def _term_counts(self, sources: Sequence[str]) -> dict[str, dict[str, int]]:
        """The term counts recorded for `sources`: {source: {token: chunks containing it}}."""
        out: dict[str, dict[str, int]] = {}
        for group in _groups(list(sources), 100):
            rows = self.client.query(
                self.meta_name, filter=f'kind == "terms" and source in {_filter_literal(list(group))}',
                output_fields=["source", "data"], limit=16_384,
            )
            for row in rows:
                out.setdefault(row["source"], {}).update(row["data"] or {})
        return out

    def _statistics_rows(self, changes: Sequence[tuple[str, dict[str, int], dict[str, int]]]) -> list[dict[str, Any]]:
        """`terms:` rows for each (source, old counts, new counts) and the `df:` rows they change."""
        delta: dict[str, int] = {}
        rows = []
        for source, old, new in changes:
            for token in old.keys() | new.keys():
                change = new.get(token, 0) - old.get(token, 0)
                if change:
                    delta[token] = delta.get(token, 0) + change
            parts = _parts(new)
            stale = max(0, len(_parts(old)) - len(parts))
            for i, part in enumerate(parts + [{}] * stale):  # emptied parts replace leftover ones
                rows.append(_meta_row(_terms_key(source, i), "terms", source=source, data=part))
        current = self._df_rows(sorted(delta))
        rows += [_meta_row(_df_key(t), "df", df=max(0, current.get(t, 0) + change)) for t, change in sorted(delta.items())]
        return rows

    def delete_source(self, source: str) -> int:
        """Remove the chunks of `source`, then its counts from the statistics and its record (one request)."""
        removed = self._count_where(_eq("source", source))
        self.client.delete(self.name, filter=_eq("source", source))
        old = self._term_counts([source]).get(source, {})
        rows = self._statistics_rows([(source, old, {})])
        rows.append(_meta_row(_file_key(source), "file", source=source, sha256=""))
        self.client.upsert(self.meta_name, rows)
        self._changed()
        return removed

    def sync(
        self,
        corpus_dir: Path,
        embedder: Embedder,
        *,
        max_file_bytes: int,
        show_progress: bool = False,
        on_change: Callable[[str], None] | None = None,
    ) -> dict[str, int]:
        """Bring the collection in line with the files in `corpus_dir`; returns what was done.

        Removed files lose their chunks; new and changed files are chunked, embedded and
        upserted in batches, each recorded once all its chunks are in. Memory holds one
        batch of chunks and the list of file fingerprints, whatever the corpus size.
        """
        paths = list_corpus_files(corpus_dir)
        stored = self.sources()
        seen: dict[str, Path] = {}
        todo: list[Path] = []
        for path in paths:  # fingerprints first, one file at a time: nothing is kept but the hash
            doc = read_document(path, corpus_dir, max_bytes=max_file_bytes)
            if doc is None:
                continue
            seen[doc.source] = path
            if stored.get(doc.source) != doc.sha256:
                todo.append(path)
        removed = sorted(set(stored) - set(seen))
        report = {"files": len(seen), "removed": len(removed), "indexed": len(todo), "embedded": 0, "reused": 0}
        if (removed or todo) and on_change is not None:
            on_change(f"updating Milvus collection {self.name!r} at {resolve_uri(self.settings)}: "
                      f"{len(todo)} new or changed files, {len(removed)} removed")
        for source in removed:
            self.delete_source(source)
        if todo:
            self._index_files(todo, stored, corpus_dir, embedder, max_file_bytes, show_progress, report)
        if removed or todo:  # seal what was written, so searches use indexed segments, not the write buffer
            self.client.flush(self.name)
            self.client.flush(self.meta_name)
        return report

    def _index_files(self, paths: list[Path], recorded: dict[str, str], corpus_dir: Path, embedder: Embedder, max_file_bytes: int,
                     show_progress: bool, report: dict[str, int]) -> None:
        from tqdm import tqdm

        batch_size = self.settings.milvus_batch_size
        pending: list[dict[str, Any]] = []   # rows to embed and upsert
        waiting: list[_FileDone] = []  # files whose rows are all in `pending` or written
        bar = tqdm(total=len(paths), unit="file", desc="indexing", disable=not show_progress)

        def flush() -> None:
            if pending:
                vectors = embedder.encode([row.pop("_embed") for row in pending])
                for row, vector in zip(pending, vectors):
                    row["vector"] = np.asarray(vector, dtype=np.float32).tolist()
                stored = [row.pop("_stored") for row in pending]
                fresh = [row for row, was in zip(pending, stored) if not was]
                if fresh:  # keys not in the collection: a plain insert, much cheaper than an upsert
                    self.client.insert(self.name, fresh)
                if len(fresh) < len(pending):
                    self.client.upsert(self.name, [row for row, was in zip(pending, stored) if was])
                report["embedded"] += len(pending)
                pending.clear()
            if waiting:
                self._commit(waiting)
            bar.update(len(waiting))
            waiting.clear()

        try:
            for group in _groups(paths, 64):
                docs = [d for d in (read_document(p, corpus_dir, max_bytes=max_file_bytes) for p in group) if d is not None]
                present, versions = self._present({d.source for d in docs})
                for doc in docs:
                    rows = _rows(self._chunks(doc), doc.sha256)
                    for row in rows:
                        if present.get(row["id"]) == doc.sha256:
                            report["reused"] += 1  # stored by an earlier, interrupted run
                            continue
                        pending.append({**row, "_stored": row["id"] in present})
                        if len(pending) >= batch_size:
                            flush()  # finishes the files before this one; this one is not waiting yet
                    replaces = doc.source in recorded or bool(versions.get(doc.source, set()) - {doc.sha256})
                    waiting.append(_FileDone(doc.source, doc.sha256, [{"tokens": r["tokens"]} for r in rows], replaces))
                    bar.set_postfix(chunks=report["embedded"] + len(pending), refresh=False)
            flush()
        finally:
            bar.close()

    def _chunks(self, doc: Document) -> list[Chunk]:
        return chunk_document(
            doc, max_chunk_chars=self.settings.max_chunk_chars, max_heading_words=self.settings.max_heading_words
        )

    def _present(self, sources: set[str]) -> tuple[dict[str, str], dict[str, set[str]]]:
        """Keys already stored for `sources` → the file version they belong to; and the versions per source."""
        if not sources:
            return {}, {}
        out: dict[str, str] = {}
        versions: dict[str, set[str]] = {}
        for row in self._scan(self.name, f"source in {_filter_literal(sorted(sources))}", ["id", "source", "file_sha"]):
            out[row["id"]] = row["file_sha"]
            versions.setdefault(row["source"], set()).add(row["file_sha"])
        return out, versions

    def close(self) -> None:
        self.client.close()


class _RowCache:
    """The last rows searches returned, so that scoring and quoting them needs no second round trip.

    A row's key is a hash of its content, so a cached row can only be stale in its
    neighbourhood fields; writes through this store clear the cache.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._rows: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {key: self._rows[key] for key in keys if key in self._rows}

    def put(self, rows: Iterable[dict[str, Any]]) -> None:
        with self._lock:
            for row in rows:
                self._rows[row["id"]] = row
                self._rows.move_to_end(row["id"])
            while len(self._rows) > self.size:
                self._rows.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._rows.clear()


def _hit_rows(hits: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**hit["entity"], "id": hit["id"]} for hit in hits]


@dataclass
class _FileDone:
    """A file whose chunk rows are all written: what `_commit` records. `rows` need only `tokens`.

    `replaces`: the collection may hold an earlier version of the file (rows or a record).
    """

    source: str
    sha256: str
    rows: list[dict[str, Any]]
    replaces: bool = True


def _term_counts(rows: Sequence[dict[str, Any]]) -> dict[str, int]:
    """{token: how many of these rows contain it}."""
    counts: dict[str, int] = {}
    for row in rows:
        for token in set(row["tokens"].split()):
            counts[token] = counts.get(token, 0) + 1
    return counts


def _parts(counts: dict[str, int]) -> list[dict[str, int]]:
    """`counts` cut into dicts whose JSON stays under `TERMS_PART_BYTES` (no part for no counts)."""
    parts: list[dict[str, int]] = []
    current: dict[str, int] = {}
    size = 2
    for token, n in sorted(counts.items()):
        item = len(json.dumps({token: n}, ensure_ascii=False).encode("utf-8"))
        if current and size + item > TERMS_PART_BYTES:
            parts.append(current)
            current, size = {}, 2
        current[token] = n
        size += item
    return parts + [current] if current else parts


def _file_key(source: str) -> str:
    return "file:" + sha256_hex(source)


def _terms_key(source: str, part: int) -> str:
    return f"terms:{sha256_hex(source)}:{part}"


def _df_key(token: str) -> str:
    """`df:<token>`; tokens too long for the key field are hashed."""
    return "df:" + token if len(token.encode("utf-8")) <= 200 else "df#" + sha256_hex(token)


def _meta_row(key: str, kind: str, *, source: str = "", sha256: str = "", chunks: int = 0, tokens: int = 0,
              df: int = 0, data: dict[str, int] | None = None, indexed_at: str = "") -> dict[str, Any]:
    return {"key": key, "kind": kind, "source": source, "sha256": sha256, "chunks": chunks, "tokens": tokens, "df": df,
            "data": data or {}, "indexed_at": indexed_at, "dummy": [0.0, 0.0]}


def _groups(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _rows(chunks: Sequence[Chunk], sha256: str) -> list[dict[str, Any]]:
    """Milvus rows for the chunks of one file (without vectors), `_embed` holding the text to embed."""
    rows = []
    previous: Chunk | None = None
    previous_key = ""
    for chunk in chunks:
        key = chunk_key(chunk)
        if len(chunk.text.encode("utf-8")) > MAX_VARCHAR:
            raise ValueError(f"a chunk of {chunk.source} is over {MAX_VARCHAR} bytes: lower ASSISTANT_MAX_CHUNK_CHARS")
        same = previous is not None and previous.section == chunk.section
        embed = chunk.embedding_text()
        rows.append({
            "id": key, "source": chunk.source, "seq": chunk.id, "section": _fit(chunk.section), "kind": chunk.kind,
            "start": chunk.start, "end": chunk.end, "block": chunk.block, "text": chunk.text,
            "context": _fit(chunk.context), "prev": previous_key if same else "", "file_sha": sha256,
            "tokens": _fit(" ".join(tokenize(embed))), "_embed": embed,
        })
        previous, previous_key = chunk, key
    return rows


def _token_total(rows: Sequence[dict[str, Any]]) -> int:
    """Tokens in these rows, an empty chunk counting as one (as bm25s counts it)."""
    return sum(max(len(row["tokens"].split()), 1) for row in rows)


def _record(row: dict[str, Any]) -> Record:
    return Record(row["id"], _chunk(row), row["prev"] or None)


def _chunk(row: dict[str, Any]) -> Chunk:
    return Chunk(
        id=int(row["seq"]), source=row["source"], section=row["section"], kind=row["kind"], start=int(row["start"]),
        end=int(row["end"]), text=row["text"], context=row["context"], block=int(row["block"]),
    )


def _notify(on_rebuild: Callable[[str], None] | None, message: str) -> None:
    if on_rebuild is not None:
        on_rebuild(message)
    else:
        logger.warning(message)


def open_milvus(
    settings: Settings,
    embedder: Embedder,
    *,
    force: bool = False,
    show_progress: bool = False,
    on_rebuild: Callable[[str], None] | None = None,
) -> MilvusChunkStore:
    """The Milvus store for `settings`, synchronised with the corpus unless `settings.sync_on_load` is off."""
    from assistant.index import index_lock

    store = MilvusChunkStore.open(settings, model=embedder.name, dimension=embedder.dimension, force=force,
                                  on_rebuild=on_rebuild)
    if settings.sync_on_load or force:
        with index_lock(settings.index_dir):
            store.sync(settings.corpus_dir, embedder, max_file_bytes=settings.max_file_bytes,
                       show_progress=show_progress, on_change=lambda m: _notify(on_rebuild, m))
    return store


__all__ = ["MilvusChunkStore", "MilvusStoreError", "chunk_key", "open_milvus"]
