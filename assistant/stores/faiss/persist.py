"""The FAISS store on disk: `manifest.json` and one `build-<id>/` folder, written atomically.

Layout::

    index/
      manifest.json        format, model, dimension, chunking, files, chunk count, checksums, `data`
      build-<id>/          chunks.json, documents.json, vectors.faiss, bm25/…, geometry/<n>.npz
                           (the folder `data` names; one geometry file per PDF, named in documents.json)
      .lock                taken while a process writes (assistant.locking)

A save writes a new `build-<id>` folder under a temporary name, renames it into place, then
replaces `manifest.json` with `os.replace`: a process killed at any point leaves either the old
manifest and its folder or the new ones, never a mix. Only folders whose names this module
generates are ever deleted, and `data` must be such a name, inside the index folder.

Loading trusts nothing it reads: the manifest must match the settings, every file its checksum,
every document text its hash, and every chunk must be exactly its span of its document's text
(`document.text[start:end]`), so an edited `chunks.json` is refused even with a recomputed checksum.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

from assistant.corpus import sha256_hex
from assistant.models import Chunk, Document
from assistant.readers import PageGeometry

logger = logging.getLogger(__name__)

FORMAT_VERSION = 3  # 3: page geometry of PDFs in geometry/
MANIFEST = "manifest.json"
CHUNKS = "chunks.json"
DOCUMENTS = "documents.json"
BM25 = "bm25"
GEOMETRY = "geometry"
#: The only folder names this module creates, and so the only ones it deletes.
BUILD_NAME = re.compile(r"build-\d{14}-[0-9a-f]{8}")
TMP_NAME = re.compile(r"\.tmp-build-\d{14}-[0-9a-f]{8}")


class ManifestInvalid(Exception):
    """Raised by `read_build`: what is on disk cannot be used (the message says why)."""


def new_build_name() -> str:
    return f"build-{time.strftime('%Y%m%d%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:8]}"


def file_sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def checksums(folder: Path) -> dict[str, str]:
    """sha256 of every file under `folder`, by relative path; files are streamed, not read whole."""
    return {p.relative_to(folder).as_posix(): file_sha256(p) for p in sorted(folder.rglob("*")) if p.is_file()}


def write_json(path: Path, data: Any) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, sort_keys=True, ensure_ascii=False)
        f.flush()
        os.fsync(f.fileno())


def write_build(index_dir: Path, manifest: dict[str, Any], write_files) -> dict[str, Any]:
    """Write a new build atomically; `write_files(folder)` fills the folder. Returns the manifest written.

    Older builds and left-over temporary folders (names this module generated only) are removed.
    """
    index_dir.mkdir(parents=True, exist_ok=True)
    name = new_build_name()
    tmp = index_dir / f".tmp-{name}"
    tmp.mkdir()
    write_files(tmp)
    written = {**manifest, "data": name, "checksums": checksums(tmp)}
    os.replace(tmp, index_dir / name)
    write_json(index_dir / f".{MANIFEST}.tmp", written)
    os.replace(index_dir / f".{MANIFEST}.tmp", index_dir / MANIFEST)
    for old in index_dir.iterdir():
        if old.name != name and old.is_dir() and not old.is_symlink() and (BUILD_NAME.fullmatch(old.name) or TMP_NAME.fullmatch(old.name)):
            shutil.rmtree(old, ignore_errors=True)
    return written


def read_manifest(index_dir: Path) -> dict[str, Any]:
    path = index_dir / MANIFEST
    if not path.exists():
        raise ManifestInvalid(f"no index in {index_dir} yet")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ManifestInvalid(f"{path} is damaged ({exc})") from exc
    if not isinstance(manifest, dict):
        raise ManifestInvalid(f"{path} is damaged (not a JSON object)")
    return manifest


def check_manifest(manifest: dict[str, Any], expected: dict[str, Any]) -> None:
    """Raise `ManifestInvalid` naming the first field that differs from what the settings need."""
    for key, want in expected.items():
        have = manifest.get(key)
        if have != want:
            raise ManifestInvalid(f"the index was built with {key}={have!r}, the settings ask for {want!r}")


def build_folder(index_dir: Path, manifest: dict[str, Any]) -> Path:
    """The folder the manifest's `data` names, which must be a build folder directly inside `index_dir`."""
    name = manifest.get("data")
    if not isinstance(name, str) or not BUILD_NAME.fullmatch(name):
        raise ManifestInvalid(f"the manifest names {name!r} as its data folder, which is not a build folder name")
    folder = index_dir / name
    if folder.is_symlink() or not folder.is_dir():
        raise ManifestInvalid(f"the index data folder {folder} named by the manifest is missing")
    return folder


