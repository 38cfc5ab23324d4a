"""PDFs with a text layer: glyphs and their positions (pdfminer.six), ruled tables (pdfplumber), then layout.

Why pdfminer.six directly rather than pdfplumber's `page.chars`: pdfplumber turns every glyph
into a dict of ~20 keys, which made a 500-page PDF take 90 s; a small pdfminer device that
keeps only text, box, size and weight, and the straight rules that tables are drawn with, is
several times faster. pdfplumber's table finder (intersections of rules -> cells -> tables)
is then fed those rules directly, so no page is parsed twice. Both are MIT-licensed;
PyMuPDF (AGPL) is not used.

The steps: refuse a file cut short (no `%%EOF`), open it (an empty password only: files that
need a password are refused), refuse absurd files (page count, characters), collect glyphs
per page (upright text inside the crop box; a glyph whose font has no Unicode mapping is
dropped and counted), find ruled tables, cut glyphs into line fragments, drop running
headers, footers and page numbers, order the rest (XY-cut), and assemble text and geometry
(`pdf_text.Assembler`). Pages with images but no text are reported in `Extracted.notes`;
a document with no text at all is refused as "no text layer".
"""

from __future__ import annotations

import logging
import re
import unicodedata
from pathlib import Path
from typing import Any

import numpy as np

from assistant.readers.base import Extracted, ReaderLimits, Unreadable
from assistant.readers.pdf_layout import page_blocks
from assistant.readers.pdf_text import Assembler
from assistant.readers.pdf_lines import (
    PageChars,
    TableGrid,
    build_fragments,
    document_stats,
    drop_overprints,
    find_running,
)

logger = logging.getLogger(__name__)

_BOLD = re.compile(r"bold|black|heavy|semibold|demi|[-,]b$|extrab", re.IGNORECASE)
_LIGATURES = re.compile("[\ufb00-\ufb06]")
_SYMBOL_FONT = re.compile(r"dingbat|wingding|webding|symbol", re.IGNORECASE)
_ANSI_BULLETS = frozenset((0x7F, 0x81, 0x8D, 0x8F, 0x90, 0x9D))  # unused WinAnsi codes, drawn as bullets (PDF 1.7, D.2)
_MAX_SEGMENTS = 20_000  # ruling segments kept per page; a page drawing more is a drawing, not a table


