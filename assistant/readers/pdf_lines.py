"""From positioned glyphs to line fragments, plus the document statistics the layout needs.

A *line fragment* is a run of glyphs on one baseline with no gap wider than about one em:
the words of one line of one column. Two columns never share a fragment (their gutter is
wider than an em), so fragments are the units that reading order and paragraphs are built
from. Fragments are found from the content-stream order first (how almost every producer
draws text), then pieces of one line drawn out of order are merged by position.

Everything here works on one page's glyph arrays (`PageChars`), vectorised with numpy: a
500-page PDF has over a million glyphs, and a Python loop per glyph costs seconds.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np

WORD_GAP = 0.2  # a gap wider than this many ems between two glyphs is a space
FRAGMENT_GAP = 1.0  # a gap wider than this many ems starts a new fragment (a column gutter, a tab stop)
MARGIN_BAND = 0.1  # running headers live in the top and bottom tenth of the page


@dataclass
class TableGrid:
    """A ruled table found on a page: its outline and, row by row, each cell's rectangle (None where merged)."""

    bbox: tuple[float, float, float, float]  # x0, top, x1, bottom
    rows: list[list[tuple[float, float, float, float] | None]]


@dataclass
class PageChars:
    """The glyphs of one page in drawing order, in display coordinates (points, origin top left)."""

    number: int  # 1-based
    width: float
    height: float
    glyphs: list[str]
    x0: np.ndarray
    x1: np.ndarray
    top: np.ndarray
    bottom: np.ndarray
    size: np.ndarray
    bold: np.ndarray  # bool
    space_before: np.ndarray  # bool: the PDF drew a space (or we decided there is one) before this glyph
    images: int = 0
    segments: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))  # straight rules: x0, top, x1, bottom
    tables: list[TableGrid] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.glyphs)

    def reorder(self, order: np.ndarray) -> None:
        """Permute every glyph array by `order` (so that each fragment becomes one contiguous range)."""
        self.glyphs = [self.glyphs[i] for i in order.tolist()]
        for name in ("x0", "x1", "top", "bottom", "size", "bold", "space_before"):
            setattr(self, name, getattr(self, name)[order])


@dataclass
class Fragment:
    """Glyphs `start:end` of a page (after `PageChars.reorder`): one stretch of one line."""

    page: int  # 0-based index into the document's pages
    start: int
    end: int
    x0: float
    top: float
    x1: float
    bottom: float
    size: float
    bold: bool
    text: str  # the glyphs, a space at each word break: for classification, never quoted as is
    table: int = -1  # index of the page's table the fragment lies in, -1 when outside every table
    first_word_x1: float = 0.0  # where the first word ends: would it have fitted on the line above?

    @property
    def height(self) -> float:
        return self.bottom - self.top


