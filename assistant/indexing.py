"""Keep a store in line with a corpus folder: one sync for every backend.

`sync_store` compares the files' fingerprints (sha256 of their bytes) with what the store
records, removes the documents whose files are gone, and reads, chunks, embeds and adds only
the new and changed ones — the other documents are not embedded again. Embedding is batched
across files; the store commits at checkpoints that grow with it (when what was added since
the last commit reaches the size of the store), so a killed run resumes from its last
checkpoint at a total cost of writes linear in the corpus size.

`open_synced` is what loading the assistant does: open the store as it is, and if anything
differs from the corpus (or the store cannot be used), take the index lock, look again —
another process starting at the same time may have done the work — and sync, rebuilding from
empty when the store is damaged or was made with other settings. Opening alone never writes.

Example:
    >>> store, report = open_synced(settings, embedder)  # doctest: +SKIP
    >>> report.added, report.removed  # doctest: +SKIP
    (1, 0)
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from assistant.chunking import chunk_document
from assistant.corpus import Skipped, Unreadable, open_document, reader_limits, scan_sources
from assistant.embedding import Embedder
from assistant.locking import index_lock
from assistant.models import Chunk, Document
from assistant.settings import Settings
from assistant.stores import ChunkStore, StoreInvalid, open_store

logger = logging.getLogger(__name__)

#: Chunks embedded in one call: enough to keep the encoder's batches full across small files.
EMBED_BATCH = 256
#: The first checkpoint: below this many chunks a sync commits once, at the end.
FIRST_CHECKPOINT = 2_000


@dataclass
class SyncPlan:
    """What a sync has to do: files to read and index, documents to remove, files skipped."""

    to_index: list[tuple[Path, str]] = field(default_factory=list)  # (path, source)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    recorded: dict[str, str] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.to_index and not self.removed


@dataclass
class SyncReport:
    """What a sync did."""

    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    chunks: int = 0  # embedded
    skipped: list[Skipped] = field(default_factory=list)
    rebuilt: str | None = None  # why the store was emptied first, if it was

    @property
    def files(self) -> int:
        return len(self.added) + len(self.changed) + self.unchanged


def file_fingerprint(path: Path) -> str:
    """sha256 of a file's bytes, streamed: the same value `Document.sha256` holds."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def plan_sync(store: ChunkStore, corpus_dir: Path, *, max_file_bytes: int, uploads_dir: Path | None = None) -> SyncPlan:
    """Compare the corpus folder (and the uploads folder) with what `store` records; reads nothing but the files' bytes."""
    paths, skipped = scan_sources(corpus_dir, uploads_dir)
    plan = SyncPlan(skipped=list(skipped), recorded=store.sources())
    seen: set[str] = set()
    for path, source in paths:
        try:
            size = path.stat().st_size
            if size > max_file_bytes:
                plan.skipped.append(Skipped(source, f"{size:,} bytes is over the limit of {max_file_bytes:,} (ASSISTANT_MAX_FILE_BYTES)"))
                continue
            sha256 = file_fingerprint(path)
        except OSError as exc:  # unreadable, or gone since the folder was listed
            plan.skipped.append(Skipped(source, f"cannot read it ({exc.strerror or exc})"))
            continue
        seen.add(source)
        if plan.recorded.get(source) == sha256:
            plan.unchanged += 1
        else:
            plan.to_index.append((path, source))
    plan.removed = sorted(set(plan.recorded) - seen)
    return plan


def plan_settings(store: ChunkStore, settings: Settings) -> SyncPlan:
    """`plan_sync` for the corpus and uploads folders of `settings`."""
    return plan_sync(store, settings.corpus_dir, max_file_bytes=settings.max_file_bytes, uploads_dir=settings.uploads_folder)


