"""Structure-aware chunking: headings, paragraphs, lists with their lead-in, pipe tables.

A chunk is a unit an answer can quote: a sentence of a paragraph, one list item, one table
row, or a whole short list or table (so that "which foods..." can be answered by the list,
and "do lentils..." by its item). What makes it findable is stored beside it as `context` (its section heading,
the page title when the chunk does not name the page's subject, the sentence that introduces a list, the
sentence before one that points back at it ("It can also affect the scalp."), a table's header names paired
with the row's cells);
the chunk itself is always `text[start:end]` of the source, never a rewritten string.

Headings are Markdown `#` lines, setext underlines, or, in plain text, short lines that
start with a capital or digit and have no closing punctuation (a trailing `?` is allowed:
FAQ-style documents use questions as headings). Paragraphs are separated by blank lines
where the document uses them; in a document without blank lines every line is a paragraph.

Example:
    >>> from assistant.models import Document
    >>> doc = Document(source="a.md", text="# Iron\\nIron is a metal. It rusts.\\n", sha256="x")
    >>> [(c.section, c.text) for c in chunk_document(doc)]
    [('Iron', 'Iron is a metal.'), ('Iron', 'It rusts.')]
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from assistant.models import Chunk, Document
from assistant.readers import EXTRACTOR_VERSION

#: Recorded in every store's manifest: a change to how documents are cut must re-index them.
CHUNKER_VERSION = 5


def chunking_manifest(*, max_chunk_chars: int, max_heading_words: int) -> dict[str, int]:
    """What a store records about how its documents were read and cut; any difference means re-indexing.

    The readers' version is part of it: a PDF or web page read by other rules has another
    `source_text`, so every stored offset would point at the wrong characters.
    """
    return {"chunker": CHUNKER_VERSION, "extractor": EXTRACTOR_VERSION, "max_chunk_chars": max_chunk_chars,
            "max_heading_words": max_heading_words}

_MD_HEADING = re.compile(r"\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_SETEXT = re.compile(r"\s{0,3}(=+|-+)\s*$")
_LIST_ITEM = re.compile(r"(\s*)(?:[-*+•]|\d{1,3}[.)])\s+(?=\S)")
_TABLE_SEP = re.compile(r"\|?(\s*:?-+:?\s*\|)+\s*(:?-+:?)?\s*\|?")
_END_PUNCT = tuple(".,;:!")
_SENTENCE_END = re.compile(r"[.!?][\"'”’)\]]*(?=\s+[\"'“‘(\[]?[A-Z0-9])")
_ABBREVIATIONS = frozenset(
    "e.g i.e vs dr mr mrs ms prof fig figs al approx no st jr sr inc ltd cf ca ed eds vol pp".split()
)


@dataclass
class _Line:
    start: int
    end: int
    kind: str  # blank, heading, paragraph, list_item, table, table_sep, rule
    heading: str = ""
    body_start: int = 0  # where a list item's text begins, after its marker


@dataclass
class _Block:
    kind: str  # paragraph, list, table
    section: str
    lines: list[_Line] = field(default_factory=list)


def iter_lines(text: str) -> list[tuple[int, int]]:
    """(start, end) of every line's content, newline characters excluded."""
    spans: list[tuple[int, int]] = []
    pos = 0
    while pos < len(text):
        newline = text.find("\n", pos)
        end, nxt = (len(text), len(text)) if newline == -1 else (newline, newline + 1)
        if end > pos and text[end - 1] == "\r":
            end -= 1
        spans.append((pos, end))
        pos = nxt
    return spans