def _runs(breaks: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) of the runs of a sequence whose element i starts a new run when breaks[i]."""
    starts = np.flatnonzero(breaks).tolist()
    ends = starts[1:] + [len(breaks)]
    return list(zip(starts, ends))


def drop_overprints(pc: PageChars) -> None:
    """Remove glyphs drawn twice at (almost) the same place: "fake bold" and shadows would double every letter."""
    n = len(pc)
    if n < 2:
        return
    same = np.array([pc.glyphs[i] == pc.glyphs[i - 1] for i in range(1, n)], dtype=bool)
    width = np.maximum(pc.x1[1:] - pc.x0[1:], 0.1)
    close = (np.abs(pc.x0[1:] - pc.x0[:-1]) < 0.3 * width) & (np.abs(pc.top[1:] - pc.top[:-1]) < 0.25 * pc.size[1:])
    keep = np.concatenate(([True], ~(same & close)))
    if not keep.all():
        pc.reorder(np.flatnonzero(keep))


def _cells_of(pc: PageChars) -> tuple[np.ndarray, dict[int, int]]:
    """A region id per glyph (the table cell its centre lies in, -1 outside tables) and each region's table.

    Fragments never cross a region boundary, so "Adults 19 to 50" and "1000" in adjacent
    cells stay apart even when the cell padding is narrower than a word space.
    """
    region = np.full(len(pc), -1, dtype=np.int32)
    table_of: dict[int, int] = {-1: -1}
    cx, cy = (pc.x0 + pc.x1) / 2, (pc.top + pc.bottom) / 2
    next_id = 0
    for k, table in enumerate(pc.tables):
        x0, top, x1, bottom = table.bbox
        region[(cx >= x0) & (cx <= x1) & (cy >= top) & (cy <= bottom)] = next_id  # in the table, in no cell
        table_of[next_id] = k
        next_id += 1
        for row in table.rows:
            for cell in row:
                if cell is None:
                    continue
                region[(cx >= cell[0]) & (cx <= cell[2]) & (cy >= cell[1]) & (cy <= cell[3])] = next_id
                table_of[next_id] = k
                next_id += 1
    return region, table_of


def build_fragments(pc: PageChars, page_index: int) -> list[Fragment]:
    """Cut a page's glyphs into line fragments, reordering the page's arrays so each is contiguous."""
    n = len(pc)
    if n == 0:
        return []
    region, table_of = _cells_of(pc)
    em = np.maximum(pc.size[1:], pc.size[:-1])
    small_em = np.minimum(pc.size[1:], pc.size[:-1])  # a heading beside body text: the gutter is judged by the body
    gap = pc.x0[1:] - pc.x1[:-1]
    overlap = np.minimum(pc.bottom[1:], pc.bottom[:-1]) - np.maximum(pc.top[1:], pc.top[:-1])
    min_height = np.minimum(pc.bottom[1:] - pc.top[1:], pc.bottom[:-1] - pc.top[:-1])
    new_line = (
        (overlap < 0.5 * min_height)
        | (gap > FRAGMENT_GAP * np.maximum(small_em, 0.5 * em))
        | (gap < -0.5 * em)
        | (region[1:] != region[:-1])
    )
    breaks = np.concatenate(([True], new_line))
    pc.space_before[1:] |= gap > WORD_GAP * em
    pieces = [np.arange(s, e) for s, e in _runs(breaks)]
    pieces = _merge_same_line(pc, pieces, region)
    order = np.concatenate(pieces)
    pc.reorder(order)
    region = region[order]
    fragments: list[Fragment] = []
    start = 0
    for piece in pieces:
        end = start + len(piece)
        pc.space_before[start] = False
        fragments.append(_fragment(pc, page_index, start, end, table_of[int(region[start])]))
        start = end
    return _drop_duplicates(fragments)


def _merge_same_line(pc: PageChars, pieces: list[np.ndarray], region: np.ndarray) -> list[np.ndarray]:
    """Join pieces of one line that were drawn out of order (same baseline, touching in x)."""
    if len(pieces) < 2:
        return pieces
    starts = np.array([p[0] for p in pieces])  # pieces are still consecutive runs here
    bottoms = np.maximum.reduceat(pc.bottom, starts).tolist()
    lefts = np.minimum.reduceat(pc.x0, starts).tolist()
    rights = np.maximum.reduceat(pc.x1, starts).tolist()
    sizes = pc.size[starts].tolist()
    regions = region[starts].tolist()
    order = sorted(range(len(pieces)), key=lambda i: (round(bottoms[i]), lefts[i]))
    merged: list[list[int]] = []
    for i in order:
        if merged:
            last = merged[-1][-1]
            em, small_em = max(sizes[i], sizes[last]), min(sizes[i], sizes[last])
            if (
                regions[last] == regions[i]
                and abs(bottoms[last] - bottoms[i]) <= 0.3 * em
                and -0.5 * em <= lefts[i] - rights[last] <= FRAGMENT_GAP * max(small_em, 0.5 * em)
            ):
                merged[-1].append(i)
                continue
        merged.append([i])
    if len(merged) == len(pieces):
        return pieces  # nothing merged: keep the drawing order
    out = []
    for group in merged:
        for later in group[1:]:
            pc.space_before[pieces[later][0]] = True
        out.append(np.concatenate([pieces[i] for i in group]))
    out.sort(key=lambda p: int(p.min()))  # keep drawing order between lines
    return out


def word_spans(pc: PageChars, start: int, end: int) -> list[tuple[int, int]]:
    """(start, end) of each word of glyphs `start:end`."""
    cuts = (np.flatnonzero(pc.space_before[start + 1 : end]) + start + 1).tolist()
    bounds = [start, *cuts, end]
    return list(pairwise(bounds))


def _fragment(pc: PageChars, page_index: int, start: int, end: int, table: int) -> Fragment:
    words = word_spans(pc, start, end)
    glyphs = pc.glyphs
    return Fragment(
        page=page_index,
        start=start,
        end=end,
        x0=float(pc.x0[start:end].min()),
        top=float(pc.top[start:end].min()),
        x1=float(pc.x1[start:end].max()),
        bottom=float(pc.bottom[start:end].max()),
        size=sorted(pc.size[start:end].tolist())[(end - start) // 2],  # the median, without numpy's overhead
        bold=bool(pc.bold[start:end].all()),
        text=" ".join("".join(glyphs[a:b]) for a, b in words),
        table=table,
        first_word_x1=float(pc.x1[words[0][0] : words[0][1]].max()),
    )


def _drop_duplicates(fragments: list[Fragment]) -> list[Fragment]:
    """Drop a fragment that repeats another's text at (almost) the same place (overprinted lines)."""
    seen: dict[str, list[Fragment]] = defaultdict(list)
    kept: list[Fragment] = []
    for frag in fragments:
        if any(abs(o.x0 - frag.x0) < 1.5 and abs(o.top - frag.top) < 1.5 for o in seen[frag.text]):
            continue
        seen[frag.text].append(frag)
        kept.append(frag)
    return kept


