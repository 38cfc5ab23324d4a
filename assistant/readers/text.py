"""Plain text and Markdown: the file's bytes decoded as UTF-8, newlines untouched (as `corpus.read_document`)."""

from __future__ import annotations

from assistant.readers.base import Extracted, Kind, Unreadable

MARKDOWN_SUFFIXES = (".md", ".markdown")


def extract_text(data: bytes, *, suffix: str) -> Extracted:
    """`data` as a text or Markdown document (by `suffix`), or Unreadable when binary, not UTF-8 or empty."""
    if b"\x00" in data:
        raise Unreadable("it looks binary (it contains NUL bytes)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Unreadable(f"it is not UTF-8 ({exc.reason}); save it as UTF-8 to index it") from exc
    if not text.strip():
        raise Unreadable("it is empty")
    kind: Kind = "markdown" if suffix.lower() in MARKDOWN_SUFFIXES else "text"
    return Extracted(text=text, kind=kind)