def verify_checksums(folder: Path, manifest: dict[str, Any]) -> None:
    expected = manifest.get("checksums")
    if not isinstance(expected, dict):
        raise ManifestInvalid("the manifest has no checksums")
    actual = checksums(folder)
    if actual != expected:
        bad = sorted(k for k in set(actual) | set(expected) if actual.get(k) != expected.get(k))
        raise ManifestInvalid(f"index files do not match their checksums: {bad}")


def write_documents(folder: Path, documents: dict[str, Document]) -> None:
    """`documents.json` (each document's text with its fingerprints, the text's own hash too) and the
    page geometry of each PDF in `geometry/<n>.npz` (n: the document's place in source order), which
    the checksums of the build then cover like every other file."""
    rows: dict[str, Any] = {}
    for n, (source, doc) in enumerate(sorted(documents.items())):
        row = {"sha256": doc.sha256, "kind": doc.kind, "text": doc.text, "text_sha256": sha256_hex(doc.text), "pages": doc.pages}
        if doc.geometry is not None:
            (folder / GEOMETRY).mkdir(exist_ok=True)
            row["geometry"] = f"{GEOMETRY}/{n}.npz"
            (folder / row["geometry"]).write_bytes(doc.geometry.to_bytes())
        rows[source] = row
    write_json(folder / DOCUMENTS, rows)


def read_documents(folder: Path) -> tuple[dict[str, Document], dict[str, str]]:
    """The stored documents (with their geometry), and the hash each text was stored with."""
    raw = json.loads((folder / DOCUMENTS).read_text(encoding="utf-8"))
    documents = {}
    for source, row in raw.items():
        geometry = None
        if row.get("geometry"):
            name = row["geometry"]
            if not re.fullmatch(rf"{GEOMETRY}/\d+\.npz", name):
                raise ManifestInvalid(f"{source}: {name!r} is not a geometry file name")
            geometry = PageGeometry.from_bytes((folder / name).read_bytes())
        documents[source] = Document(source=source, text=row["text"], sha256=row["sha256"], kind=row["kind"],
                                     pages=row.get("pages"), geometry=geometry)
    return documents, {source: row["text_sha256"] for source, row in raw.items()}


def read_chunks(folder: Path) -> list[Chunk]:
    return [Chunk(**row) for row in json.loads((folder / CHUNKS).read_text(encoding="utf-8"))]


def check_documents(
    documents: dict[str, Document], text_hashes: dict[str, str], chunks: list[Chunk], files: dict[str, str]
) -> None:
    """Every chunk is its span of its document's text, and every text is the one its hashes name.

    For text files the text *is* the file's bytes decoded, so its hash must equal the file's
    fingerprint: changing a quote would need changing the fingerprint, which the next sync
    then sees differ from the file.
    """
    if set(documents) != set(files):
        raise ManifestInvalid("the stored documents and the manifest's file list differ")
    for source, doc in documents.items():
        if doc.sha256 != files[source]:
            raise ManifestInvalid(f"{source}: the stored document and the manifest disagree on its fingerprint")
        text_sha256 = sha256_hex(doc.text)
        if text_sha256 != text_hashes.get(source) or (doc.kind in ("text", "markdown") and text_sha256 != doc.sha256):
            raise ManifestInvalid(f"{source}: the stored text does not match its fingerprint")
        if (doc.kind == "pdf") != (doc.geometry is not None) or (doc.geometry is not None and len(doc.geometry) != len(doc.text)):
            raise ManifestInvalid(f"{source}: the stored page geometry does not fit its text")
    for chunk in chunks:
        doc = documents.get(chunk.source)
        if doc is None or doc.text[chunk.start : chunk.end] != chunk.text:
            raise ManifestInvalid(f"{chunk.source}: chunk {chunk.id} is not the text at [{chunk.start}:{chunk.end}] of its document")
