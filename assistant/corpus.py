"""Read the corpus folder: sorted, UTF-8, fingerprinted, never altered.

Only `.txt` and `.md` files are read. Hidden files and folders, links that lead out of the
folder, empty, binary, non-UTF-8 and oversized files are skipped with a warning, so one bad
file never stops the others from being indexed. Nothing here opens a file for writing.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

from assistant.models import Document

logger = logging.getLogger(__name__)

SUFFIXES = (".txt", ".md")


def sha256_hex(data: bytes | str) -> str:
    """The one content hash of the project (file fingerprints, checksums, cache keys)."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def list_corpus_files(corpus_dir: Path) -> list[Path]:
    """Paths of the readable `.txt`/`.md` files under `corpus_dir`, in sorted order.

    Symbolic links are followed only when their target stays inside `corpus_dir`.
    """
    root = corpus_dir.resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"corpus folder {corpus_dir} does not exist; create it and put .txt or .md files in it")
    found: list[Path] = []
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not _escapes(Path(folder, d), root))
        for name in sorted(files):
            path = Path(folder, name)
            if name.startswith(".") or not name.lower().endswith(SUFFIXES):
                continue
            if _escapes(path, root):
                logger.warning("skipping %s: it links outside the corpus folder", path)
                continue
            found.append(path)
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def _escapes(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root)
    except (ValueError, OSError):
        return True
    return False


def read_document(path: Path, corpus_dir: Path, *, max_bytes: int) -> Document | None:
    """Read one file as a `Document`, or return None (with a warning) when it cannot be used."""
    source = path.relative_to(corpus_dir.resolve()).as_posix()
    try:
        size = path.stat().st_size
        if size > max_bytes:
            logger.warning("skipping %s: %d bytes is over the limit of %d (ASSISTANT_MAX_FILE_BYTES)", source, size, max_bytes)
            return None
        data = path.read_bytes()
    except OSError as exc:
        logger.warning("skipping %s: cannot read it (%s)", source, exc)
        return None
    if b"\x00" in data:
        logger.warning("skipping %s: it looks binary (it contains NUL bytes)", source)
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        logger.warning("skipping %s: it is not UTF-8 (%s); save it as UTF-8 to index it", source, exc.reason)
        return None
    if not text.strip():
        logger.warning("skipping %s: it is empty", source)
        return None
    return Document(source=source, text=text, sha256=sha256_hex(data))


def load_corpus(corpus_dir: Path, *, max_bytes: int = 20_000_000) -> list[Document]:
    """Every usable document under `corpus_dir`, sorted by relative path."""
    root = corpus_dir.resolve()
    docs = [read_document(path, root, max_bytes=max_bytes) for path in list_corpus_files(root)]
    return [doc for doc in docs if doc is not None]


def fingerprint_corpus(corpus_dir: Path, *, max_bytes: int = 20_000_000) -> dict[str, str]:
    """`{source: sha256}` for the usable files: what the manifest compares to decide on a rebuild."""
    return {doc.source: doc.sha256 for doc in load_corpus(corpus_dir, max_bytes=max_bytes)}
