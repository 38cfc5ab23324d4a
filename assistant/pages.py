"""A PDF page as a PNG, rendered here with pypdfium2, with a quote's boxes drawn on it.

The UI shows where a quote sits on its page without any external viewer: the page is rasterised
locally (pypdfium2, the same PDFium the reader uses) and the quote's line boxes
(`Citation.boxes`, PDF points from the top left of the displayed page) are scaled by the
rendering scale and filled in translucent yellow with PIL. Rendering costs ~50-200 ms a page, so
the plain pages are kept in a small LRU (bounded by count: a page at scale 1.5 is ~3 MB of pixels)
and the highlighted PNGs in a second, larger one (~100-300 kB each). Both are keyed by the file's
path, size and modification time, so a replaced upload is never shown stale.

Example:
    >>> png = page_png(Path("leaflet.pdf"), 1, [(1, 72.0, 90.0, 300.0, 104.0)])  # doctest: +SKIP
    >>> png[:8] == b"\\x89PNG\\r\\n\\x1a\\n"  # doctest: +SKIP
    True
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Hashable, Sequence

from PIL import Image, ImageDraw

#: Pixels per PDF point: 1.5 makes a Letter page 918 px wide, readable in the side panel.
SCALE = 1.5
#: Plain rendered pages kept (each ~3 MB of RGB pixels at SCALE).
PAGE_CACHE = 12
#: Highlighted PNGs kept (each ~100-300 kB).
PNG_CACHE = 64
#: The highlight: translucent yellow fill (as the text view's `<mark>`) and an amber outline.
FILL = (250, 204, 21, 110)
OUTLINE = (217, 119, 6, 255)
#: Points added around each box, so the highlight covers ascenders and descenders.
PADDING = 1.5

Box = tuple[int, float, float, float, float]


class PageUnavailable(ValueError):
    """The page cannot be shown: the file is missing, not a PDF, or has no such page; the message says which."""


class _LRU:
    """A small thread-safe least-recently-used map."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        self.size = size
        self.items: OrderedDict[Hashable, object] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: Hashable) -> object | None:
        with self.lock:
            if key not in self.items:
                return None
            self.items.move_to_end(key)
            return self.items[key]

    def put(self, key: Hashable, value: object) -> None:
        with self.lock:
            self.items[key] = value
            self.items.move_to_end(key)
            while len(self.items) > self.size:
                self.items.popitem(last=False)

    def __len__(self) -> int:
        return len(self.items)


_pages = _LRU(PAGE_CACHE)
_pngs = _LRU(PNG_CACHE)
_pdfium = threading.Lock()  # PDFium is not thread-safe: one rendering at a time


def _file_key(path: Path) -> tuple[str, int, int]:
    try:
        stat = path.stat()
    except OSError as exc:
        raise PageUnavailable(f"{path.name} is not on this server ({exc.strerror or exc})") from exc
    return str(path.resolve()), stat.st_size, stat.st_mtime_ns


def render_page(path: Path, page: int, *, scale: float = SCALE) -> Image.Image:
    """Page `page` (1-based) of the PDF at `path` as an RGB image, `scale` pixels per point (cached)."""
    if scale <= 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    key = (*_file_key(path), page, scale)
    cached = _pages.get(key)
    if isinstance(cached, Image.Image):
        return cached
    import pypdfium2 as pdfium

    with _pdfium:
        try:
            pdf = pdfium.PdfDocument(str(path))
        except pdfium.PdfiumError as exc:
            raise PageUnavailable(f"{path.name} cannot be opened as a PDF ({exc})") from exc
        try:
            if not 1 <= page <= len(pdf):
                raise PageUnavailable(f"{path.name} has {len(pdf)} pages; there is no page {page}")
            image = pdf[page - 1].render(scale=scale).to_pil().convert("RGB")
        finally:
            pdf.close()
    _pages.put(key, image)
    return image


def highlight(image: Image.Image, boxes: Sequence[Box], page: int, *, scale: float = SCALE) -> Image.Image:
    """A copy of `image` (page `page` rendered at `scale`) with the boxes on that page filled and outlined."""
    overlay = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    for rectangle in scaled_boxes(boxes, page, scale=scale):
        draw.rectangle(rectangle, fill=FILL, outline=OUTLINE, width=2)
    return Image.alpha_composite(image.convert("RGBA"), overlay).convert("RGB")


def scaled_boxes(boxes: Sequence[Box], page: int, *, scale: float = SCALE) -> list[tuple[int, int, int, int]]:
    """The boxes on `page` in pixels of a rendering at `scale`: `(left, top, right, bottom)`, padded."""
    return [
        (int((x0 - PADDING) * scale), int((top - PADDING) * scale), round((x1 + PADDING) * scale),
         round((bottom + PADDING) * scale))
        for p, x0, top, x1, bottom in boxes if p == page
    ]


def page_png(path: Path, page: int, boxes: Sequence[Box] = (), *, scale: float = SCALE) -> bytes:
    """PNG bytes of page `page` of the PDF at `path` with the `boxes` on it highlighted (cached).

    Raises `PageUnavailable` when the file is missing, is not a PDF or has no such page.
    """
    mine = tuple(tuple(b) for b in boxes if b[0] == page)
    key = (*_file_key(path), page, scale, mine)
    cached = _pngs.get(key)
    if isinstance(cached, bytes):
        return cached
    image = highlight(render_page(path, page, scale=scale), boxes, page, scale=scale)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=False, compress_level=6)
    data = out.getvalue()
    _pngs.put(key, data)
    return data


def cited_pages(page: int | None, boxes: Sequence[Box]) -> list[int]:
    """The pages a citation is on, in order: those of its boxes (a quote may run onto the next page), else `page`."""
    pages = sorted({int(b[0]) for b in boxes})
    return pages or ([page] if page is not None else [])