def _device_class() -> type:
    """The pdfminer device, built lazily so that importing this module stays cheap."""
    from pdfminer.converter import PDFLayoutAnalyzer
    from pdfminer.pdffont import PDFUnicodeNotDefined
    from pdfminer.utils import apply_matrix_pt, apply_matrix_rect

    class GlyphCollector(PDFLayoutAnalyzer):
        """Keeps, per glyph, only what the layout needs; counts images; keeps straight ruling segments.

        This is the hot loop of PDF reading (once per glyph), hence the per-font cache and
        the arithmetic written out for the usual unrotated, unskewed text matrix.
        """

        def __init__(self, rsrcmgr: Any) -> None:
            super().__init__(rsrcmgr, pageno=1, laparams=None)
            self._fonts: dict[int, tuple[bool, bool, float, bool]] = {}  # id -> (vertical, bold, descent, symbol)
            self.undefined = 0
            self.rotated = 0
            self._clear()

        def _clear(self) -> None:
            self.glyphs: list[str] = []
            self.boxes: list[tuple[float, float, float, float, float, bool, bool]] = []
            self.segments: list[tuple[float, float, float, float]] = []
            self.images = 0
            self._space = False

        def begin_page(self, page: Any, ctm: Any) -> None:
            super().begin_page(page, ctm)
            self._clear()

        def _font(self, font: Any) -> tuple[bool, bool, float, bool]:
            key = id(font)
            known = self._fonts.get(key)
            if known is None:
                name = font.fontname.decode("latin-1") if isinstance(font.fontname, bytes) else str(font.fontname)
                descriptor = getattr(font, "descriptor", {}) or {}
                try:
                    weight = float(descriptor.get("FontWeight", 0) or 0)
                    flags = int(descriptor.get("Flags", 0) or 0)
                except (TypeError, ValueError):
                    weight, flags = 0.0, 0
                bold = bool(_BOLD.search(name.split("+")[-1])) or weight >= 600 or bool(flags & (1 << 18))
                known = (font.is_vertical(), bold, font.get_descent(), bool(_SYMBOL_FONT.search(name)))
                self._fonts[key] = known
            return known

        def render_char(self, matrix, font, fontsize, scaling, rise, cid, ncs, graphicstate):  # type: ignore[no-untyped-def]
            adv = font.char_width(cid) * fontsize * scaling
            vertical, bold, descent, symbol = self._font(font)
            try:
                text = font.to_unichr(cid)
            except PDFUnicodeNotDefined:
                if symbol or (cid in _ANSI_BULLETS and not font.is_multibyte()):
                    text = "•"  # an unmapped symbol-font glyph is, in practice, a bullet; so are these WinAnsi codes
                else:
                    self.undefined += 1
                    return adv
            a, b, c, d, e, f = matrix
            if vertical or not (a * d * scaling > 0 and b * c <= 0):
                self.rotated += 1
                return adv
            if not text or text.isspace():
                self._space = True
                return adv
            if not (len(text) == 1 and text.isprintable() and not "\ufb00" <= text <= "\ufb06"):
                text = _clean_glyph(text)
                if not text:
                    return adv
            low = descent * fontsize + rise
            high = low + fontsize
            if b == 0 and c == 0:
                x0, x1 = e, a * adv + e
                y0, y1 = d * low + f, d * high + f
            else:
                x0, y0, x1, y1 = apply_matrix_rect(matrix, (0, low, adv, high))
            if x1 < x0:
                x0, x1 = x1, x0
            if y1 < y0:
                y0, y1 = y1, y0
            self.glyphs.append(text)
            self.boxes.append((x0, y0, x1, y1, y1 - y0, bold, self._space))
            self._space = False
            return adv

        def render_image(self, name: str, stream: Any) -> None:
            self.images += 1

        def paint_path(self, gstate, stroke, fill, evenodd, path):  # type: ignore[no-untyped-def]
            """Keep the straight horizontal and vertical segments of painted paths: the rules of tables."""
            if not (stroke or fill) or len(self.segments) > _MAX_SEGMENTS:
                return
            ctm = self.ctm
            if fill and self._bullet_shape(path, ctm):
                return
            start = current = None
            for segment in path:
                op = segment[0]
                if op == "m":
                    start = current = apply_matrix_pt(ctm, segment[1:3])
                elif op == "l" and current is not None:
                    point = apply_matrix_pt(ctm, segment[1:3])
                    self._rule(current, point)
                    current = point
                elif op == "h" and current is not None and start is not None:
                    self._rule(current, start)
                    current = start
                elif op == "re":
                    x, y, w, h = segment[1:5]
                    corners = [apply_matrix_pt(ctm, p) for p in ((x, y), (x + w, y), (x + w, y + h), (x, y + h))]
                    for p, q in zip(corners, corners[1:] + corners[:1]):
                        self._rule(p, q)
                elif op in ("c", "v", "y"):
                    current = apply_matrix_pt(ctm, segment[-2:])

        def _bullet_shape(self, path: Any, ctm: Any) -> bool:
            """A small filled disc or square is a list bullet drawn as a shape (Chromium, LibreOffice): read it as "•"."""
            points = [apply_matrix_pt(ctm, seg[-2:]) for seg in path if seg[0] in ("m", "l", "c", "v", "y")]
            for seg in path:
                if seg[0] == "re":
                    x, y, w, h = seg[1:5]
                    points += [apply_matrix_pt(ctm, (x, y)), apply_matrix_pt(ctm, (x + w, y + h))]
            if len(points) < 2:
                return False
            xs, ys = [p[0] for p in points], [p[1] for p in points]
            width, height = max(xs) - min(xs), max(ys) - min(ys)
            if not (1.5 <= width <= 7 and 1.5 <= height <= 7 and abs(width - height) <= 1):
                return False
            self.glyphs.append("•")
            self.boxes.append((min(xs), min(ys), max(xs), max(ys), height, False, True))
            return True

        def _rule(self, p: tuple[float, float], q: tuple[float, float]) -> None:
            (x0, y0), (x1, y1) = p, q
            if (abs(x0 - x1) < 0.5 or abs(y0 - y1) < 0.5) and abs(x0 - x1) + abs(y0 - y1) >= 2:
                self.segments.append((min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)))

        def receive_layout(self, ltpage: Any) -> None:
            pass

    return GlyphCollector


def _clean_glyph(text: str) -> str:
    """Spell out ligatures ("ﬁ" -> "fi"), read a soft hyphen as a hyphen, drop control characters."""
    if _LIGATURES.search(text):
        text = unicodedata.normalize("NFKC", text)
    return "".join("-" if ch == "\u00ad" else ch for ch in text if unicodedata.category(ch) not in ("Cc", "Cs"))


