"""What every reader returns (`Extracted`), refuses with (`Unreadable`) and is bounded by (`ReaderLimits`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from assistant.readers.geometry import Box, PageGeometry

Kind = Literal["text", "markdown", "html", "pdf"]


class Unreadable(Exception):
    """A file the readers cannot use; `reason` is one line a user can act on.

    Example:
        >>> try:
        ...     raise Unreadable("it is encrypted (it needs a password to open); save an unprotected copy to index it")
        ... except Unreadable as exc:
        ...     print(exc.reason)
        it is encrypted (it needs a password to open); save an unprotected copy to index it
    """

    def __init__(self, reason: str) -> None:
        reason = " ".join(reason.split())  # one line, whatever a library put in it
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ReaderLimits:
    """Bounds on what a reader may spend on one file, so a hostile file cannot take the app down.

    PDF extraction runs in a child process (`isolate=True`) that is killed when it runs past
    `timeout_s` (wall clock, child start-up included: about half a second) and whose address
    space may grow by at most `max_memory_bytes` beyond its start-up footprint
    (`RLIMIT_AS`; Linux enforces it, macOS does not, Windows has no `resource` module).
    `isolate=False` reads in-process with no time or memory limit: for trusted files and tests only.

    The defaults fit the largest legitimate files: a dense 500-page PDF (2.5 million
    characters) takes about 40 s and 270 MB at peak, so 2,000 pages fit in 300 s and 1.5 GB.

    Example:
        >>> ReaderLimits(max_pages=300, timeout_s=30).max_pages
        300
    """

    max_pages: int = 2_000
    max_chars: int = 20_000_000
    timeout_s: float = 300.0
    max_memory_bytes: int = 1_500_000_000
    isolate: bool = True

    def __post_init__(self) -> None:
        for name in ("max_pages", "max_chars", "max_memory_bytes"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"ReaderLimits.{name} must be a positive integer, got {value!r}")
        if not self.timeout_s > 0:
            raise ValueError(f"ReaderLimits.timeout_s must be > 0 seconds, got {self.timeout_s!r}")


@dataclass(frozen=True, eq=False)
class Extracted:
    """A file turned into the text the chunker reads (`source_text`), with a map back to the file.

    `geometry` is set for PDFs only: it places every character that came from a page, so a
    quote `text[start:end]` can be highlighted with `boxes(start, end)` on `page_of(start)`.
    `notes` are non-fatal problems worth a warning (pages without a text layer, skipped glyphs).

    Example:
        >>> doc = Extracted(text="# Iron\\n\\nIron is a metal.\\n", kind="markdown")
        >>> doc.pages, doc.page_of(8), doc.boxes(8, 24)
        (None, None, [])
    """

    text: str
    kind: Kind
    geometry: PageGeometry | None = None
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.geometry is not None and len(self.geometry) != len(self.text):
            raise ValueError(f"geometry covers {len(self.geometry)} characters but the text has {len(self.text)}")
        if self.kind == "pdf" and self.geometry is None:
            raise ValueError("a PDF needs its geometry (page starts and character boxes)")

    @property
    def pages(self) -> list[int] | None:
        """Offset in `text` where each page starts (page = index + 1); None for files without pages."""
        return None if self.geometry is None else self.geometry.page_starts.tolist()

    @property
    def page_count(self) -> int | None:
        return None if self.geometry is None else len(self.geometry.page_starts)

    def _check_span(self, start: int, end: int) -> None:
        if not 0 <= start <= end <= len(self.text):
            raise ValueError(f"span must satisfy 0 <= start <= end <= {len(self.text)}, got start={start}, end={end}")

    def boxes(self, start: int, end: int) -> list[Box]:
        """Rectangles `(page, x0, top, x1, bottom)` of `text[start:end]`, one per line fragment; [] without pages."""
        self._check_span(start, end)
        return [] if self.geometry is None else self.geometry.boxes(start, end)

    def page_of(self, offset: int) -> int | None:
        """1-based page holding `text[offset]`; None for files without pages."""
        self._check_span(offset, offset)
        return None if self.geometry is None else self.geometry.page_of(offset)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Extracted):
            return NotImplemented
        return (self.text, self.kind, self.notes) == (other.text, other.kind, other.notes) and (
            self.geometry == other.geometry
        )

    __hash__ = None  # type: ignore[assignment]
