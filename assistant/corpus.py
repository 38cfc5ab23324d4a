"""Read the corpus folder: sorted, UTF-8, fingerprinted, never altered.

`.txt` and `.md` files are read as they are; `.pdf`, `.html`, `.htm` and `.xhtml` files through
`assistant.readers` (their `source_text`, docs/formats.md), a PDF with its page geometry. Hidden files and folders are left alone; links that lead out of
the folder or round in a loop, unreadable, vanished, empty, binary, non-UTF-8, oversized and
unsupported files, and PDFs that are encrypted, damaged, image-only or over the readers' limits
are skipped with a reason, so one bad file never stops the others from being
indexed. Nothing here opens a file for writing.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from assistant import readers
from assistant.models import Document
from assistant.settings import Settings

logger = logging.getLogger(__name__)

SUFFIXES = {".txt": "text", ".md": "markdown", ".pdf": "pdf", ".html": "html", ".htm": "html", ".xhtml": "html"}
#: Suffixes read through `assistant.readers` (the others are UTF-8 text, read as they are).
EXTRACTED = {".pdf", *readers.HTML_SUFFIXES}
#: Formats people keep health documents in that are not read, with what to tell them.
NOT_YET = {".docx": "Word document: not supported", ".doc": "Word document: not supported"}


class Unreadable(Exception):
    """A corpus file that cannot be indexed; the message is the one-line reason shown to the user."""


@dataclass(frozen=True)
class Skipped:
    """A file of the corpus folder that is not indexed, and why."""

    source: str
    reason: str


def sha256_hex(data: bytes | str) -> str:
    """The one content hash of the project (file fingerprints, checksums, cache keys)."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def sha256_path(path: Path) -> str:
    """`sha256_hex` of a file's bytes, read in 1 MiB blocks (hashlib releases the GIL on each)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _inside(path: Path, root: Path) -> bool | None:
    """Whether `path` resolves inside `root`; None when it cannot be resolved (a link loop)."""
    try:
        path.resolve().relative_to(root)
    except ValueError:
        return False
    except (OSError, RuntimeError):  # RuntimeError: "Symlink loop" on Python < 3.13
        return None
    return True


def scan_corpus(corpus_dir: Path) -> tuple[list[Path], list[Skipped]]:
    """The files under `corpus_dir` that can be read (sorted by relative path), and those skipped with a reason.

    Symbolic links are followed only when their target stays inside `corpus_dir`.
    """
    root = corpus_dir.resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"corpus folder {corpus_dir} does not exist; create it and put .txt or .md files in it")
    found: list[Path] = []
    skipped: list[Skipped] = []
    for folder, dirs, files in os.walk(root, followlinks=False):
        kept_dirs = []
        for name in sorted(dirs):
            if name.startswith("."):
                continue
            inside = _inside(Path(folder, name), root)
            if inside:
                kept_dirs.append(name)
            else:
                source = Path(folder, name).relative_to(root).as_posix()
                skipped.append(Skipped(source, "a link that loops" if inside is None else "a link out of the corpus folder"))
        dirs[:] = kept_dirs
        for name in sorted(files):
            if name.startswith("."):
                continue
            path = Path(folder, name)
            source = path.relative_to(root).as_posix()
            suffix = Path(name).suffix.lower()
            inside = _inside(path, root)
            if inside is None:
                skipped.append(Skipped(source, "a link that loops"))
            elif not inside:
                skipped.append(Skipped(source, "a link out of the corpus folder"))
            elif suffix not in SUFFIXES:
                skipped.append(Skipped(source, NOT_YET.get(suffix, f"unsupported file type {suffix or '(none)'}")))
            else:
                found.append(path)
    return sorted(found, key=lambda p: p.relative_to(root).as_posix()), sorted(skipped, key=lambda s: s.source)


#: The folder name uploaded documents are indexed under (`uploads/<name>`); a corpus folder of that name is not read.
UPLOADS = "uploads"


def scan_sources(corpus_dir: Path, uploads_dir: Path | None = None) -> tuple[list[tuple[Path, str]], list[Skipped]]:
    """`(path, source)` of every readable file of the corpus and of the uploads folder, and those skipped.

    Uploaded files are named `uploads/<name>`, so the corpus's own top-level `uploads/` folder,
    which would clash with them, is skipped with a reason.
    """
    root = corpus_dir.resolve()
    paths, skipped = scan_corpus(corpus_dir)
    found = []
    for path in paths:
        source = path.relative_to(root).as_posix()
        if source.startswith(UPLOADS + "/"):
            skipped.append(Skipped(source, f"the corpus folder {UPLOADS}/ clashes with uploaded documents; rename it"))
        else:
            found.append((path, source))
    if uploads_dir is not None and uploads_dir.is_dir():
        more, not_read = scan_corpus(uploads_dir)
        top = uploads_dir.resolve()
        found += [(path, f"{UPLOADS}/{path.relative_to(top).as_posix()}") for path in more]
        skipped += [Skipped(f"{UPLOADS}/{item.source}", item.reason) for item in not_read]
    return sorted(found, key=lambda item: item[1]), sorted(skipped, key=lambda item: item.source)


def source_path(source: str, corpus_dir: Path, uploads_dir: Path | None = None) -> Path:
    """The file a source name stands for: `uploads/<name>` in the uploads folder, anything else in the corpus."""
    if uploads_dir is not None and source.startswith(UPLOADS + "/"):
        return uploads_dir / source[len(UPLOADS) + 1 :]
    return corpus_dir / source


def list_corpus_files(corpus_dir: Path) -> list[Path]:
    """Paths of the readable files under `corpus_dir`, sorted; the others are logged as skipped."""
    found, skipped = scan_corpus(corpus_dir)
    for item in skipped:
        logger.info("skipping %s: %s", item.source, item.reason)
    return found


def open_document(
    path: Path, corpus_dir: Path, *, max_bytes: int, limits: readers.ReaderLimits | None = None, source: str | None = None
) -> Document:
    """Read one file as a `Document`, or raise `Unreadable` with the reason.

    `source` names it (default: its path relative to `corpus_dir`); `limits` bound a PDF's reading.
    """
    source = source or path.relative_to(corpus_dir.resolve()).as_posix()
    if path.suffix.lower() in EXTRACTED:
        return extract_document(path, source, max_bytes=max_bytes, limits=limits)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise Unreadable(f"{size:,} bytes is over the limit of {max_bytes:,} (ASSISTANT_MAX_FILE_BYTES)")
        data = path.read_bytes()
    except OSError as exc:
        raise Unreadable(f"cannot read it ({exc.strerror or exc})") from exc
    if b"\x00" in data:
        raise Unreadable("it looks binary (it contains NUL bytes)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Unreadable(f"it is not UTF-8 ({exc.reason}); save it as UTF-8 to index it") from exc
    if not text.strip():
        raise Unreadable("it is empty")
    kind = SUFFIXES.get(path.suffix.lower(), "text")
    return Document(source=source, text=text, sha256=sha256_hex(data), kind=kind)  # type: ignore[arg-type]


def reader_limits(settings: Settings) -> readers.ReaderLimits:
    """What reading one PDF may cost, from the settings (`ASSISTANT_PDF_MAX_PAGES`, `ASSISTANT_PDF_TIMEOUT_S`)."""
    return readers.ReaderLimits(max_pages=settings.pdf_max_pages, timeout_s=settings.pdf_timeout_s)


def extract_document(path: Path, source: str, *, max_bytes: int, limits: readers.ReaderLimits | None = None) -> Document:
    """A PDF or web page as a `Document` whose text is the reader's `source_text`; `Unreadable` with the reason."""
    try:
        extracted = readers.read_file(path, max_bytes=max_bytes, limits=limits)
        sha256 = sha256_hex(path.read_bytes())  # the bytes fingerprinted are the ones just read, bar a race sync re-checks
    except readers.Unreadable as exc:
        raise Unreadable(exc.reason) from exc
    except OSError as exc:
        raise Unreadable(f"cannot read it ({exc.strerror or exc})") from exc
    if path.suffix.lower() == ".pdf" and extracted.kind != "pdf":
        raise Unreadable("it is named .pdf but is not a PDF (no %PDF- header)")
    if not extracted.text.strip():
        raise Unreadable("it has no text to index")
    for note in extracted.notes:
        logger.warning("%s: %s", source, note)
    return Document(source=source, text=extracted.text, sha256=sha256, kind=extracted.kind,
                    pages=extracted.page_count, geometry=extracted.geometry)


def read_document(path: Path, corpus_dir: Path, *, max_bytes: int) -> Document | None:
    """Like `open_document`, but a file that cannot be used is logged and gives None."""
    try:
        return open_document(path, corpus_dir, max_bytes=max_bytes)
    except Unreadable as exc:
        logger.warning("skipping %s: %s", path.relative_to(corpus_dir.resolve()).as_posix(), exc)
        return None


def load_corpus(corpus_dir: Path, *, max_bytes: int = 20_000_000) -> list[Document]:
    """Every usable document under `corpus_dir`, sorted by relative path."""
    root = corpus_dir.resolve()
    docs = [read_document(path, root, max_bytes=max_bytes) for path in list_corpus_files(root)]
    return [doc for doc in docs if doc is not None]


def fingerprint_corpus(corpus_dir: Path, *, max_bytes: int = 20_000_000) -> dict[str, str]:
    """`{source: sha256}` for the usable files."""
    return {doc.source: doc.sha256 for doc in load_corpus(corpus_dir, max_bytes=max_bytes)}
