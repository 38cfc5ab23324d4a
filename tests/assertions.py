"""The one assertion for the property every answer must have: each quote is the exact span of its file."""

from __future__ import annotations

from pathlib import Path

from assistant.answer import DISCLAIMER


def source_text(corpus: Path, source: str) -> str:
    """A corpus file's `source_text`: its bytes decoded as UTF-8, newlines untouched, read afresh."""
    return (corpus / source).read_bytes().decode("utf-8")


def assert_quotes_exact(answer, corpus: Path) -> None:
    """Every citation's quote is `source_text[start:end]` of its file, and the disclaimer is there."""
    assert answer.disclaimer == DISCLAIMER
    for c in answer.citations:
        assert source_text(corpus, c.source)[c.start : c.end] == c.quote, f"[{c.n}] is not the span {c.start}:{c.end} of {c.source}"