def sync_store(
    store: ChunkStore,
    settings: Settings,
    embedder: Embedder,
    *,
    plan: SyncPlan | None = None,
    show_progress: bool = False,
) -> SyncReport:
    """Bring `store` in line with `settings.corpus_dir` (see the module docstring) and commit."""
    plan = plan or plan_settings(store, settings)
    report = SyncReport(unchanged=plan.unchanged, skipped=list(plan.skipped), removed=list(plan.removed))
    for source in plan.removed:
        store.remove(source)
    pending: list[tuple[Document, list[Chunk]]] = []
    since_commit = 0
    root = settings.corpus_dir.resolve()
    limits = reader_limits(settings)

    def flush() -> None:
        nonlocal since_commit
        texts = [c.embedding_text() for _, chunks in pending for c in chunks]
        vectors = embedder.encode(texts) if texts else np.zeros((0, embedder.dimension), dtype=np.float32)
        offset = 0
        for doc, chunks in pending:
            store.add(doc, chunks, vectors[offset : offset + len(chunks)])
            offset += len(chunks)
            (report.changed if doc.source in plan.recorded else report.added).append(doc.source)
        report.chunks += len(texts)
        since_commit += len(texts)
        pending.clear()
        if since_commit >= max(FIRST_CHECKPOINT, store.count()):
            store.commit()
            since_commit = 0

    from tqdm import tqdm

    with tqdm(total=len(plan.to_index), unit="file", desc="indexing", disable=not show_progress) as bar:
        for path, source in plan.to_index:
            try:
                doc = open_document(path, root, max_bytes=settings.max_file_bytes, source=source, limits=limits)
            except Unreadable as exc:
                report.skipped.append(Skipped(source, str(exc)))
                if source in plan.recorded:  # it was indexed, and is now unusable: its old quotes must go
                    store.remove(source)
                    report.removed.append(source)
                bar.update(1)
                continue
            chunks = chunk_document(doc, max_chunk_chars=settings.max_chunk_chars, max_heading_words=settings.max_heading_words)
            pending.append((doc, chunks))
            if sum(len(c) for _, c in pending) >= EMBED_BATCH:
                flush()
            bar.update(1)
            bar.set_postfix(chunks=report.chunks, refresh=False)
        if pending:
            flush()
    store.commit()
    report.skipped.sort(key=lambda s: s.source)
    return report


def describe(report: SyncReport) -> str:
    """One line for the user: what a sync changed."""
    parts = [f"{len(report.added)} new", f"{len(report.changed)} changed", f"{len(report.removed)} removed"]
    return ", ".join(parts) + f" file{'s' if len(report.removed) != 1 else ''}, {report.chunks:,} chunks embedded"


def open_synced(
    settings: Settings,
    embedder: Embedder,
    *,
    force: bool = False,
    show_progress: bool = False,
    on_change: Callable[[str], None] | None = None,
) -> tuple[ChunkStore, SyncReport]:
    """The store of `settings`, in line with the corpus folder (see the module docstring).

    `on_change` is told, in one line, why the store is rebuilt or what is being updated.
    `force` empties the store and indexes everything again.
    """
    say = on_change or logger.warning
    identity = {"model": embedder.name, "dimension": embedder.dimension}
    where = _where(settings)
    if not force:
        try:
            store = open_store(settings, **identity)
        except StoreInvalid:
            pass  # look again under the lock: another process may be rebuilding it right now
        else:
            plan = plan_settings(store, settings)
            if plan.empty:
                return store, SyncReport(unchanged=plan.unchanged, skipped=plan.skipped)
            store.close()
    with index_lock(settings.index_dir):
        reason = "a rebuild was asked for" if force else None
        if not force:
            try:
                store = open_store(settings, **identity)
            except StoreInvalid as exc:
                reason = str(exc)
        if reason is not None:
            say(f"building the index in {where}: {reason}")
            store = open_store(settings, **identity, reset=True, on_reset=say)
        plan = plan_settings(store, settings)
        if plan.empty and reason is None:
            return store, SyncReport(unchanged=plan.unchanged, skipped=plan.skipped)
        if reason is None:
            say(f"updating the index in {where}: {len(plan.to_index)} new or changed, {len(plan.removed)} removed")
        report = sync_store(store, settings, embedder, plan=plan, show_progress=show_progress)
        report.rebuilt = reason
        return store, report


def _where(settings: Settings) -> str:
    if settings.backend == "milvus":
        return f"Milvus collection {settings.milvus_collection!r}"
    return str(settings.index_dir)
