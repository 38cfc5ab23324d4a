"""The chunk store on Milvus: a Milvus Lite file, a standalone server or a cluster, one client.

The collections are described in `schema`. Writes go through to Milvus: `add` inserts a file's
rows in batches of `Settings.milvus_batch_size`, then records the file (its record, term
counts and the document frequencies they change, in one upsert request: the commit point of
that file); `commit` flushes, so searches use sealed, indexed segments. A run killed in the
middle of a file leaves no record for it, and the next sync adds it again.

Document frequencies are kept rather than counted at question time: Milvus Lite evaluates
`TEXT_MATCH` by tokenising every row in Python, which took seconds per word at 100k chunks.
"""

from __future__ import annotations

import logging
import threading
import time
import base64
from typing import AbstractSet, Any, Callable, Iterator, Sequence

import numpy as np

from assistant.lexical import Vocabulary, bm25_scores, build_vocabulary, tokenize
from assistant.models import Chunk, Document
from assistant.readers import PageGeometry
from assistant.settings import Settings
from assistant.stores.base import ChunkStore, Record, StoreInvalid, check_document_chunks
from assistant.stores.milvus import rows as codec
from assistant.stores.milvus import schema
from assistant.stores.milvus.cache import RowCache
from assistant.stores.milvus.client import MilvusClient, MilvusStoreError, connect, eq, filter_literal, resolve_uri

logger = logging.getLogger(__name__)


