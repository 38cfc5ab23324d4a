"""Readers: turn a file into the text the chunker understands (`source_text`), plus a map back to the file.

The type is decided by content, not by name: a file that starts with `%PDF-` is a PDF (so is a
`.pdf` file with `%PDF-` anywhere in its first 1024 bytes, as PDF readers allow); a
document that opens (after a byte-order mark, blank space, comments and an XML declaration)
with `<!doctype html`, `<html`, `<head` or `<body` is a web page, and so is a `.html`/`.htm`
file that opens with `<`; anything else must be UTF-8 text without NUL bytes. The suffix only
tells Markdown (`.md`, `.markdown`) from plain text.

`source_text`, for each kind, is what every quote is cut from (`quote == source_text[start:end]`)
and what `verify` re-extracts and compares:

- **text, markdown**: the file's bytes decoded as UTF-8, nothing changed (a byte-order mark,
  `\\r\\n` and trailing spaces stay).
- **html**: the text `readers.html.extract_html` builds from the page's main content (see that
  module for the rules): `#` headings, paragraphs with whitespace collapsed, `- ` list items,
  pipe tables with a `|---|` separator; blocks separated by one blank line; entities decoded.
  It is not the raw HTML, and it depends on the reader's version (`EXTRACTOR_VERSION`).
- **pdf**: the text `readers.pdf.extract_pdf` builds from the text layer, page after page, in
  reading order (columns left to right), without running headers, footers and page numbers:
  headings as `#` lines, paragraphs as one line each (the lines of a paragraph joined by a
  space), list items as `- ` lines (a bullet glyph becomes `- `; `1.` markers stay), ruled
  tables as pipe tables (first row as header, then a `|---|` separator, `|` in a cell as `/`),
  blocks separated by one blank line, and a paragraph broken by a column or page break
  joined by a space. A word hyphenated at a line end is joined and its hyphen left out
  ("magne-/sium" is "magnesium") unless the document writes the word with a hyphen
  elsewhere and never without ("well-known"), or the next line starts with a capital or a
  digit ("non-European"): then the hyphen stays and only the line break goes. Ligatures are spelled out ("ﬁ" is
  "fi"). Every character that came from the page has a box (`Extracted.boxes`); the spaces,
  newlines and Markdown markers the reader inserted have none.

Example:
    >>> from pathlib import Path
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = Path(folder, "iron.md")
    ...     _ = path.write_text("# Iron\\nIron is a metal.\\n", encoding="utf-8")
    ...     doc = read_file(path, max_bytes=1_000_000)
    >>> doc.kind, doc.text
    ('markdown', '# Iron\\nIron is a metal.\\n')
"""

from __future__ import annotations

import codecs
import re
from pathlib import Path

from assistant.readers.base import Extracted, Kind, ReaderLimits, Unreadable
from assistant.readers.geometry import Box, PageGeometry

EXTRACTOR_VERSION = 1  # bump when a reader's rules change what `source_text` is: the index must then be rebuilt

HTML_SUFFIXES = (".html", ".htm", ".xhtml")
_HTML_START = re.compile(r"(?:\s|<!--.*?-->|<\?xml[^>]*>)*<(!doctype\s+html|html|head|body)[\s>/]", re.IGNORECASE | re.DOTALL)

__all__ = [
    "EXTRACTOR_VERSION",
    "Box",
    "Extracted",
    "Kind",
    "PageGeometry",
    "ReaderLimits",
    "Unreadable",
    "detect_kind",
    "read_file",
]


def _head_text(head: bytes) -> str:
    for bom, encoding in ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")):
        if head.startswith(bom):
            return head[len(bom) :].decode(encoding, errors="ignore")
    return head.decode("latin-1")


def detect_kind(head: bytes, suffix: str) -> Kind:
    """The kind of a file from its first bytes (at least 1024 of them), the suffix deciding .md vs .txt only."""
    if head.lstrip(b"\xef\xbb\xbf \t\r\n\x00").startswith(b"%PDF-") or (suffix.lower() == ".pdf" and b"%PDF-" in head[:1024]):
        return "pdf"  # readers tolerate junk before the header; we do when the name says PDF too
    start = _head_text(head[:4096])
    if _HTML_START.match(start) or (suffix.lower() in HTML_SUFFIXES and start.lstrip().startswith("<")):
        return "html"
    return "markdown" if suffix.lower() in (".md", ".markdown") else "text"


def read_file(path: Path, *, max_bytes: int, limits: ReaderLimits | None = None) -> Extracted:
    """Read one file as `Extracted`, or raise `Unreadable` with a one-line reason.

    `max_bytes` bounds the file size (checked before reading); `limits` bounds what a PDF may
    cost to read (defaults: `ReaderLimits()`).
    """
    limits = limits or ReaderLimits()
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise Unreadable(f"{size} bytes is over the limit of {max_bytes} (ASSISTANT_MAX_FILE_BYTES)")
        with path.open("rb") as fp:
            head = fp.read(4096)
    except OSError as exc:
        raise Unreadable(f"cannot read it ({exc})") from exc
    kind = detect_kind(head, path.suffix)
    if kind == "pdf":
        from assistant.readers.pdf import read_pdf

        return read_pdf(path, limits)
    try:
        data = _read_at_most(path, max_bytes + 1)
    except OSError as exc:
        raise Unreadable(f"cannot read it ({exc})") from exc
    if len(data) > max_bytes:
        raise Unreadable(f"it grew over the limit of {max_bytes} bytes while being read (ASSISTANT_MAX_FILE_BYTES)")
    if kind == "html":
        from assistant.readers.html import extract_html

        return extract_html(data)
    from assistant.readers.text import extract_text

    return extract_text(data, suffix=path.suffix)


def _read_at_most(path: Path, limit: int) -> bytes:
    """Up to `limit` bytes of the file, read a megabyte at a time: `read(limit)` would allocate `limit` up front."""
    parts, total = [], 0
    with path.open("rb") as fp:
        while total < limit and (block := fp.read(min(1 << 20, limit - total))):
            parts.append(block)
            total += len(block)
    return b"".join(parts)
