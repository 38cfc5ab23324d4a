"""The text of a PDF's blocks, with per-character geometry: what `Assembler` writes.

`assemble` writes the blocks of `pdf_layout` as the Markdown-like text the chunker reads (headings
as `#` lines, list items as `- `, ruled tables as pipe rows with a `|---|` separator) and records,
for every character, the line fragment it came from (or -1 for what the reader inserted). A
paragraph or a table that runs on from the page before is joined to it; a word hyphenated across
a line end is joined (see `Assembler._join_lines`).
"""

from __future__ import annotations

import re

import numpy as np

from assistant.readers.geometry import PageGeometry
from assistant.readers.pdf_layout import (
    _HYPHENS, Block, Line, TableUnit, _ends_sentence, _lines, _marker, _MergedFragment,
)
from assistant.readers.pdf_lines import DocumentStats, Fragment, PageChars, word_spans


class TextBuilder:
    """Appends text while recording, per character, the line fragment it was drawn in (-1: inserted)."""

    def __init__(self, pages: list[PageChars]) -> None:
        self.pages = pages
        self.parts: list[str] = []
        self.lines: list[np.ndarray] = []
        self.x0: list[np.ndarray] = []
        self.x1: list[np.ndarray] = []
        self.length = 0
        self.line_page: list[int] = []
        self.line_top: list[float] = []
        self.line_bottom: list[float] = []
        self.page_starts: list[int | None] = [None] * len(pages)

    def insert(self, text: str) -> None:
        if not text:
            return
        n = len(text)
        self.parts.append(text)
        self.lines.append(np.full(n, -1, dtype=np.int32))
        self.x0.append(np.zeros(n, dtype=np.float32))
        self.x1.append(np.zeros(n, dtype=np.float32))
        self.length += n

    def glyphs(self, frag: Fragment, start: int | None = None, end: int | None = None) -> None:
        """Write glyphs `start:end` of a fragment (all by default), a space at each word break."""
        if isinstance(frag, _MergedFragment):
            marker, text = frag.parts
            self.glyphs(marker)
            self.insert(" ")
            self.glyphs(text)
            return
        pc = self.pages[frag.page]
        lo = frag.start if start is None else start
        hi = frag.end if end is None else end
        if hi <= lo:
            return
        line_id = len(self.line_page)
        self.line_page.append(frag.page + 1)
        self.line_top.append(frag.top)
        self.line_bottom.append(frag.bottom)
        if self.page_starts[frag.page] is None:
            self.page_starts[frag.page] = self.length
        words = [(max(a, lo), b) for a, b in word_spans(pc, frag.start, frag.end) if b > lo and a < hi]
        words = [(a, min(b, hi)) for a, b in words]
        parts = ["".join(pc.glyphs[a:b]) for a, b in words]
        joined = " ".join(parts)
        if len(joined) == (hi - lo) + len(words) - 1:  # one character per glyph: the usual case, vectorised
            index = np.full(len(joined), -1, dtype=np.int64)
            lengths = [b - a for a, b in words]
            shift = np.repeat(np.arange(len(words)), lengths)  # one inserted space before each later word
            index[np.arange(hi - lo) + shift] = np.arange(lo, hi)
        else:  # ligatures spelled out and the like: several characters share a glyph's box
            per_char: list[int] = []
            for n, (a, b) in enumerate(words):
                if n:
                    per_char.append(-1)
                for i in range(a, b):
                    per_char.extend([i] * len(pc.glyphs[i]))
            index = np.asarray(per_char, dtype=np.int64)
        drawn = index >= 0
        safe = np.where(drawn, index, 0)
        self.parts.append(joined)
        self.lines.append(np.where(drawn, line_id, -1).astype(np.int32))
        self.x0.append(np.where(drawn, pc.x0[safe], 0).astype(np.float32))
        self.x1.append(np.where(drawn, pc.x1[safe], 0).astype(np.float32))
        self.length += len(joined)

    def last_char(self) -> str:
        return self.parts[-1][-1] if self.parts and self.parts[-1] else ""

    def last_word(self) -> str:
        tail = "".join(self.parts[-3:])
        match = re.search(r"(\w+)\W?$", tail)
        return match.group(1) if match else ""

    def drop_last_char(self) -> None:
        self.parts[-1] = self.parts[-1][:-1]
        for arrays in (self.lines, self.x0, self.x1):
            arrays[-1] = arrays[-1][:-1]
        self.length -= 1

    def geometry(self) -> tuple[str, PageGeometry]:
        text = "".join(self.parts)
        starts: list[int] = []
        following = self.length
        for start in reversed(self.page_starts):  # a page with no text starts where the next one does
            following = following if start is None else start
            starts.append(following)
        starts.reverse()
        if starts:
            starts[0] = 0
        bounded = np.minimum(np.maximum.accumulate(np.asarray(starts, dtype=np.int64)), self.length)
        geometry = PageGeometry.from_arrays(
            page_starts=bounded,
            page_sizes=[(pc.width, pc.height) for pc in self.pages],
            char_line=np.concatenate(self.lines) if self.lines else np.zeros(0, np.int32),
            char_x0=np.concatenate(self.x0) if self.x0 else np.zeros(0, np.float32),
            char_x1=np.concatenate(self.x1) if self.x1 else np.zeros(0, np.float32),
            line_page=self.line_page,
            line_top=self.line_top,
            line_bottom=self.line_bottom,
        )
        return text, geometry