class MilvusChunkStore(ChunkStore):
    """A `ChunkStore` on one Milvus collection (see the module docstring); keys are chunk keys (hex).

    Example:
        >>> settings = Settings(backend="milvus", milvus_uri="/tmp/demo.db")  # doctest: +SKIP
        >>> store = MilvusChunkStore.open(settings, model=embedder.name, dimension=embedder.dimension)  # doctest: +SKIP
        >>> store.add(document, chunks, embedder.encode([c.embedding_text() for c in chunks]))  # doctest: +SKIP
        >>> store.commit()  # doctest: +SKIP
    """

    backend = "milvus"

    def __init__(self, client: MilvusClient, name: str, manifest: dict[str, Any], settings: Settings) -> None:
        self.client = client
        self.name = name
        self.meta_name = name + schema.META_SUFFIX
        self.manifest = manifest
        self.settings = settings
        self._df_cache: dict[str, int] = {}
        self._count: int | None = None
        self._stats: tuple[int, float] | None = None
        self._vocabulary: Vocabulary | None = None
        self._texts: dict[tuple[str, str], Any] = {}  # (kind, source) → text or PageGeometry, the last 64 read
        self._cache = RowCache(4096)
        self._lock = threading.Lock()

    @classmethod
    def open(cls, settings: Settings, *, model: str, dimension: int, reset: bool = False,
             on_reset: Callable[[str], None] | None = None) -> "MilvusChunkStore":
        """The collection for these settings, created if absent.

        Refused (`MilvusStoreError`) when it was not made by this assistant or holds another
        model's vectors; `StoreInvalid` when it is damaged or made with other chunking or an
        older format (rebuilding fixes that). `reset` drops it first and starts empty.
        """
        client = connect(settings)
        try:
            return cls._open(client, settings, model=model, dimension=dimension, reset=reset, on_reset=on_reset)
        except BaseException:
            client.close()
            raise

    @classmethod
    def _open(cls, client: MilvusClient, settings: Settings, *, model: str, dimension: int, reset: bool,
              on_reset: Callable[[str], None] | None) -> "MilvusChunkStore":
        name = settings.milvus_collection
        want = schema.collection_manifest(settings, model=model, dimension=dimension)
        exists = client.has_collection(name)
        if exists:
            have = schema.read_manifest(client, name)
            if have is None:
                raise MilvusStoreError(
                    f"Milvus collection {name!r} was not made by this assistant; refusing to write into it. "
                    "Set ASSISTANT_MILVUS_COLLECTION to another name"
                )
            other = {k: (have.get(k), want[k]) for k in schema.IDENTITY if have.get(k) != want[k]}
            if other and not reset:
                what = ", ".join(f"{k}={a!r} (settings ask for {b!r})" for k, (a, b) in other.items())
                raise MilvusStoreError(
                    f"Milvus collection {name!r} was built with {what}; refusing to mix them. "
                    "Set ASSISTANT_MILVUS_COLLECTION to another name, or rebuild it with "
                    "`python -m assistant index --force`"
                )
            if reset:
                if on_reset is not None:
                    on_reset(f"dropping Milvus collection {name!r} to rebuild it")
                schema.drop(client, name)
                exists = False
            else:
                diff = sorted(k for k in want if have.get(k) != want[k])
                problem = schema.damage(client, name, dimension) or (
                    f"it was built with other {', '.join(diff)}" if diff else None)
                if problem:
                    raise StoreInvalid(f"Milvus collection {name!r} cannot be used: {problem}")
        if not exists:
            schema.create(client, name, want, dimension, settings)
        client.load_collection(name)
        client.load_collection(name + schema.META_SUFFIX)
        return cls(client, name, want, settings)

    # Reading.
    def count(self) -> int:
        if self._count is None:
            self._count = self._count_where("")
        return self._count

    def _count_where(self, expr: str) -> int:
        found = self.client.query(self.name, filter=expr, output_fields=["count(*)"])
        return int(found[0]["count(*)"]) if found else 0

    def dense(self, vector: np.ndarray, k: int, sources: AbstractSet[str] | None = None) -> list[tuple[str, float]]:
        result = self.client.search(
            self.name, data=[np.asarray(vector, dtype=np.float32).tolist()], anns_field="vector", limit=k,
            output_fields=schema.ROW_FIELDS, filter=_among(sources),
            search_params={"metric_type": "IP", "params": {"ef": max(self.settings.milvus_ef_search, k)}},
        )
        self._cache.put(codec.hit_rows(result[0]))
        return [(hit["id"], float(hit["distance"])) for hit in result[0]]

    def lexical(self, query: str, k: int, sources: AbstractSet[str] | None = None) -> list[tuple[str, float]]:
        """Milvus's BM25 index proposes the candidates; their scores are then computed exactly.

        Milvus scores BM25 on its own scale, and a filtered search (`id in [...]`) takes its
        statistics from the filtered rows only; so every BM25 score the fusion sees comes
        from `lexical_scores`, which uses corpus-wide statistics and equals bm25s's.
        """
        tokens = tokenize(query)
        if not tokens or k <= 0:
            return []
        result = self.client.search(
            self.name, data=[" ".join(tokens)], anns_field="sparse", limit=k, output_fields=schema.ROW_FIELDS,
            search_params={"metric_type": "BM25"}, filter=_among(sources),
        )
        self._cache.put(codec.hit_rows(result[0]))
        keys = [hit["id"] for hit in result[0]]
        scored = sorted(zip(keys, self.lexical_scores(query, keys).tolist()), key=lambda item: -item[1])
        return [(key, score) for key, score in scored if score > 0]

    def lexical_scores(self, query: str, keys: Sequence[str]) -> np.ndarray:
        keys = list(keys)
        tokens = tokenize(query)
        if not keys or not tokens:
            return np.zeros(len(keys), dtype=np.float32)
        found = self._rows(keys)
        n, avgdl = self._corpus_stats()
        docs = [found[key]["tokens"].split() if key in found else [] for key in keys]
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
        found = self._rows(keys)
        dimension = int(self.manifest["dimension"])
        return np.array([found[k]["vector"] if k in found else [0.0] * dimension for k in keys],
                        dtype=np.float32).reshape(len(keys), dimension)

    def _rows(self, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Whole rows for `keys`: from the searches of this question when they returned them, else one query."""
        found = self._cache.get(keys)
        missing = [key for key in keys if key not in found]
        if missing:
            fetched = self.client.query(self.name, ids=missing, output_fields=schema.ROW_FIELDS)
            self._cache.put(fetched)
            found.update((row["id"], row) for row in fetched)
        return found

    def records(self, keys: Sequence[str]) -> dict[str, Record]:
        keys = list(keys)
        if not keys:
            return {}
        out = {}
        for row in self._rows(keys).values():
            record = codec.to_record(row)
            if not self.intact(record):  # the row's content no longer matches its key: never quote it
                logger.warning("Milvus row %s of %s does not match its key; skipped", record.key, record.chunk.source)
                continue
            out[record.key] = record
        return out

    def intact(self, record: Record) -> bool:
        return codec.chunk_key(record.chunk) == record.key

    def chunks_of(self, source: str) -> list[Record]:
        found = [codec.to_record(row) for row in self._scan(self.name, eq("source", source), schema.CHUNK_FIELDS)]
        return sorted(found, key=lambda r: r.chunk.id)

    def group(self, chunk: Chunk) -> Chunk | None:
        found = self.client.query(
            self.name, filter=f'{eq("source", chunk.source)} and block == {int(chunk.block)} and kind in ["list", "table"]',
            output_fields=schema.CHUNK_FIELDS, limit=1,
        )
        return codec.to_chunk(found[0]) if found else None

    def document_frequencies(self, tokens: Sequence[str]) -> dict[str, int]:
        missing = sorted({t for t in tokens if t not in self._df_cache})
        if missing:
            found = self._df_rows(missing)
            with self._lock:
                if len(self._df_cache) > 100_000:
                    self._df_cache.clear()
                self._df_cache.update((t, found.get(t, 0)) for t in missing)
        return {t: self._df_cache.get(t, 0) for t in tokens}

    def vocabulary(self) -> Vocabulary:
        """Built from every row's text once (a scan of the collection), then kept until the store changes."""
        if self._vocabulary is None:
            texts = (f"{row['context']}\n{row['text']}" for row in self._scan(self.name, "", ["context", "text"]))
            self._vocabulary = build_vocabulary(texts)
        return self._vocabulary

    def _df_rows(self, tokens: Sequence[str]) -> dict[str, int]:
        """Stored document frequencies of `tokens` (absent tokens are left out)."""
        by_key = {codec.df_key(t): t for t in tokens}
        return {by_key[key]: int(row["df"]) for key, row in self._meta_rows(list(by_key), ["df"]).items()}

    def _meta_rows(self, keys: Sequence[str], fields: list[str]) -> dict[str, dict[str, Any]]:
        """`<name>_meta` rows by key, 1,000 keys a request."""
        out = {}
        for group in codec.groups(list(keys), 1000):
            for row in self.client.query(self.meta_name, ids=list(group), output_fields=["key", *fields]):
                out[row["key"]] = row
        return out

    def sources(self) -> dict[str, str]:
        return dict(sorted((row["source"], row["sha256"]) for row in self._file_rows(["source", "sha256"])))

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
        return {
            "backend": self.backend,
            "location": resolve_uri(self.settings),
            "collection": self.name,
            "chunks": self.count(),
            "files": sum(1 for _ in self._file_rows(["source"])),
            "model": self.manifest["model"],
            "dimension": self.manifest["dimension"],
            "index_kind": self.settings.milvus_index_type,
        }

    # Writing.
    def _changed(self) -> None:
        self._count = self._stats = self._vocabulary = None
        self._cache.clear()
        with self._lock:
            self._df_cache.clear()
            self._texts.clear()

    def add(self, document: Document, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        check_document_chunks(document, chunks, vectors)
        source, sha256 = document.source, document.sha256
        rows = codec.chunk_rows(chunks, sha256)
        present, versions = self._present({source})
        recorded = bool(self._meta_rows([codec.file_key(source)], ["sha256"]).get(codec.file_key(source), {}).get("sha256"))
        for start in range(0, len(rows), self.settings.milvus_batch_size):
            batch = rows[start : start + self.settings.milvus_batch_size]
            for row, vector in zip(batch, vectors[start : start + len(batch)]):
                row["vector"] = np.asarray(vector, dtype=np.float32).tolist()
            fresh = [row for row in batch if row["id"] not in present]
            if fresh:  # a plain insert is much cheaper than an upsert, which reads each row first
                self.client.insert(self.name, fresh)
            if len(fresh) < len(batch):
                self.client.upsert(self.name, [row for row in batch if row["id"] in present])
        replaces = recorded or bool(versions.get(source, set()) - {sha256})
        shapes = base64.b64encode(document.geometry.to_bytes()).decode("ascii") if document.geometry is not None else ""
        self._record_files([codec.FileDone(source, sha256, [{"tokens": r["tokens"]} for r in rows], replaces, document.text, shapes)])

    def _record_files(self, files: Sequence[codec.FileDone]) -> None:
        """Record `files` as indexed (their chunk rows are all written): the commit point of each.

        Rows of older versions of these files are deleted first. Then one upsert request
        carries each file's record and term counts and the document frequencies they change
        (new counts minus those of the version recorded before), so the statistics and the
        records cannot disagree: Milvus Lite writes a request as one WAL entry. A run killed
        before this point leaves the old record, and its re-run computes the same change.
        """
        for done in files:
            if done.replaces:
                self.client.delete(self.name, filter=f"{eq('source', done.source)} and file_sha != {filter_literal(done.sha256)}")
        old = self._term_counts([d.source for d in files if d.replaces])
        meta = self._statistics_rows([(d.source, old.get(d.source, {}), codec.term_counts(d.rows)) for d in files])
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        old_parts = self._part_counts([d.source for d in files if d.replaces])
        for d in files:
            parts, shapes = codec.text_parts(d.text), codec.ascii_parts(d.geometry)
            before = old_parts.get(d.source, {})
            meta += self._blob_rows("text", d.source, parts, before.get("parts", 0))
            meta += self._blob_rows("geometry", d.source, shapes, before.get("geometry", 0))
            meta.append(codec.meta_row(codec.file_key(d.source), "file", source=d.source, sha256=d.sha256, chunks=len(d.rows),
                                       tokens=codec.token_total(d.rows), indexed_at=now,
                                       data={"parts": len(parts), "geometry": len(shapes)}))
        self.client.upsert(self.meta_name, meta)
        self._changed()

    @staticmethod
    def _blob_rows(kind: str, source: str, parts: list[str], old: int) -> list[dict[str, Any]]:
        """`text:` or `geometry:` rows of a document; emptied rows replace parts an older, longer version left."""
        padded = parts + [""] * max(0, old - len(parts))
        return [codec.meta_row(codec.part_key(kind, source, i), kind, source=source, data={"t": part})
                for i, part in enumerate(padded)]

    def _part_counts(self, sources: Sequence[str]) -> dict[str, dict[str, int]]:
        """How many `text:` (`parts`) and `geometry:` rows each file's record says it has."""
        keys = {codec.file_key(s): s for s in sources}
        found = self._meta_rows(list(keys), ["data"])
        return {keys[k]: {n: int((row.get("data") or {}).get(n, 0)) for n in ("parts", "geometry")} for k, row in found.items()}

    def document_text(self, source: str) -> str | None:
        return self._blob("text", source)

    def geometry(self, source: str) -> PageGeometry | None:
        return self._blob("geometry", source)

    def _blob(self, kind: str, source: str) -> Any:
        """The document's text or geometry, joined from its rows (None when not stored); the last 64 kept."""
        with self._lock:
            if (kind, source) in self._texts:
                return self._texts[(kind, source)]
        record = self._meta_rows([codec.file_key(source)], ["sha256", "data"]).get(codec.file_key(source))
        if not record or not record.get("sha256"):
            return None
        count = int((record.get("data") or {}).get("parts" if kind == "text" else kind, 0))
        keys = [codec.part_key(kind, source, i) for i in range(count)]
        rows = self._meta_rows(keys, ["data"])
        if len(rows) != count or (kind == "geometry" and not count):
            return None
        value: Any = "".join(rows[k]["data"]["t"] for k in keys)
        if kind == "geometry":
            value = PageGeometry.from_bytes(base64.b64decode(value))
        with self._lock:
            if len(self._texts) >= 64:
                self._texts.pop(next(iter(self._texts)))
            self._texts[(kind, source)] = value
        return value

    def _term_counts(self, sources: Sequence[str]) -> dict[str, dict[str, int]]:
        """The term counts recorded for `sources`: {source: {token: chunks containing it}}."""
        out: dict[str, dict[str, int]] = {}
        for group in codec.groups(list(sources), 100):
            found = self.client.query(
                self.meta_name, filter=f'kind == "terms" and source in {filter_literal(list(group))}',
                output_fields=["source", "data"], limit=16_384,
            )
            for row in found:
                out.setdefault(row["source"], {}).update(row["data"] or {})
        return out

    def _statistics_rows(self, changes: Sequence[tuple[str, dict[str, int], dict[str, int]]]) -> list[dict[str, Any]]:
        """`terms:` rows for each (source, old counts, new counts) and the `df:` rows they change."""
        delta: dict[str, int] = {}
        out = []
        for source, old, new in changes:
            for token in old.keys() | new.keys():
                change = new.get(token, 0) - old.get(token, 0)
                if change:
                    delta[token] = delta.get(token, 0) + change
            new_parts = codec.parts(new)
            stale = max(0, len(codec.parts(old)) - len(new_parts))
            for i, part in enumerate(new_parts + [{}] * stale):  # emptied parts replace leftover ones
                out.append(codec.meta_row(codec.terms_key(source, i), "terms", source=source, data=part))
        current = self._df_rows(sorted(delta))
        out += [codec.meta_row(codec.df_key(t), "df", df=max(0, current.get(t, 0) + change)) for t, change in sorted(delta.items())]
        return out

    def remove(self, source: str) -> int:
        """Remove the chunks of `source`, then its counts from the statistics and its record (one request)."""
        removed = self._count_where(eq("source", source))
        self.client.delete(self.name, filter=eq("source", source))
        old = self._term_counts([source]).get(source, {})
        meta = self._statistics_rows([(source, old, {})])
        before = self._part_counts([source]).get(source, {})
        meta += self._blob_rows("text", source, [], before.get("parts", 0))
        meta += self._blob_rows("geometry", source, [], before.get("geometry", 0))
        meta.append(codec.meta_row(codec.file_key(source), "file", source=source, sha256=""))
        self.client.upsert(self.meta_name, meta)
        self._changed()
        return removed

    def commit(self) -> None:
        """Seal what was written, so searches use indexed segments rather than the write buffer."""
        self.client.flush(self.name)
        self.client.flush(self.meta_name)

    def _present(self, sources: set[str]) -> tuple[dict[str, str], dict[str, set[str]]]:
        """Keys already stored for `sources` → the file version they belong to; and the versions per source."""
        if not sources:
            return {}, {}
        out: dict[str, str] = {}
        versions: dict[str, set[str]] = {}
        for row in self._scan(self.name, f"source in {filter_literal(sorted(sources))}", ["id", "source", "file_sha"]):
            out[row["id"]] = row["file_sha"]
            versions.setdefault(row["source"], set()).add(row["file_sha"])
        return out, versions

    def close(self) -> None:
        self.client.close()


def _among(sources: AbstractSet[str] | None) -> str:
    """The search filter that keeps the chunks of `sources` (none: every chunk)."""
    return "" if sources is None else f"source in {filter_literal(sorted(sources))}"