def _page_frame(page: Any) -> tuple[float, float, float, float]:
    """Left and top of the crop box in pdfminer's device space (y up), and its width and height."""
    from pdfminer.utils import apply_matrix_rect

    x0, y0, x1, y1 = page.mediabox
    rotate = page.rotate
    ctm = {
        90: (0, -1, 1, 0, -y0, x1),
        180: (-1, 0, 0, -1, x1, y1),
        270: (0, 1, -1, 0, y1, -x0),
    }.get(rotate, (1, 0, 0, 1, -x0, -y0))
    crop = page.cropbox or page.mediabox
    cx0, cy0, cx1, cy1 = apply_matrix_rect(ctm, crop)
    mx0, my0, mx1, my1 = apply_matrix_rect(ctm, page.mediabox)
    cx0, cx1 = sorted((cx0, cx1))
    cy0, cy1 = sorted((cy0, cy1))
    cx0, cy0 = max(cx0, min(mx0, mx1)), max(cy0, min(my0, my1))
    cx1, cy1 = min(cx1, max(mx0, mx1)), min(cy1, max(my0, my1))
    return cx0, cy1, max(cx1 - cx0, 1.0), max(cy1 - cy0, 1.0)


def _take_page(device: Any, page: Any, number: int) -> PageChars:
    left, top_y, width, height = _page_frame(page)
    n = len(device.glyphs)
    boxes = np.asarray(device.boxes, dtype=np.float64).reshape(n, 7) if n else np.zeros((0, 7))
    x0 = (boxes[:, 0] - left).astype(np.float32)
    x1 = (boxes[:, 2] - left).astype(np.float32)
    top = (top_y - boxes[:, 3]).astype(np.float32)
    bottom = (top_y - boxes[:, 1]).astype(np.float32)
    cx, cy = (x0 + x1) / 2, (top + bottom) / 2
    visible = (cx >= 0) & (cx <= width) & (cy >= 0) & (cy <= height)  # text outside the crop box is not shown
    keep = np.flatnonzero(visible)
    pc = PageChars(
        number=number,
        width=float(width),
        height=float(height),
        glyphs=[device.glyphs[i] for i in keep.tolist()],
        x0=x0[keep],
        x1=x1[keep],
        top=top[keep],
        bottom=bottom[keep],
        size=boxes[keep, 4].astype(np.float32),
        bold=boxes[keep, 5].astype(bool),
        space_before=boxes[keep, 6].astype(bool),
        images=device.images,
    )
    if device.segments:
        seg = np.asarray(device.segments, dtype=np.float64)
        pc.segments = np.stack([seg[:, 0] - left, top_y - seg[:, 3], seg[:, 2] - left, top_y - seg[:, 1]], axis=1)
    drop_overprints(pc)
    return pc


def _open(fp: Any) -> Any:
    from pdfminer.pdfdocument import PDFDocument, PDFEncryptionError, PDFPasswordIncorrect
    from pdfminer.pdfparser import PDFParser

    try:
        return PDFDocument(PDFParser(fp), password="")
    except PDFPasswordIncorrect as exc:
        raise Unreadable("it is encrypted (it needs a password to open); save an unprotected copy to index it") from exc
    except PDFEncryptionError as exc:
        raise Unreadable(f"it is encrypted in a way the reader does not support ({exc}); save an unprotected copy") from exc


def _declared_pages(document: Any) -> int:
    from pdfminer.pdftypes import resolve1

    try:
        return int(resolve1(resolve1(document.catalog["Pages"]).get("Count", 0)) or 0)
    except (KeyError, TypeError, ValueError, AttributeError):
        return 0


def _collect_pages(path: Path, limits: ReaderLimits) -> tuple[list[PageChars], list[str]]:
    from pdfminer.pdfinterp import PDFPageInterpreter, PDFResourceManager
    from pdfminer.pdfpage import PDFPage

    notes: list[str] = []
    pages: list[PageChars] = []
    with path.open("rb") as fp:
        document = _open(fp)
        declared = _declared_pages(document)
        if declared > limits.max_pages:
            raise Unreadable(f"it has {declared:,} pages, over the limit of {limits.max_pages:,} (ReaderLimits.max_pages)")
        resources = PDFResourceManager(caching=True)
        device = _device_class()(resources)
        interpreter = PDFPageInterpreter(resources, device)
        total = 0
        for number, page in enumerate(PDFPage.create_pages(document), start=1):
            if number > limits.max_pages:
                raise Unreadable(f"it has more than {limits.max_pages:,} pages (ReaderLimits.max_pages)")
            interpreter.process_page(page)
            pc = _take_page(device, page, number)
            find_tables(pc)
            total += len(pc)
            if total > limits.max_chars:
                raise Unreadable(f"it has more than {limits.max_chars:,} characters of text (ReaderLimits.max_chars)")
            pages.append(pc)
        if device.undefined:
            notes.append(f"{device.undefined:,} glyphs have no Unicode mapping in their font and were left out")
        if device.rotated:
            notes.append(f"{device.rotated:,} rotated or vertical glyphs were left out")
        if device.undefined > max(total, 1):
            raise Unreadable(
                "its fonts do not say which letters their glyphs are, so no text can be extracted; run OCR on it first"
            )
    if not pages:
        raise Unreadable("it has no pages")
    return pages, notes