def _cell_text(cell: list[Fragment]) -> str:
    return " ".join(line.text for line in _lines(cell))


def _first_letter(line: Line) -> str:
    return next((ch for ch in line.text if ch.isalnum()), "")


class Assembler:
    """Writes blocks as text: `#` headings, paragraphs, `- ` items, pipe tables, one blank line between.

    A paragraph that does not end a sentence continues into the next paragraph of the same
    size when that one starts in lower case, or starts a new column or page: a sentence
    broken by a column or page break stays one paragraph (one quote can span both pages).
    """

    def __init__(self, pages: list[PageChars], stats: DocumentStats) -> None:
        self.out = TextBuilder(pages)
        self.stats = stats
        self.last: Block | None = None
        self.last_line: Line | None = None
        self.table_width = 0  # columns of the table just written (0 when the last block is not a table)
        self.table_rows = 0
        self.table_header: list[str] = []

    def write(self, block: Block) -> None:
        if block.kind == "table" and block.table is not None and self._continues_table(block):
            self._write_rows(block.table, continuing=True)
            self.last = block
            return
        if block.kind != "table":
            self.table_width = 0
        if block.kind == "paragraph" and self._continues(block):
            self._write_lines(block.lines, continuing=True)
            self.last = Block(self.last.kind if self.last else "paragraph", block.page, block.size)
            self.last_line = block.lines[-1]
            return
        if self.out.length:
            last = self.last
            same_list = block.kind == "list" and last is not None and last.kind == "list" and abs(last.size - block.size) < 0.6
            self.out.insert("\n" if same_list else "\n\n")  # list items spaced apart are still one list
        if block.kind == "heading":
            self.out.insert("#" * block.level + " ")
            self._write_lines(block.lines)
        elif block.kind == "paragraph":
            self._write_lines(block.lines)
        elif block.kind == "list":
            for n, item in enumerate(block.items):
                if n:
                    self.out.insert("\n")
                self._write_item(item)
        elif block.kind == "table" and block.table is not None:
            self.table_width, self.table_rows, self.table_header = 0, 0, []
            self._write_rows(block.table, continuing=False)
        self.last = block
        lines = block.items[-1] if block.kind == "list" else block.lines
        self.last_line = lines[-1] if lines else None

    def _continues(self, block: Block) -> bool:
        last, line = self.last, self.last_line
        if last is None or line is None or last.kind not in ("paragraph", "list"):
            return False
        if _ends_sentence(line) or abs(block.size - line.size) > 0.6:
            return False
        starts_lower = _first_letter(block.lines[0]).islower()
        broken = block.first_in_region and (block.new_column or block.page != last.page)
        return starts_lower or (broken and last.kind == "paragraph")  # list items end without a full stop

    def _join_lines(self, nxt: Line) -> None:
        """Separate two lines of one paragraph: a space, or nothing after a hyphen that splits a word."""
        if self.out.last_char() in _HYPHENS:
            head = self.out.last_word()
            tail = re.match(r"\w+", nxt.text)
            if head and head[-1].isalpha() and tail and tail.group(0)[0].isalpha():
                joined = (head + tail.group(0)).lower()
                hyphenated = f"{head}-{tail.group(0)}".lower()
                if tail.group(0)[0].islower() and not (hyphenated in self.stats.hyphenated and joined not in self.stats.words):
                    self.out.drop_last_char()  # "magne-" + "sium" -> "magnesium": the hyphen was the line's, not the word's
                return  # "vitamin-" + "D", "well-" + "known": the hyphen stays, no space
        self.out.insert(" ")

    def _write_lines(self, lines: list[Line], continuing: bool = False) -> None:
        for n, line in enumerate(lines):
            if n or continuing:
                self._join_lines(line)
            for m, frag in enumerate(line.fragments):
                if m:
                    self.out.insert(" ")
                self.out.glyphs(frag)

    def _write_item(self, item: list[Line]) -> None:
        """`- ` and the item's text (a bullet glyph is replaced by `- `; `1.` stays, as the chunker reads it)."""
        first = item[0]
        frag = first.fragments[0]
        kind = _marker(first)
        marker = frag.text.split(" ", 1)[0]
        if kind in ("bullet", "dash"):
            self.out.insert("- ")
            if isinstance(frag, _MergedFragment):
                self.out.glyphs(frag.parts[1])
            else:
                self.out.glyphs(frag, start=frag.start + 1)  # everything after the bullet glyph
        else:
            if not re.fullmatch(r"\d{1,3}[.)]", marker):
                self.out.insert("- ")  # "a)" or "(1)": the chunker knows "- " and "1." markers only
            self.out.glyphs(frag)
        for piece in first.fragments[1:]:
            self.out.insert(" ")
            self.out.glyphs(piece)
        self._write_lines(item[1:], continuing=True)

    def _continues_table(self, block: Block) -> bool:
        """A table that starts a column or page right after a table of as many columns continues it."""
        last = self.last
        if last is None or last.kind != "table" or not self.table_width or block.table is None:
            return False
        width = max(len(row) for row in block.table.cells)
        return width == self.table_width and block.first_in_region and (block.new_column or block.page != last.page)

    def _write_rows(self, table: TableUnit, *, continuing: bool) -> None:
        """Pipe-table rows; the first row of a new table is its header, followed by a `|---|` separator.

        A continuation drops a repeated header row, and adds the separator if the header was
        all the previous page held.
        """
        rows = [row for row in table.cells if any(row)]
        width = max(len(row) for row in table.cells)
        if continuing and rows and [_cell_text(cell) for cell in rows[0]] == self.table_header:
            rows = rows[1:]
        for row in rows:
            if self.table_rows:
                self.out.insert("\n")
            if self.table_rows == 1:
                self.out.insert("|" + "---|" * width + "\n")
            self.out.insert("| ")
            for c in range(width):
                if c:
                    self.out.insert(" | ")
                cell = row[c] if c < len(row) else []
                if not cell:
                    self.out.insert(" ")
                for n, line in enumerate(_lines(cell)):
                    if n:
                        self.out.insert(" ")
                    for m, frag in enumerate(line.fragments):
                        if m:
                            self.out.insert(" ")
                        self._cell_glyphs(frag)
            self.out.insert(" |")
            if not self.table_rows:
                self.table_header = [_cell_text(cell) for cell in row]
            self.table_rows += 1
        self.table_width = width

    def _cell_glyphs(self, frag: Fragment) -> None:
        """A cell's glyphs, with `|` (which would split the cell) replaced by `/`; the box stays."""
        before = len(self.out.parts)
        self.out.glyphs(frag)
        for i in range(before, len(self.out.parts)):
            self.out.parts[i] = self.out.parts[i].replace("|", "/")

    def finish(self) -> tuple[str, PageGeometry]:
        if self.out.length:
            self.out.insert("\n")
        return self.out.geometry()
