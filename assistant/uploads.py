"""Uploaded documents: checked, kept in the uploads folder, indexed at once, removable.

The corpus folder is never written. An upload is stored in `Settings.uploads_folder` under its
own name and indexed as `uploads/<name>`, beside the corpus documents; because the sync scans
that folder too, uploads survive a restart and a rebuild. Only the new document is embedded.

Checks, each refused with an `UploadRefused` whose message is one line: the name (no path
separators, no hidden or control characters, a supported suffix), the size
(`ASSISTANT_MAX_FILE_BYTES`), the type by content (a `.pdf` must be a PDF, a `.txt` must not be
one), and whatever the readers refuse (encrypted, image-only, over the PDF limits).

Example:
    >>> summary = bot.add_document("leaflet.pdf", Path("leaflet.pdf").read_bytes())  # doctest: +SKIP
    >>> bot.ask("What does the leaflet say about iron?", sources=[summary.source])  # doctest: +SKIP
    >>> bot.remove_document("leaflet.pdf")  # doctest: +SKIP
"""

from __future__ import annotations

import os
import unicodedata
import uuid
from pathlib import Path

from assistant.answer import DISCLAIMER
from assistant.chunking import chunk_document
from assistant.corpus import SUFFIXES, UPLOADS, Unreadable, open_document, reader_limits
from assistant.embedding import Embedder
from assistant.locking import index_lock
from assistant.models import DocumentSummary
from assistant.readers import detect_kind
from assistant.settings import Settings
from assistant.stores import ChunkStore


class UploadRefused(ValueError):
    """An upload (or removal) that is not done; `reason` is one line saying why and what to do."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.disclaimer = DISCLAIMER


def check_name(name: object) -> str:
    """The upload's file name as given, or `UploadRefused`: a plain name with a supported suffix."""
    if not isinstance(name, str) or not name.strip():
        raise UploadRefused("the document needs a file name, such as leaflet.pdf")
    if "/" in name or "\\" in name or name in (".", ".."):
        raise UploadRefused(f"the name {name!r} holds a path; give the file name alone, such as leaflet.pdf")
    if name.startswith("."):
        raise UploadRefused(f"the name {name!r} is hidden (it starts with a dot); rename the file")
    if any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in name) or name != name.strip():
        raise UploadRefused(f"the name {name!r} has control or invisible characters, or blanks around it; rename the file")
    if len(name.encode("utf-8")) > 200:
        raise UploadRefused("the name is over 200 bytes long; shorten it")
    suffix = Path(name).suffix.lower()
    if suffix not in SUFFIXES:
        raise UploadRefused(f"{name!r}: {suffix or 'a name without a suffix'} is not a supported type "
                            f"(supported: {', '.join(sorted(SUFFIXES))})")
    return name


def _check_content(name: str, data: bytes, max_bytes: int) -> None:
    if not isinstance(data, (bytes, bytearray)):
        raise UploadRefused(f"the document must be bytes, got {type(data).__name__}")
    if len(data) > max_bytes:
        raise UploadRefused(f"{name!r} is {len(data):,} bytes, over the limit of {max_bytes:,} (ASSISTANT_MAX_FILE_BYTES)")
    if not data.strip():
        raise UploadRefused(f"{name!r} is empty")
    suffix = Path(name).suffix.lower()
    found, named = detect_kind(bytes(data[:4096]), suffix), SUFFIXES[suffix]
    if {found, named} - {"text", "markdown"} and found != named:
        raise UploadRefused(f"{name!r} is named as {named} but its content is {found}; give it the suffix of its type")


def add_upload(store: ChunkStore, settings: Settings, embedder: Embedder, name: str, data: bytes) -> DocumentSummary:
    """Check, keep and index one uploaded file (replacing an earlier upload of that name); see the module docstring."""
    name = check_name(name)
    _check_content(name, data, settings.max_file_bytes)
    folder = settings.uploads_folder
    folder.mkdir(parents=True, exist_ok=True)
    source = f"{UPLOADS}/{name}"
    staged = folder / f".upload-{uuid.uuid4().hex}{Path(name).suffix.lower()}"  # hidden: never scanned
    try:
        staged.write_bytes(bytes(data))
        try:
            document = open_document(staged, folder, max_bytes=settings.max_file_bytes, source=source,
                                     limits=reader_limits(settings))
        except Unreadable as exc:
            raise UploadRefused(f"{name!r} cannot be indexed: {exc}") from exc
        chunks = chunk_document(document, max_chunk_chars=settings.max_chunk_chars,
                                max_heading_words=settings.max_heading_words)
        if not chunks:
            raise UploadRefused(f"{name!r} has no text to quote")
        vectors = embedder.encode([c.embedding_text() for c in chunks])
        with index_lock(settings.index_dir):
            os.replace(staged, folder / name)
            store.add(document, chunks, vectors)
            store.commit()
    finally:
        staged.unlink(missing_ok=True)
    return DocumentSummary(source=source, kind=document.kind, pages=document.pages, chunks=len(chunks),
                           bytes=len(data), sha256=document.sha256)


def remove_upload(store: ChunkStore, settings: Settings, name: str) -> int:
    """Remove an uploaded document (file and chunks); returns how many chunks went. Corpus files cannot be removed."""
    plain = name[len(UPLOADS) + 1 :] if isinstance(name, str) and name.startswith(UPLOADS + "/") else name
    plain = check_name(plain)
    source = f"{UPLOADS}/{plain}"
    path = settings.uploads_folder / plain
    if source not in store.sources() and not path.exists():
        if plain in store.sources():
            raise UploadRefused(f"{plain!r} is a corpus file, not an upload: remove it from the corpus folder instead")
        raise UploadRefused(f"no uploaded document is named {plain!r}")
    with index_lock(settings.index_dir):
        path.unlink(missing_ok=True)
        removed = store.remove(source)
        store.commit()
    return removed
