"""Pydantic models at the boundaries of the pipeline.

Inside a stage we pass plain types; these models are what crosses from one stage to the next
and what the CLI, the Python API and the UI hand to users.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

ChunkKind = Literal["sentence", "list_item", "table_row", "list", "table"]
DocumentKind = Literal["text", "markdown", "html", "pdf"]


class Document(BaseModel):
    """One corpus file as indexed.

    `text` is the document's `source_text` (docs/formats.md): for text and Markdown files, the
    file's bytes decoded as UTF-8 with newlines untouched, so that `text[start:end]` of any chunk
    is exactly what a reader sees in the file; for PDFs and web pages, what `assistant.readers`
    extracts. `geometry` (PDFs only) places each character of `text` on its page: an
    `assistant.readers.PageGeometry`, typed `Any` here because models sit below the readers.
    """

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    source: str = Field(description="Path relative to the corpus folder, with '/' separators.")
    text: str
    sha256: str = Field(description="sha256 of the file's bytes: the fingerprint the store records.")
    kind: DocumentKind = "text"
    pages: int | None = Field(default=None, description="Number of pages (PDFs); None for files without pages.")
    geometry: Any = Field(default=None, exclude=True, repr=False, description="PageGeometry of a PDF, else None.")


class DocumentSummary(BaseModel):
    """What `Assistant.add_document` reports about a document it indexed."""

    source: str = Field(description="The name to cite and to restrict questions with, e.g. 'uploads/leaflet.pdf'.")
    kind: DocumentKind
    pages: int | None = None
    chunks: int
    bytes: int
    sha256: str


class Chunk(BaseModel):
    """A quotable unit of a document: a sentence, a list item, a table row, or a whole short list or table.

    `text == document.text[start:end]` always holds. `context` is what is embedded and
    indexed beside the text (section heading, a list's lead-in, a table's header names);
    it is never quoted.
    """

    model_config = ConfigDict(frozen=True)

    id: int = Field(description="Row position in the index; ties in ranking break on it.")
    source: str
    section: str
    kind: ChunkKind
    start: int
    end: int
    text: str
    context: str = ""
    block: int = Field(description="Index of the paragraph, list or table the chunk belongs to.")

    def embedding_text(self) -> str:
        """The text the embedder and BM25 see: context first, then the quoted span.

        Table rows and tables are seen through their context alone, which already holds every
        cell as a "Header: cell" pair: the pipes of the source carry no meaning for a model.
        """
        return embedding_text(self.kind, self.context, self.text)


def embedding_text(kind: str, context: str, text: str) -> str:
    """`Chunk.embedding_text` of a chunk with this kind, context and text."""
    if kind in ("table_row", "table"):
        return context
    return f"{context}\n{text}" if context else text


class Citation(BaseModel):
    """A quote with the place it comes from: `quote == source_text[start:end]`."""

    n: int = Field(description="The marker number, as in [n] in the answer.")
    quote: str
    source: str
    section: str
    start: int
    end: int
    score: float
    highlight: list[int] | None = Field(
        default=None,
        description="[start, end] of the sentence (or row, item) that answers best, inside [start, end], "
        "when the quote is a longer passage; null when the whole quote is that.",
    )
    page: int | None = Field(default=None, description="1-based page the quote starts on (PDFs); null without pages.")
    boxes: list[tuple[int, float, float, float, float]] = Field(
        default_factory=list,
        description="[page, x0, top, x1, bottom] of each line fragment of the quote, PDF points from the top left "
        "of the displayed page; a quote that runs onto the next page has boxes on both. Empty without pages.",
    )


class Answer(BaseModel):
    """What `Assistant.ask` returns and `ask --json` prints."""

    question: str
    answer: str
    grounded: bool
    citations: list[Citation] = Field(default_factory=list)
    disclaimer: str
    notice: str | None = Field(
        default=None, description="A fixed safety notice (emergency or personal dosing), when one applies."
    )
