"""Where each character of a PDF's `source_text` sits on its page, in a few flat numpy arrays.

A quote is highlighted by the rectangles of its characters, merged per line fragment: one
box per stretch of a line, never one per character. Geometry is kept per character for x
(`x0`, `x1`) and per line fragment for y (`top`, `bottom`, `page`), so a 500-page PDF of about
1.5 million characters needs about 18 MB (12 bytes a character), and it round-trips through
`to_bytes`/`from_bytes` (an `.npz`) to be stored in the index beside the text.

Coordinates are PDF points with the origin at the top left of the page as displayed (its
crop box, after `/Rotate`), which is what a renderer such as pypdfium2 draws: multiply by
`scale = pixels / points` to highlight on a rendered page.

Example:
    >>> import numpy as np
    >>> g = PageGeometry.from_arrays(
    ...     page_starts=[0], page_sizes=[(612.0, 792.0)],
    ...     char_line=[0, 0, -1, 1], char_x0=[10, 16, 0, 10], char_x1=[16, 22, 0, 18],
    ...     line_page=[1, 1], line_top=[100, 112], line_bottom=[110, 122])
    >>> g.boxes(0, 4)
    [(1, 10.0, 100.0, 22.0, 110.0), (1, 10.0, 112.0, 18.0, 122.0)]
    >>> g.page_of(3)
    1
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

Box = tuple[int, float, float, float, float]

_FORMAT = 1  # bump when the arrays stored by `to_bytes` change meaning


@dataclass(frozen=True, eq=False)
class PageGeometry:
    """Per-character boxes of one PDF's extracted text.

    `char_line[i]` is the line fragment character `i` of the text was drawn in, or -1 for a
    character the reader inserted (a space, a newline, a Markdown marker): those have no box.
    """

    page_starts: np.ndarray  # int64 (pages,): offset in the text where each page starts
    page_sizes: np.ndarray  # float32 (pages, 2): width, height of each displayed page, points
    char_line: np.ndarray  # int32 (chars,): line fragment of each character, -1 if inserted
    char_x0: np.ndarray  # float32 (chars,)
    char_x1: np.ndarray  # float32 (chars,)
    line_page: np.ndarray  # uint16 (lines,): 1-based page of each line fragment
    line_top: np.ndarray  # float32 (lines,)
    line_bottom: np.ndarray  # float32 (lines,)

    @classmethod
    def from_arrays(
        cls,
        *,
        page_starts: Sequence[int],
        page_sizes: Sequence[tuple[float, float]],
        char_line: Sequence[int] | np.ndarray,
        char_x0: Sequence[float] | np.ndarray,
        char_x1: Sequence[float] | np.ndarray,
        line_page: Sequence[int] | np.ndarray,
        line_top: Sequence[float] | np.ndarray,
        line_bottom: Sequence[float] | np.ndarray,
    ) -> PageGeometry:
        geometry = cls(
            page_starts=np.asarray(page_starts, dtype=np.int64),
            page_sizes=np.asarray(page_sizes, dtype=np.float32).reshape(-1, 2),
            char_line=np.asarray(char_line, dtype=np.int32),
            char_x0=np.asarray(char_x0, dtype=np.float32),
            char_x1=np.asarray(char_x1, dtype=np.float32),
            line_page=np.asarray(line_page, dtype=np.uint16),
            line_top=np.asarray(line_top, dtype=np.float32),
            line_bottom=np.asarray(line_bottom, dtype=np.float32),
        )
        geometry.check()
        return geometry

    def check(self) -> None:
        """Raise ValueError when the arrays do not fit together (a corrupt or foreign file)."""
        n, lines, pages = len(self.char_line), len(self.line_page), len(self.page_starts)
        if not (len(self.char_x0) == len(self.char_x1) == n):
            raise ValueError(f"geometry: {n} characters but {len(self.char_x0)}/{len(self.char_x1)} x positions")
        if not (len(self.line_top) == len(self.line_bottom) == lines):
            raise ValueError(f"geometry: {lines} lines but {len(self.line_top)}/{len(self.line_bottom)} y positions")
        if len(self.page_sizes) != pages:
            raise ValueError(f"geometry: {pages} page starts but {len(self.page_sizes)} page sizes")
        if n and (self.char_line.min() < -1 or self.char_line.max() >= lines):
            raise ValueError("geometry: a character points at a line that does not exist")
        if lines and (self.line_page.min() < 1 or self.line_page.max() > pages):
            raise ValueError("geometry: a line points at a page that does not exist")
        if pages and (np.any(np.diff(self.page_starts) < 0) or self.page_starts[0] < 0 or self.page_starts[-1] > n):
            raise ValueError("geometry: page starts must rise from 0 to the text length")

    def __len__(self) -> int:
        return len(self.char_line)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PageGeometry):
            return NotImplemented
        return all(np.array_equal(getattr(self, name), getattr(other, name)) for name in _FIELDS)

    __hash__ = None  # type: ignore[assignment]  # mutable arrays inside

    def _check_span(self, start: int, end: int) -> None:
        if not 0 <= start <= end <= len(self):
            raise ValueError(f"span must satisfy 0 <= start <= end <= {len(self)}, got start={start}, end={end}")

    def boxes(self, start: int, end: int) -> list[Box]:
        """`(page, x0, top, x1, bottom)` of `text[start:end]`, one per line fragment, in text order."""
        self._check_span(start, end)
        lines = self.char_line[start:end]
        drawn = np.flatnonzero(lines >= 0)
        if drawn.size == 0:
            return []
        lines = lines[drawn]
        x0 = self.char_x0[start:end][drawn]
        x1 = self.char_x1[start:end][drawn]
        # A new box wherever the line changes from one drawn character to the next.
        starts = np.flatnonzero(np.concatenate(([True], lines[1:] != lines[:-1])))
        left = np.minimum.reduceat(x0, starts)
        right = np.maximum.reduceat(x1, starts)
        ids = lines[starts]
        return [
            (int(self.line_page[i]), round(float(a), 2), round(float(self.line_top[i]), 2), round(float(b), 2),
             round(float(self.line_bottom[i]), 2))
            for i, a, b in zip(ids, left, right)
        ]

    def page_of(self, offset: int) -> int | None:
        """1-based page of the character at `offset` (the last character when `offset` is the text length)."""
        self._check_span(offset, offset)
        if not len(self.page_starts):
            return None
        if offset == len(self) and offset > 0:
            offset -= 1
        line = int(self.char_line[offset]) if offset < len(self) else -1
        if line >= 0:
            return int(self.line_page[line])
        return max(1, int(np.searchsorted(self.page_starts, offset, side="right")))

    def to_bytes(self) -> bytes:
        """An `.npz` (compressed) holding every array: what the index stores beside the text."""
        buffer = io.BytesIO()
        np.savez_compressed(buffer, format=np.array([_FORMAT]), **{name: getattr(self, name) for name in _FIELDS})
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> PageGeometry:
        """Read what `to_bytes` wrote; ValueError if it is not such a file or fails the checks."""
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                version = int(npz["format"][0])
                arrays = {name: npz[name] for name in _FIELDS}
        except (OSError, KeyError, IndexError, EOFError, ValueError, zipfile.BadZipFile) as exc:
            raise ValueError(f"not a stored page geometry ({type(exc).__name__}); rebuild the index") from exc
        if version != _FORMAT:
            raise ValueError(f"geometry format {version} is not {_FORMAT}; rebuild the index")
        geometry = cls(**arrays)
        geometry.check()
        return geometry


_FIELDS = ("page_starts", "page_sizes", "char_line", "char_x0", "char_x1", "line_page", "line_top", "line_bottom")