class _Frame:
    """What pdfplumber's table finder needs of a page when every line is given explicitly: its box."""

    def __init__(self, width: float, height: float) -> None:
        self.bbox = (0.0, 0.0, width, height)


def _edges(pc: PageChars) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    vertical: list[dict[str, Any]] = []
    horizontal: list[dict[str, Any]] = []
    for x0, top, x1, bottom in pc.segments.tolist():
        top, bottom = min(top, bottom), max(top, bottom)
        edge = {"object_type": "rule_edge", "x0": x0, "x1": x1, "top": top, "bottom": bottom, "width": x1 - x0, "height": bottom - top}
        if x1 - x0 < 0.5:
            edge.update(x1=x0, width=0.0, orientation="v")
            vertical.append(edge)
        else:
            edge.update(bottom=top, height=0.0, orientation="h")
            horizontal.append(edge)
    return vertical, horizontal


def find_tables(pc: PageChars) -> None:
    """Ruled tables of a page: pdfplumber's lattice finder, fed with the rules our device kept.

    Giving pdfplumber the lines explicitly spares it a second parse of the page (it would
    rebuild every glyph as a dict: half a second a page); the finder itself is unchanged.
    """
    if len(pc.segments) < 4 or not len(pc):
        return
    from pdfplumber.table import TableFinder

    vertical, horizontal = _edges(pc)
    if len(vertical) < 2 or len(horizontal) < 2:
        return
    settings = {
        "vertical_strategy": "explicit",
        "horizontal_strategy": "explicit",
        "explicit_vertical_lines": vertical,
        "explicit_horizontal_lines": horizontal,
    }
    for table in TableFinder(_Frame(pc.width, pc.height), settings).tables:  # type: ignore[arg-type]
        rows = [list(row.cells) for row in table.rows]
        if rows and max(len(row) for row in rows) >= 2:  # one row may be a header cut off by a page break
            pc.tables.append(TableGrid(bbox=tuple(table.bbox), rows=rows))  # type: ignore[arg-type]


def _check_tail(path: Path) -> None:
    with path.open("rb") as fp:
        fp.seek(0, 2)
        size = fp.tell()
        fp.seek(max(0, size - 8192))
        tail = fp.read()
    if b"%%EOF" not in tail:
        raise Unreadable("it is damaged or cut short (no end-of-file marker); download or export it again")


def extract_pdf(path: Path, limits: ReaderLimits) -> Extracted:
    """Read a PDF in this process (no time or memory limit: see `read_pdf`)."""
    from pdfminer.pdfexceptions import PDFException
    from pdfminer.psexceptions import PSException

    _check_tail(path)
    try:
        pages, notes = _collect_pages(path, limits)
    except Unreadable:
        raise
    except (PDFException, PSException, ValueError, KeyError, TypeError, AttributeError, IndexError, AssertionError) as exc:
        detail = " ".join(str(exc).split())[:120]
        raise Unreadable(f"it is damaged or not a valid PDF ({type(exc).__name__}: {detail})") from exc
    if not any(len(pc) for pc in pages):
        if any(pc.images for pc in pages):
            raise Unreadable("it has no text layer (its pages are images, e.g. a scan); run OCR on it first, e.g. ocrmypdf")
        raise Unreadable("it contains no text")
    without_text = [pc.number for pc in pages if not len(pc) and pc.images]
    if without_text:
        notes.append(f"pages without a text layer (images only), not indexed: {_page_list(without_text)}")
    fragments = [build_fragments(pc, index) for index, pc in enumerate(pages)]
    stats = document_stats(pages, fragments)
    running = find_running(pages, fragments, stats)
    assembler = Assembler(pages, stats)
    for index, (pc, frags) in enumerate(zip(pages, fragments)):
        body = [f for k, f in enumerate(frags) if (index, k) not in running]
        for block in page_blocks(pc, index, body, stats):
            assembler.write(block)
    text, geometry = assembler.finish()
    if not text.strip():
        raise Unreadable("it has no text besides running headers, footers and page numbers")
    return Extracted(text=text, kind="pdf", geometry=geometry, notes=tuple(notes))


def _page_list(numbers: list[int]) -> str:
    shown = ", ".join(str(n) for n in numbers[:20])
    return shown + (f" and {len(numbers) - 20} more" if len(numbers) > 20 else "")


def read_pdf(path: Path, limits: ReaderLimits) -> Extracted:
    """Read a PDF within `limits`: in a child process with a time and memory limit unless `limits.isolate` is off."""
    if not limits.isolate:
        return extract_pdf(path, limits)
    from assistant.readers.sandbox import run_limited

    return run_limited(extract_pdf, path, limits, timeout_s=limits.timeout_s, max_memory_bytes=limits.max_memory_bytes)
