"""Reading order and blocks of a PDF page, and the text (with its geometry) they become.

Reading order is a recursive XY-cut over the page's line fragments and tables: a region is
split at a vertical gutter that no fragment crosses (columns, left to right), else at
horizontal gaps wider than a paragraph gap (bands, top to bottom). Adjacent bands that
share a gutter are merged before being cut into columns, so two columns whose paragraph
breaks happen to line up are still read column 1 then column 2 (plain XY-cut would
interleave them), and a full-width title or table between column blocks stays where it is.

Inside a region, fragments become lines, and lines become blocks: headings (font size at
least 12% above the body size, or bold when the body is not), list items (a bullet glyph,
or `1.`/`a)` after a line that ends a sentence), paragraphs (split at a gap, a first-line
indent, or a short line ending a sentence) and ruled tables (pdfplumber's table finder).

`pdf_text.Assembler` writes the blocks as text with per-character geometry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from assistant.readers.pdf_lines import DocumentStats, Fragment, PageChars, TableGrid

_BULLETS = frozenset("•◦▪▫‣⁃●○■□►▶➢➤✓✔❖◆◇∙·*") | frozenset(chr(c) for c in range(0xF0A0, 0xF0FF))
_DASHES = frozenset("-–—")
_NUMBERED = re.compile(r"(?:\d{1,3}[.)]|\(\d{1,3}\)|[a-z][.)]|\([a-z]\))")
_TERMINAL = re.compile(r"[.!?:;][\"'”’)\]]*$")
_RULE_ONLY = re.compile(r"[-=_*·•.\s]+")
_HYPHENS = frozenset("-\u2010\u2011")


# ---------------------------------------------------------------- reading order (XY-cut)


@dataclass
class TableUnit:
    index: int
    grid: TableGrid
    cells: list[list[list[Fragment]]]  # row -> cell -> fragments

    @property
    def x0(self) -> float:
        return self.grid.bbox[0]

    @property
    def top(self) -> float:
        return self.grid.bbox[1]

    @property
    def x1(self) -> float:
        return self.grid.bbox[2]

    @property
    def bottom(self) -> float:
        return self.grid.bbox[3]


Unit = Fragment | TableUnit


def _gaps(intervals: list[tuple[float, float]], min_gap: float) -> list[float]:
    """Cut positions: the middles of gaps of at least `min_gap` in the union of `intervals`."""
    cuts: list[float] = []
    ordered = sorted(intervals)
    reach = ordered[0][1]
    for lo, hi in ordered[1:]:
        if lo - reach >= min_gap:
            cuts.append((lo + reach) / 2)
        reach = max(reach, hi)
    return cuts


def _split(units: list[Unit], cuts: list[float], vertical: bool) -> list[list[Unit]]:
    groups: list[list[Unit]] = [[] for _ in range(len(cuts) + 1)]
    for unit in units:
        centre = (unit.x0 + unit.x1) / 2 if vertical else (unit.top + unit.bottom) / 2
        groups[sum(centre > c for c in cuts)].append(unit)
    return [g for g in groups if g]


def _text_left(unit: Unit) -> float:
    """Left edge for finding gutters: a list bullet may hang into the gutter, its text does not."""
    return unit.parts[-1].x0 if isinstance(unit, _MergedFragment) else unit.x0


def _columns(units: list[Unit], min_gap: float) -> list[list[Unit]]:
    """Split at vertical gutters, unless a side is a single line level with a line across the gap.

    That is a wide space inside one line (a justified heading, a tab), not a gutter: cutting
    there would read "Good sources" and "of" as two blocks.
    """
    cuts = _gaps([(_text_left(u), u.x1) for u in units], min_gap)
    if not cuts:
        return [units]
    groups = _split(units, cuts, vertical=True)
    for n, group in enumerate(groups):
        tops = {round(u.top) for u in group}
        if len(tops) > 1 or isinstance(group[0], TableUnit):
            continue
        lone = group[0]
        neighbours = (groups[n - 1] if n else []) + (groups[n + 1] if n + 1 < len(groups) else [])
        if any(min(u.bottom, lone.bottom) - max(u.top, lone.top) > 0.5 * min(u.bottom - u.top, lone.bottom - lone.top) for u in neighbours):
            return [units]
    return groups


def reading_order(units: list[Unit], *, col_gap: float, row_gap: float, _depth: int = 0) -> list[list[Unit]]:
    """Regions of the page in reading order; each region is read top to bottom."""
    if len(units) <= 1 or _depth > 40:
        return [units] if units else []
    columns = _columns(units, col_gap)
    if len(columns) > 1:
        return [r for col in columns for r in reading_order(col, col_gap=col_gap, row_gap=row_gap, _depth=_depth + 1)]
    cuts = _gaps([(u.top, u.bottom) for u in units], row_gap)
    if not cuts:
        return [units]
    bands = _split(units, cuts, vertical=False)
    groups: list[list[Unit]] = []
    split_before = False
    for band in bands:
        split_here = len(_columns(band, col_gap)) > 1
        if groups and (split_here or split_before) and len(_columns(groups[-1] + band, col_gap)) > 1:
            groups[-1] = groups[-1] + band  # same gutter: these bands are one stretch of columns
            split_before = True
            continue
        groups.append(band)
        split_before = split_here
    regions: list[list[Unit]] = []
    for group in groups:
        if len(group) == len(units):
            regions.append(sorted(group, key=lambda u: (u.top, u.x0)))  # cannot cut further
        else:
            regions.extend(reading_order(group, col_gap=col_gap, row_gap=row_gap, _depth=_depth + 1))
    return regions


# ---------------------------------------------------------------- lines and blocks


@dataclass
class Line:
    fragments: list[Fragment]

    @property
    def x0(self) -> float:
        return self.fragments[0].x0

    @property
    def x1(self) -> float:
        return max(f.x1 for f in self.fragments)

    @property
    def top(self) -> float:
        return min(f.top for f in self.fragments)

    @property
    def bottom(self) -> float:
        return max(f.bottom for f in self.fragments)

    @property
    def size(self) -> float:
        return max(f.size for f in self.fragments)

    @property
    def bold(self) -> bool:
        return all(f.bold for f in self.fragments)

    @property
    def text(self) -> str:
        return " ".join(f.text for f in self.fragments)


@dataclass
class Block:
    kind: str  # heading, paragraph, list, table
    page: int
    size: float
    level: int = 0
    lines: list[Line] = field(default_factory=list)  # heading, paragraph
    items: list[list[Line]] = field(default_factory=list)  # list: each item's lines, the first starts with its marker
    table: TableUnit | None = None
    first_in_region: bool = False
    new_column: bool = False  # the region it starts moved up and right: a new column or page


def _lines(fragments: list[Fragment]) -> list[Line]:
    lines: list[Line] = []
    for frag in sorted(fragments, key=lambda f: (f.top, f.x0)):
        if lines:
            line = lines[-1]
            first = line.fragments[0]
            overlap = min(first.bottom, frag.bottom) - max(first.top, frag.top)
            if overlap >= 0.5 * min(first.height, frag.height):
                line.fragments.append(frag)
                line.fragments.sort(key=lambda f: f.x0)
                continue
        lines.append(Line([frag]))
    return lines


def _heading_level(line: Line, stats: DocumentStats) -> int:
    """1-3 by how much bigger than the body the line is, 4 for bold body text, 0 for body text."""
    ratio = line.size / stats.body_size if stats.body_size else 1.0
    if ratio >= 1.6:
        return 1
    if ratio >= 1.3:
        return 2
    if ratio >= 1.12 and line.size - stats.body_size >= 0.9:
        return 3
    if line.bold and not stats.body_bold and ratio > 0.9:
        return 4
    return 0


def _marker(line: Line) -> str:
    """'bullet', 'dash', 'number' or '' for the start of a line."""
    first = line.fragments[0].text.split(" ", 1)
    word, rest = first[0], (first[1] if len(first) > 1 else "" if len(line.fragments) == 1 else "x")
    if not rest:
        return ""
    if word in _BULLETS or (len(word) > 1 and word[0] in _BULLETS and word[0] not in "*·"):
        return "bullet"
    if word in _DASHES:
        return "dash"
    if _NUMBERED.fullmatch(word):
        return "number"
    return ""


def _ends_sentence(line: Line) -> bool:
    return bool(_TERMINAL.search(line.text))


def _looks_like_heading(lines: list[Line]) -> bool:
    text = " ".join(line.text for line in lines)
    return len(text.split()) <= 20 and len(text) <= 200 and not text.rstrip().endswith((".", ",", ";"))


def blocks_of_region(units: list[Unit], page: int, stats: DocumentStats) -> list[Block]:
    """The headings, paragraphs, lists and tables of one region, top to bottom."""
    blocks: list[Block] = []
    fragments = [u for u in units if isinstance(u, Fragment)]
    tables = [u for u in units if isinstance(u, TableUnit)]
    lines = _lines(fragments)
    items: list[tuple[float, Line | TableUnit]] = [(ln.top, ln) for ln in lines] + [(t.top, t) for t in tables]
    items.sort(key=lambda pair: pair[0])
    left = min((ln.x0 for ln in lines), default=0.0)
    right = max((ln.x1 for ln in lines), default=0.0)
    current: Block | None = None
    previous: Line | None = None
    item_x = 0.0  # where the text of the current list item starts (after its marker)
    for _, entry in items:
        if isinstance(entry, TableUnit):
            blocks.append(Block("table", page, stats.body_size, table=entry))
            current, previous = None, None
            continue
        line = entry
        if _RULE_ONLY.fullmatch(line.text):
            continue  # a row of dashes or dots drawn as text: decoration, and Markdown would read it as a rule
        level = _heading_level(line, stats)
        marker = _marker(line) if not level else ""
        gap = line.top - previous.bottom if previous is not None else 0.0
        em = line.size
        starts_new = (
            current is None
            or previous is None
            or gap > stats.paragraph_gap
            or (current.kind == "heading") != bool(level)
            or (level and current.level != level)
            or abs(line.size - previous.size) > 1.0
        )
        if not starts_new and current is not None and previous is not None:
            ended_early = _ended_early(previous, line, right)
            after_break = _ends_sentence(previous) or ended_early
            if marker == "bullet" or (marker and (after_break or current.kind == "list")):
                if current.kind == "list":
                    current.items.append([line])
                    item_x = _item_text_x(line)
                    previous = line
                    continue
                starts_new = True
            elif current.kind == "list":
                if line.x0 < item_x - 0.5 * em:
                    starts_new = True  # back to the left edge: the list is over
                else:
                    current.items[-1].append(line)
                    previous = line
                    continue
            elif current.kind == "paragraph":
                indented = line.x0 - left > 0.8 * em and previous.x0 - left < 0.3 * em
                starts_new = indented or (ended_early and _ends_sentence(previous))
        if starts_new:
            if level:
                current = Block("heading", page, line.size, level=level, lines=[line])
            elif marker:
                current = Block("list", page, line.size, items=[[line]])
                item_x = _item_text_x(line)
            else:
                current = Block("paragraph", page, line.size, lines=[line])
            blocks.append(current)
        elif current is not None:
            current.lines.append(line)
        previous = line
    for block in blocks:  # a "heading" that reads like a sentence is a bold or large paragraph
        if block.kind == "heading" and not _looks_like_heading(block.lines):
            block.kind, block.level = "paragraph", 0
    return blocks


def _ended_early(previous: Line, line: Line, right: float) -> bool:
    """The line above stopped although the first word of this one would have fitted: a deliberate break."""
    first = line.fragments[0]
    return right - previous.x1 > (first.first_word_x1 - first.x0) + 0.3 * first.size


def _item_text_x(line: Line) -> float:
    """Where the text of a list item starts, after its marker: continuation lines align there."""
    frag = line.fragments[0]
    if isinstance(frag, _MergedFragment):
        return frag.parts[1].x0
    return frag.first_word_x1 + 0.25 * frag.size


def page_blocks(pc: PageChars, page: int, fragments: list[Fragment], stats: DocumentStats) -> list[Block]:
    """Blocks of one page in reading order (running headers and footers already removed)."""
    units: list[Unit] = []
    cells: dict[int, TableUnit] = {}
    for k, grid in enumerate(pc.tables):
        cells[k] = TableUnit(k, grid, [[[] for _ in row] for row in grid.rows])
    for frag in _attach_markers(fragments):
        if frag.table >= 0 and _place_in_cell(frag, cells[frag.table]):
            continue
        units.append(frag)
    units.extend(t for t in cells.values() if any(any(cell) for row in t.cells for cell in row))
    col_gap = 0.5 * stats.body_size
    blocks: list[Block] = []
    last_region: list[Unit] | None = None
    for region in reading_order(units, col_gap=col_gap, row_gap=stats.paragraph_gap):
        region_blocks = blocks_of_region(region, page, stats)
        if region_blocks:
            region_blocks[0].first_in_region = True
            if last_region is not None:
                region_blocks[0].new_column = min(u.top for u in region) < max(u.bottom for u in last_region)
            last_region = region
        blocks.extend(region_blocks)
    return blocks


def _is_marker(text: str) -> bool:
    return text in _BULLETS or text in _DASHES or _NUMBERED.fullmatch(text) is not None


def _attach_markers(fragments: list[Fragment]) -> list[Fragment]:
    """Glue a lone bullet or number ("•", "1.") to the text on its right, however wide the gap.

    Otherwise a list drawn with a tab after each marker has a "column" of markers, and the
    XY-cut would read all the markers first and all the items after.
    """
    markers = [f for f in fragments if _is_marker(f.text)]
    if not markers:
        return fragments
    partner: dict[int, Fragment] = {}
    for marker in markers:
        candidates = [
            f for f in fragments
            if f is not marker and f.table == marker.table and not _is_marker(f.text)
            and 0 <= f.x0 - marker.x1 <= 4 * max(marker.size, f.size)
            and min(f.bottom, marker.bottom) - max(f.top, marker.top) >= 0.5 * min(f.height, marker.height)
        ]
        taken = {id(f) for f in partner.values()}
        candidates = [f for f in candidates if id(f) not in taken]
        if candidates:
            partner[id(marker)] = min(candidates, key=lambda f: f.x0)
    absorbed = {id(f) for f in partner.values()}
    out: list[Fragment] = []
    for frag in fragments:
        if id(frag) in partner:
            out.append(_MergedFragment.of(frag, partner[id(frag)]))
        elif id(frag) not in absorbed:
            out.append(frag)
    return out


@dataclass
class _MergedFragment(Fragment):
    """A marker fragment and the text fragment it belongs to, read as one."""

    parts: tuple[Fragment, ...] = ()

    @classmethod
    def of(cls, marker: Fragment, text: Fragment) -> _MergedFragment:
        return cls(
            page=marker.page, start=marker.start, end=marker.end, x0=marker.x0, top=min(marker.top, text.top),
            x1=text.x1, bottom=max(marker.bottom, text.bottom), size=text.size, bold=text.bold,
            text=f"{marker.text} {text.text}", table=marker.table, parts=(marker, text), first_word_x1=marker.x1,
        )


def _place_in_cell(frag: Fragment, table: TableUnit) -> bool:
    cx, cy = (frag.x0 + frag.x1) / 2, (frag.top + frag.bottom) / 2
    for r, row in enumerate(table.grid.rows):
        for c, cell in enumerate(row):
            if cell is not None and cell[0] <= cx <= cell[2] and cell[1] <= cy <= cell[3]:
                table.cells[r][c].append(frag)
                return True
    return False