def _strip_span(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _looks_like_heading(line: str, max_words: int) -> bool:
    words = line.split()
    if not words or len(words) > max_words or len(line) > 10 * max_words:
        return False
    if line.endswith(_END_PUNCT) or line.startswith("|"):
        return False
    return line[0].isupper() or line[0].isdigit()


def _classify(text: str, max_heading_words: int) -> list[_Line]:
    lines: list[_Line] = []
    for start, end in iter_lines(text):
        raw = text[start:end]
        stripped = raw.strip()
        if not stripped:
            lines.append(_Line(start, end, "blank"))
            continue
        if match := _MD_HEADING.fullmatch(raw):
            if match.group(2):
                lines.append(_Line(start, end, "heading", heading=match.group(2)))
            else:
                lines.append(_Line(start, end, "rule"))
            continue
        if _SETEXT.fullmatch(raw) and len(stripped) >= 3:
            previous = lines[-1] if lines else None
            if previous and previous.kind == "paragraph" and stripped[0] in "=-":
                previous.kind, previous.heading = "heading", text[previous.start : previous.end].strip()
            lines.append(_Line(start, end, "rule"))
            continue
        if stripped.startswith("|") and stripped.count("|") >= 2:
            kind = "table_sep" if _TABLE_SEP.fullmatch(stripped) and "-" in stripped else "table"
            lines.append(_Line(start, end, kind))
            continue
        if match := _LIST_ITEM.match(raw):
            lines.append(_Line(start, end, "list_item", body_start=start + match.end()))
            continue
        previous = next((ln for ln in reversed(lines) if ln.kind != "blank"), None)
        follows_break = (
            previous is None
            or lines[-1].kind == "blank"
            or previous.kind != "paragraph"
            or text[previous.start : previous.end].rstrip().endswith((".", "!", "?", ":"))
        )
        # A document's first line is its title when it reads as one, even a long one ("Vitamin B12 — What It Does,
        # Who Runs Low, and How Deficiency Is Treated"): it heads the whole page.
        limit = max_heading_words * 2 if previous is None else max_heading_words
        if follows_break and _looks_like_heading(stripped, limit):
            lines.append(_Line(start, end, "heading", heading=stripped))
        else:
            lines.append(_Line(start, end, "paragraph"))
    return lines


def _blocks(text: str, lines: list[_Line], title: str) -> list[_Block]:
    """Group lines into paragraphs, lists and tables, each under its section heading."""
    uses_blank_lines = any(ln.kind == "blank" for ln in lines)
    blocks: list[_Block] = []
    section = title
    previous_kind = "blank"
    for line in lines:
        kind = line.kind
        if kind == "heading":
            section = line.heading
        elif kind == "paragraph":
            last = blocks[-1] if blocks else None
            if previous_kind == "list_item" and last is not None and last.kind == "list" and text[line.start].isspace():
                last.lines[-1].end = line.end  # an indented continuation of a list item
                kind = "list_item"
            elif previous_kind == "paragraph" and last is not None and last.kind == "paragraph" and (
                uses_blank_lines or not text[last.lines[-1].start : last.lines[-1].end].rstrip().endswith((".", "!", "?"))
            ):
                last.lines.append(line)
            else:
                blocks.append(_Block("paragraph", section, [line]))
        elif kind == "list_item":
            last = blocks[-1] if blocks else None
            if last is not None and last.kind == "list" and previous_kind in ("list_item", "blank"):
                last.lines.append(line)
            else:
                blocks.append(_Block("list", section, [line]))
        elif kind in ("table", "table_sep"):
            last = blocks[-1] if blocks else None
            if last is not None and last.kind == "table" and previous_kind in ("table", "table_sep"):
                last.lines.append(line)
            else:
                blocks.append(_Block("table", section, [line]))
        previous_kind = kind if kind != "rule" else "blank"
    return blocks


def split_sentences(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Sentence spans of `text[start:end]`, whitespace trimmed, abbreviations respected."""
    spans: list[tuple[int, int]] = []
    begin = start
    for match in _SENTENCE_END.finditer(text, start, end):
        stop = match.end()
        word = re.search(r"([\w.]+)\.?[\"'”’)\]]*$", text[begin:stop])
        token = word.group(1).rstrip(".").lower() if word else ""
        if text[match.start()] == "." and (token in _ABBREVIATIONS or (len(token) == 1 and token.isalpha())):
            continue
        spans.append(_strip_span(text, begin, stop))
        begin = stop
    spans.append(_strip_span(text, begin, end))
    return [(s, e) for s, e in spans if e > s]


def _cut_long(text: str, start: int, end: int, limit: int) -> list[tuple[int, int]]:
    """Cut a span longer than `limit` characters at whitespace, so no chunk outgrows the embedder."""
    pieces: list[tuple[int, int]] = []
    while end - start > limit:
        cut = text.rfind(" ", start + limit // 2, start + limit)
        cut = cut if cut > start else start + limit
        pieces.append(_strip_span(text, start, cut))
        start = _strip_span(text, cut, end)[0]
    pieces.append(_strip_span(text, start, end))
    return [(s, e) for s, e in pieces if e > s]


def _cells(row: str) -> list[str]:
    return [cell.strip() for cell in row.strip().strip("|").split("|")]


def _label_row(header: list[str], row: str) -> str:
    """A row as "Header: cell; ..." pairs: how a table row is embedded, since pipes carry no meaning."""
    cells = _cells(row)
    if not header:
        return "; ".join(cells)
    return "; ".join(f"{h}: {c}" if h else c for h, c in zip(header, cells))


_SUBJECT_WORD = re.compile(r"[^\W\d_][\w-]{3,}")
_NOT_SUBJECT = frozenset("about after also and before does from guide have help helps into more plain that their them "
                         "they this what when which with your".split())


def _subject(text: str) -> set[str]:
    return {w.lower().rstrip("s") for w in _SUBJECT_WORD.findall(text)} - _NOT_SUBJECT


def _with_subject(title: str, context: str, text: str) -> str:
    """`context`, under the document's title when neither it nor `text` names a word of the title.

    A sentence that does not name its page's subject inherits it ("Tiredness and lack of energy are the
    most common complaints" is about iron deficiency because the page is); one that names it keeps its
    own words, so a page on two subjects does not tie every sentence to both.

    >>> _with_subject("Iron Deficiency and Anaemia", "Signs and symptoms", "Tiredness is common.")
    'Iron Deficiency and Anaemia\\nSigns and symptoms'
    >>> _with_subject("Iron Deficiency and Anaemia", "Signs and symptoms", "Iron deficiency is common.")
    'Signs and symptoms'
    """
    if not title or title == context.split("\n", 1)[0] or _subject(title) & _subject(f"{context}\n{text}"):
        return context
    return f"{title}\n{context}"


_REFERS_BACK = re.compile(r"^(it|its|they|their|these|this|those|both)\b|^(?:\W*\w+\W+){0,4}?(this|these)\b", re.I)


def refers_back(sentence: str) -> bool:
    """Whether a sentence opens by pointing at the one before it, so that it cannot be read alone.

    >>> refers_back("Magnesium helps prevent this transdifferentiation."), refers_back("They form when calcium joins oxalate.")
    (True, True)
    >>> refers_back("Fibre supplements such as psyllium can help."), refers_back("Dark chocolate is a source.")
    (False, False)
    """
    return bool(_REFERS_BACK.search(sentence.lstrip()))


def chunk_document(doc: Document, *, max_chunk_chars: int = 1000, max_heading_words: int = 12, first_id: int = 0) -> list[Chunk]:
    """Cut one document into quotable chunks, in document order, ids counting from `first_id`."""
    text = doc.text
    lines = _classify(text, max_heading_words)
    title = next((ln.heading for ln in lines if ln.kind == "heading"), "")
    if not title:
        title = doc.source.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    spans: list[tuple[int, int, str, str, str, int]] = []  # start, end, kind, section, context, block
    lead_in, lead_section = "", ""
    for number, block in enumerate(_blocks(text, lines, title)):
        if block.kind == "paragraph":
            sentences = split_sentences(text, block.lines[0].start, block.lines[-1].end)
            for i, (s, e) in enumerate(sentences):
                # A sentence that points back ("It can also affect the scalp.") is found through the one it points at.
                context = block.section
                if i and refers_back(text[s:e]):
                    context = f"{block.section}\n{text[sentences[i - 1][0]:sentences[i - 1][1]]}"
                spans.extend((ps, pe, "sentence", block.section, _with_subject(title, context, text[ps:pe]), number)
                             for ps, pe in _cut_long(text, s, e, max_chunk_chars))
            lead_in = text[sentences[-1][0] : sentences[-1][1]] if sentences else ""
            lead_section = block.section
        elif block.kind == "list":
            # The paragraph's last sentence introduces the list only within one section: a list straight under
            # a heading has no lead-in, whatever ended the section before.
            context = f"{block.section}\n{lead_in}" if lead_in and lead_section == block.section else block.section
            whole = _strip_span(text, block.lines[0].body_start, block.lines[-1].end)
            if len(block.lines) > 1 and whole[1] - whole[0] <= max_chunk_chars:
                spans.append((*whole, "list", block.section, _with_subject(title, context, text[whole[0]:whole[1]]), number))
            for line in block.lines:
                for ps, pe in _cut_long(text, *_strip_span(text, line.body_start, line.end), max_chunk_chars):
                    spans.append((ps, pe, "list_item", block.section, _with_subject(title, context, text[ps:pe]), number))
            lead_in = ""
        else:
            rows = [ln for ln in block.lines if ln.kind == "table"]
            has_header = any(ln.kind == "table_sep" for ln in block.lines) and block.lines[0].kind == "table"
            header = _cells(text[rows[0].start : rows[0].end]) if has_header else []
            body = rows[1:] if has_header else rows
            labelled = [_label_row(header, text[line.start : line.end]) for line in body]
            whole = _strip_span(text, block.lines[0].start, block.lines[-1].end)
            if len(rows) > 1 and whole[1] - whole[0] <= max_chunk_chars:
                spans.append((*whole, "table", block.section, _with_subject(title, "\n".join([block.section, *labelled]), ""), number))
            for line, row_text in zip(body, labelled):
                for ps, pe in _cut_long(text, *_strip_span(text, line.start, line.end), max_chunk_chars):
                    spans.append((ps, pe, "table_row", block.section, _with_subject(title, f"{block.section}\n{row_text}", ""), number))
            lead_in = ""
    return [
        Chunk(
            id=first_id + i,
            source=doc.source,
            section=section,
            kind=kind,  # type: ignore[arg-type]
            start=s,
            end=e,
            text=text[s:e],
            context=context,
            block=block,
        )
        for i, (s, e, kind, section, context, block) in enumerate(spans)
    ]


@dataclass(frozen=True)
class LayoutLine:
    """One line as a reader sees it: its kind, its span, and where its content lies (markers excluded).

    `body_start:body_end` is the heading without its `#`s, the list item after its bullet, or the
    whole line; a UI shows the structure (a heading, a bullet) and the content verbatim.
    """

    kind: str  # blank, heading, paragraph, list_item, table, table_sep, rule
    start: int
    end: int
    body_start: int
    body_end: int


def layout_lines(text: str, start: int = 0, end: int | None = None, *, max_heading_words: int = 12) -> list[LayoutLine]:
    """The lines of `text[start:end]`, classified as `chunk_document` classifies them; offsets into `text`.

    Only the window is read, so laying out a passage of a large document costs the passage.
    """
    end = len(text) if end is None else end
    window = text[start:end]
    laid: list[LayoutLine] = []
    for line in _classify(window, max_heading_words):
        s, e = start + line.start, start + line.end
        body = (s, e)
        if line.kind == "heading":
            match = _MD_HEADING.fullmatch(window[line.start : line.end])
            body = (s + match.start(2), s + match.end(2)) if match else _strip_span(text, s, e)
        elif line.kind == "list_item":
            body = (start + line.body_start, e)
        laid.append(LayoutLine(line.kind, s, e, *body))
    return laid


def table_cells(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """The `(start, end)` of each cell's content in the pipe-table row `text[start:end]`, blanks trimmed."""
    s, e = _strip_span(text, start, end)
    s += text.startswith("|", s)
    e -= e > s and text[e - 1] == "|"
    cells: list[tuple[int, int]] = []
    while True:
        bar = text.find("|", s, e)
        cells.append(_strip_span(text, s, e if bar == -1 else bar))
        if bar == -1:
            return cells
        s = bar + 1


def table_header(text: str, row_start: int, *, max_chars: int = 20_000) -> tuple[int, int] | None:
    """The `(start, end)` of the header row of the table whose row begins at `row_start`, if it has one.

    The header is the row just above the table's `|---|` separator. Only `max_chars` above the row
    are read; a row above its table's separator (the header itself) or outside a table has none.
    """
    lo = max(0, row_start - max_chars)
    lines = iter_lines(text[lo:row_start])
    for i in range(len(lines) - 1, 0, -1):
        s, e = lines[i][0] + lo, lines[i][1] + lo
        stripped = text[s:e].strip()
        if not stripped.startswith("|"):
            return None
        if _TABLE_SEP.fullmatch(stripped) and "-" in stripped:
            hs, he = lines[i - 1][0] + lo, lines[i - 1][1] + lo
            return (hs, he) if text[hs:he].strip().startswith("|") else None
    return None


def chunk_corpus(docs: list[Document], *, max_chunk_chars: int = 1000, max_heading_words: int = 12) -> list[Chunk]:
    """Chunks of every document, with ids unique across the corpus."""
    chunks: list[Chunk] = []
    for doc in docs:
        chunks.extend(
            chunk_document(doc, max_chunk_chars=max_chunk_chars, max_heading_words=max_heading_words, first_id=len(chunks))
        )
    return chunks