# ---------------------------------------------------------------- document statistics


@dataclass(frozen=True)
class DocumentStats:
    """What "normal" looks like in this document: body font size, line spacing, words seen."""

    body_size: float
    body_bold: bool
    paragraph_gap: float  # a vertical gap wider than this (points) separates paragraphs
    words: frozenset[str]  # lower-case words seen whole (not split at a line end)
    hyphenated: frozenset[str]  # lower-case words seen with an inner hyphen ("well-known")


_WORD = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*", re.UNICODE)


def document_stats(pages: list[PageChars], fragments: list[list[Fragment]]) -> DocumentStats:
    sizes: Counter[float] = Counter()
    bold_chars = 0
    gaps: Counter[float] = Counter()
    words: set[str] = set()
    hyphenated: set[str] = set()
    for pc, frags in zip(pages, fragments):
        if len(pc):
            rounded = np.round(pc.size * 2) / 2
            values, counts = np.unique(rounded, return_counts=True)
            sizes.update(dict(zip(values.tolist(), counts.tolist())))
        for frag in frags:
            tokens = _WORD.findall(frag.text.lower())
            if frag.text.endswith("-") and tokens:
                tokens = tokens[:-1]  # "magne-" at a line end is half a word
            for token in tokens:
                (hyphenated if "-" in token else words).add(token)
        for a, b in pairwise(frags):  # drawing order: b is usually the next line of a
            if b.top > a.top and min(a.x1, b.x1) - max(a.x0, b.x0) > 0 and b.top - a.bottom < 3 * a.size:
                gaps[round((b.top - a.bottom) * 2) / 2] += 1
    body_size = max(sizes.items(), key=lambda kv: (kv[1], -kv[0]))[0] if sizes else 10.0
    for pc in pages:
        if len(pc):
            bold_chars += int(pc.bold[np.abs(pc.size - body_size) < 0.6].sum())
    body_total = sum(count for size, count in sizes.items() if abs(size - body_size) < 0.6)
    line_gap = max(gaps.items(), key=lambda kv: (kv[1], -kv[0]))[0] if gaps else 0.2 * body_size
    return DocumentStats(
        body_size=body_size,
        body_bold=body_total > 0 and bold_chars > body_total / 2,
        paragraph_gap=max(line_gap, 0.0) + max(0.3 * body_size, 2.0),
        words=frozenset(words),
        hyphenated=frozenset(hyphenated),
    )


# ---------------------------------------------------------------- running headers and footers

_PAGE_NUMBER = re.compile(
    r"(?:page|p\.|pg\.?|seite|página|pagina)?\s*[-–—]?\s*"
    r"(?:\d{1,5}|(?=[ivxlcdm])m{0,3}(?:c[md]|d?c{0,3})(?:x[cl]|l?x{0,3})(?:i[xv]|v?i{0,3}))\s*[-–—]?"
    r"(?:\s*(?:/|of|von|de|sur)\s*\d{1,5})?",
    re.IGNORECASE,
)


# What a browser or printer stamps in a margin even on a single page: a URL, a date and time.
_PRINT_STAMP = re.compile(r"(?:https?|file)://\S+|[\d/.:,\- ]+(?:[AaPp]\.?[Mm]\.?)?", re.IGNORECASE)


def _normalise(text: str) -> str:
    return re.sub(r"\d+", "#", " ".join(text.lower().split()))


def find_running(pages: list[PageChars], fragments: list[list[Fragment]], stats: DocumentStats) -> set[tuple[int, int]]:
    """(page index, fragment index) of running headers, footers and page numbers: never part of the text.

    A fragment in the top or bottom tenth of a page is running when:

    - the same text (digits ignored, so "Page 3" matches "Page 4") sits at the same height
      on several pages (2 in a document of up to 4 pages, 3 beyond);
    - it is a bare page number ("12", "Page 3 of 9", "iv"), or a URL or a date and time
      alone (what browsers print in the margins), set apart from the body by a paragraph
      gap; these need no repetition, so even a one-page document loses them;
    - its text changes (a chapter title as running head) but it sits at the same height on
      at least half the pages (and 3), set apart from the body by more than a paragraph gap,
      in type no larger than the body's: so slide titles and first lines of text stay.
    """
    seen: dict[tuple[str, str], list[tuple[int, int, float]]] = defaultdict(list)
    slots: dict[tuple[str, int], list[tuple[int, int]]] = defaultdict(list)
    running: set[tuple[int, int]] = set()
    for p, (pc, frags) in enumerate(zip(pages, fragments)):
        for f, frag in enumerate(frags):
            if frag.table >= 0:
                continue
            band = "top" if frag.top < MARGIN_BAND * pc.height else "bottom" if frag.bottom > (1 - MARGIN_BAND) * pc.height else ""
            if not band:
                continue
            stamp = _PAGE_NUMBER.fullmatch(frag.text.strip()) or _PRINT_STAMP.fullmatch(frag.text.strip())
            if stamp and _set_apart(frag, frags, band, stats.paragraph_gap):  # not a number in the last line of a table
                running.add((p, f))
                continue
            seen[(band, _normalise(frag.text))].append((p, f, frag.top))
            if frag.size <= stats.body_size + 0.5 and _set_apart(frag, frags, band, 1.5 * stats.paragraph_gap):
                slots[(band, round(frag.top / 2))].append((p, f))
    needed = 2 if len(pages) <= 4 else 3
    for places in seen.values():
        if len({p for p, _, _ in places}) < needed:
            continue
        tops = sorted(top for _, _, top in places)
        middle = tops[len(tops) // 2]
        near = [(p, f) for p, f, top in places if abs(top - middle) <= 4.0]
        if len({p for p, _ in near}) >= needed:
            running.update(near)
    for members in slots.values():
        if len({p for p, _ in members}) >= max(3, len(pages) / 2):
            running.update(members)
    return running


def _set_apart(frag: Fragment, frags: list[Fragment], band: str, gap: float) -> bool:
    """Nothing above (top band) or below (bottom band) it, and nothing within `gap` on the body side."""
    for other in frags:
        if other is frag or other.bottom > frag.top and other.top < frag.bottom:
            continue  # itself, or on the same line
        if band == "top" and (other.bottom <= frag.top or other.top - frag.bottom < gap):
            return False
        if band == "bottom" and (other.top >= frag.bottom or frag.top - other.bottom < gap):
            return False
    return True
