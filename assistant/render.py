"""Turn an `Answer` into what the chat UI shows: Markdown for the message, HTML for passages and documents.

Everything here is a pure function of its arguments and imports no UI library, so the chat
(`app.py`), its `/ask` API and the tests all produce the very same text. Two rules hold
throughout:

* **Nothing from a user or a document is ever markup.** Questions, quotes, headings and file
  names are escaped for the context they land in, one function each (`assistant.escaping`,
  re-exported here), line breaks of every convention included. So `<script>` in a question, `**` or `\\r\\r![x](…)` in
  a document show literally. The chat's own sanitizer is a second line of defence, not the first.
* **The disclaimer is in every message**: answers, refusals, errors and every partial message
  while an answer streams in.

Example:
    >>> from assistant.models import Answer, Citation
    >>> from assistant.answer import DISCLAIMER
    >>> text = "Intro.\\n\\nMagnesium helps sleep. More text."
    >>> c = Citation(n=1, quote="Magnesium helps sleep.", source="a.txt", section="Sleep", start=8, end=30, score=0.9)
    >>> md = render_answer(Answer(question="q", answer="Magnesium helps sleep. [1]", grounded=True,
    ...                           citations=[c], disclaimer=DISCLAIMER), {"a.txt": text})
    >>> "<mark" in md and md.rstrip().endswith("_")
    True
"""

from __future__ import annotations

import re
from typing import Container, Iterator, Mapping, Sequence

from assistant.answer import DISCLAIMER
from assistant.chunking import layout_lines, table_cells, table_header
from assistant.escaping import (  # noqa: F401  (re-exported: `render` is where the UI finds every escaper)
    LINE_BREAK,
    escape_attribute,
    escape_html,
    escape_html_line,
    escape_markdown,
    escape_terminal,
)
from assistant.models import Answer, Citation, Document

#: What the chat shows while the assistant searches: the answer replaces it.
SEARCHING = "_Searching the document…_"

#: How a message for an unanswered question starts (bad input, or a failure).
NOT_ANSWERED = "**Question not answered:**"

#: Shown instead of a trace when answering fails for a reason the user cannot fix.
FAILURE = "something went wrong while answering; please try again (the server log has the details)"

#: Characters of context shown on each side of a quote, at most: enough to judge the quote, short enough to read.
CONTEXT_CHARS = 400

#: Above this many characters the corpus view shows uncited documents by name only, so that a large
#: corpus does not make every answer ship megabytes of HTML to the browser.
CORPUS_VIEW_CHARS = 200_000

#: A document longer than this is never shown whole in the corpus view: only windows of
#: `CORPUS_WINDOW_CHARS` on each side of its cited passages (or, uncited, its name and size).
CORPUS_DOCUMENT_CHARS = 50_000
CORPUS_WINDOW_CHARS = 2_000

# A blank line: where a paragraph (and a Markdown HTML block) ends. Any line-ending convention.
_BLANK_LINE = re.compile(r"(?:\r\n|\r|\n)[ \t]*(?:\r\n|\r|\n)")
_LINE_END = re.compile(r"\r\n|\r|\n")


def highlight_html(
    text: str,
    spans: Sequence[tuple[int, int, int]],
    *,
    start: int = 0,
    end: int | None = None,
    numbered: Container[int] | None = None,
    tag: str = "mark",
) -> str:
    """Escaped HTML of `text[start:end]` with each `(n, span_start, span_end)` wrapped in `<mark>`.

    Each mark carries its citation number, visibly (`[n]` after it) and as `data-n`, so the reader can
    match it to the marker in the answer; with `numbered`, only spans whose number is in it get the
    visible `[n]` (a span laid out over several table cells shows it once, after its last piece).
    Spans outside the window are clipped; overlapping spans (which `select_quotes` never produces)
    are skipped rather than nested. `tag` is the element that wraps a span.
    """
    end = len(text) if end is None else end
    parts: list[str] = []
    cursor = start
    for n, s, e in sorted(spans, key=lambda span: (span[1], span[0])):
        s, e = max(s, start), min(e, end)
        if s >= e or s < cursor:
            continue
        parts.append(escape_html(text[cursor:s]))
        parts.append(f'<{tag} data-n="{n}">{escape_html(text[s:e])}</{tag}>')
        if numbered is None or n in numbered:
            parts.append(f'<sup class="cite-n">[{n}]</sup>')
        cursor = e
    parts.append(escape_html(text[cursor:end]))
    return "".join(parts)


def _layout_items(text: str, start: int, end: int, show: tuple[int, int]) -> list[str | tuple[int, int]]:
    """`text[start:end]` as HTML tags (strings) around content spans (tuples), content clipped to `show`."""
    lines = layout_lines(text, start, end)
    items: list[str | tuple[int, int]] = []
    open_tag = ""

    def enter(tag: str, opening: str) -> bool:
        nonlocal open_tag
        if open_tag == tag:
            return False
        items.append(f"</{open_tag}>" if open_tag else "")
        items.append(opening)
        open_tag = tag
        return True

    def content(a: int, b: int) -> tuple[int, int]:
        return max(a, show[0]), max(min(b, show[1]), max(a, show[0]))

    def row(a: int, b: int, cell: str, clip: bool = True) -> list[str | tuple[int, int]]:
        cells = [content(*c) if clip else c for c in table_cells(text, a, b)]
        return ["<tr>", *(x for c in cells for x in (f"<{cell}>", c, f"</{cell}>")), "</tr>"]

    for i, line in enumerate(lines):
        following = lines[i + 1].kind if i + 1 < len(lines) else ""
        if line.kind == "paragraph":
            items.append("" if enter("p", "<p>") else "<br>")
            items.append(content(line.body_start, line.body_end))
        elif line.kind == "list_item":
            enter("ul", "<ul>")
            items += ["<li>", content(line.body_start, line.body_end), "</li>"]
        elif line.kind == "table":
            if enter("table", '<table class="doc-table">') and following != "table_sep":
                header = table_header(text, line.start)
                items += row(*header, "th", clip=False) if header else []
            items += row(line.start, line.end, "th" if following == "table_sep" else "td")
        elif line.kind in ("heading", "blank", "rule"):
            enter("", "")
            if line.kind == "heading":
                items += ['<h4 class="doc-h">', content(line.body_start, line.body_end), "</h4>"]
            elif line.kind == "rule" and (i == 0 or lines[i - 1].kind != "heading"):
                items.append("<hr>")
    enter("", "")
    return items


def layout_html(
    text: str,
    spans: Sequence[tuple[int, int, int]] = (),
    *,
    start: int = 0,
    end: int | None = None,
    show: tuple[int, int] | None = None,
    tag: str = "mark",
) -> str:
    """Escaped HTML of `text[start:end]` laid out as its document: headings, paragraphs, bullets, tables.

    Still verbatim: the text is every character of the window but the structure's markers (`#`,
    bullets, table pipes and `|---|` rows), which become the elements they stand for; lines are
    classified as `chunking` classifies them. Inline Markdown stays the characters it is, so a
    document adds no link, image or HTML. A table shown from below its header gets the header from
    above the window. Each span is marked (`tag`) in every element it covers, `[n]` after its last
    piece. With `show`, content outside `show` is left out (a quote laid out on its whole lines).
    One line of HTML: line breaks inside a line become `<br>`.
    """
    end = len(text) if end is None else end
    items = _layout_items(text, start, end, show or (start, end))
    last = {n: i for i, item in enumerate(items) if isinstance(item, tuple)
            for n, s, e in spans if s < item[1] and item[0] < e}  # where each span's [n] goes
    html_parts = [
        item if isinstance(item, str) else highlight_html(
            text, spans, start=item[0], end=item[1], numbered={n for n, i in last.items() if i == k}, tag=tag)
        for k, item in enumerate(items)
    ]
    return LINE_BREAK.sub("<br>", "".join(html_parts))


def passage_bounds(text: str, start: int, end: int, *, context_chars: int = CONTEXT_CHARS) -> tuple[int, int]:
    """Where the passage around `text[start:end]` starts and ends: at most `context_chars` each side.

    Within that cap the passage stops at the nearest blank line (the paragraph, which for a table
    row is the whole table, header included), else takes as many whole lines as fit, else cuts at
    a space so no word is shown half. Only the capped windows are searched, so the cost does not
    grow with the document.
    """
    lo_cap, hi_cap = max(0, start - context_chars), min(len(text), end + context_chars)
    breaks = list(_BLANK_LINE.finditer(text, lo_cap, start))
    if breaks:
        lo = breaks[-1].end()
    elif lo_cap == 0 or text[lo_cap - 1] in "\r\n":
        lo = lo_cap
    else:
        line = _LINE_END.search(text, lo_cap, start)
        space = text.find(" ", lo_cap, start)
        lo = line.end() if line else space + 1 if space >= 0 else lo_cap
    blank = _BLANK_LINE.search(text, end, hi_cap)
    if blank:
        hi = blank.start()
    elif hi_cap == len(text) or text[hi_cap] in "\r\n":
        hi = hi_cap
    else:
        lines = list(_LINE_END.finditer(text, end, hi_cap))
        space = text.rfind(" ", end, hi_cap)
        hi = lines[-1].start() if lines else space if space >= 0 else hi_cap
    return lo, hi


def quote_matches(citation: Citation, texts: Mapping[str, str]) -> bool:
    """Whether the document still holds the quote at its offsets (it may have changed since indexing)."""
    text = texts.get(citation.source)
    return text is not None and text[citation.start : citation.end] == citation.quote


def render_passage(citation: Citation, texts: Mapping[str, str]) -> str:
    """HTML of the passage around a quote with the quote highlighted, on one line.

    One line because the chat reads it inside a Markdown HTML block, which a blank line (or a bare
    `\\r\\r`) would end: line breaks of every convention become `<br>`. If the document no longer
    matches the quote, the quote is shown alone with a warning rather than highlighting the wrong words.
    """
    if not quote_matches(citation, texts):
        body = f'<mark data-n="{citation.n}">{escape_html(citation.quote)}</mark>'
        why = "is not on this server" if citation.source not in texts else "has changed since it was indexed"
        note = f'<em class="stale">The document {why}; this is the quote as indexed.</em><br>'
        return LINE_BREAK.sub("<br>", f'<div class="passage">{note}{body}</div>')
    text = texts[citation.source]
    lo, hi = passage_bounds(text, citation.start, citation.end)
    inner = layout_html(text, [(citation.n, citation.start, citation.end)], start=lo, end=hi)
    lead = "… " if lo > 0 and text[lo - 1] not in "\r\n" else ""
    tail = " …" if hi < len(text) and text[hi] not in "\r\n" else ""
    return LINE_BREAK.sub("<br>", f'<div class="passage">{lead}{inner}{tail}</div>')


def render_citation(citation: Citation, texts: Mapping[str, str]) -> str:
    """One citation as a `<details>` block, on one line: number, file and section; expanding it shows the passage.

    File and section names come from documents and are single-line contexts: their line breaks
    become spaces, so none can end the block and let the rest be read as Markdown.
    """
    page = f"page {citation.page}, " if citation.page is not None else ""
    summary = (
        f'<summary><strong>[{citation.n}]</strong> {escape_html_line(citation.source)}'
        f' — <em>{escape_html_line(citation.section or "(no section)")}</em>'
        f' <small>({page}characters {citation.start}–{citation.end})</small></summary>'
    )
    return f'<details class="citation" data-n="{citation.n}">{summary}{render_passage(citation, texts)}</details>'


def render_quote(citation: Citation, texts: Mapping[str, str]) -> str:
    """A quote of the answer as its document lays it out, on one line, `[n]` after it.

    A table row comes as a small table under its table's header row (the header is context, the row
    the quote); a list keeps every bullet; the text shown is the quote's. A quote whose document is
    absent or changed is shown as the plain text it was.
    """
    if not quote_matches(citation, texts):
        return f"{escape_markdown(citation.quote)} \\[{citation.n}\\]"
    text = texts[citation.source]
    lo, hi = text.rfind("\n", 0, citation.start) + 1, text.find("\n", citation.end)  # its whole lines
    spans = [(citation.n, citation.start, citation.end)]
    body = layout_html(text, spans, start=lo, end=len(text) if hi < 0 else hi, show=(citation.start, citation.end),
                       tag="span")
    return f'<div class="quote" data-n="{citation.n}">{body}</div>'


def _text_blocks(text: str, notice: str | None) -> list[str]:
    """The engine's own words between quotes, escaped; a safety notice set apart (`.notice`) to be seen first."""
    return [
        f'<div class="notice" role="note">{escape_html_line(part, line_break="<br>")}</div>' if part == notice
        else escape_markdown(part)
        for part in text.split("\n\n") if part.strip()
    ]


def answer_blocks(answer: Answer, texts: Mapping[str, str]) -> list[str]:
    """The Markdown blocks of an answer, in reading order: the answer, then its numbered sources.

    The answer text is the engine's own: any notice, then quotes each followed by `[n]` (or the
    "not covered" message). Each quote found there is laid out (`render_quote`); the rest is
    escaped text. The sources follow with the same numbers.
    """
    blocks: list[str] = []
    rest = answer.answer
    for citation in answer.citations:
        before, found, after = rest.partition(f"{citation.quote} [{citation.n}]")
        if found:
            blocks += [*_text_blocks(before, answer.notice), render_quote(citation, texts)]
            rest = after
    blocks += _text_blocks(rest, answer.notice)
    if answer.citations:
        blocks.append("**Sources** (expand one to read the quote in its passage)")
        blocks.extend(render_citation(c, texts) for c in answer.citations)
    return blocks


def with_disclaimer(blocks: Sequence[str], disclaimer: str = DISCLAIMER) -> str:
    """Join Markdown blocks and end them with the disclaimer, below a rule."""
    return "\n\n".join([*blocks, "---", f"_{escape_markdown(disclaimer)}_"])


def render_answer(answer: Answer, texts: Mapping[str, str]) -> str:
    """The chat message for an answer: exactly what the chat shows and what `/ask` returns."""
    return with_disclaimer(answer_blocks(answer, texts), answer.disclaimer)


def error_blocks(reason: str) -> list[str]:
    """The Markdown blocks for a question that was not answered: why, and what to do."""
    return [f"{NOT_ANSWERED} {escape_markdown(reason)}"]


def render_error(reason: str) -> str:
    """The chat message for a question that was not answered: the reason, then the disclaimer."""
    return with_disclaimer(error_blocks(reason))


def render_question(question: str, *, max_chars: int | None = None) -> str:
    """A user's question as the chat shows it: literal text, whatever markup it contains.

    A question over `max_chars` is not shown at all, only its length: it will be refused, and
    echoing a megabyte back to the browser is what a limit is there to prevent.
    """
    if max_chars is not None and len(question) > max_chars:
        return f"_(a question of {len(question):,} characters, not shown)_"
    return escape_markdown(question) if question.strip() else "_(empty question)_"


def busy_blocks(retry_after: int) -> list[str]:
    """The Markdown blocks for a question refused by the rate limit: when to ask again."""
    return error_blocks(f"busy, try again in {retry_after} s")


def progressive(blocks: Sequence[str], disclaimer: str = DISCLAIMER) -> Iterator[str]:
    """Growing messages, one more block each time, each already ending with the disclaimer.

    Cutting only between blocks means no partial message has half an HTML element, so what
    streams in is valid at every step; the last message is `with_disclaimer(blocks)`.
    """
    for count in range(1, len(blocks) + 1):
        yield with_disclaimer(blocks[:count], disclaimer)


def corpus_windows(text: str, spans: Sequence[tuple[int, int, int]], *, context_chars: int) -> list[tuple[int, int]]:
    """The `(start, end)` windows of `text` to show around cited `spans`, merged where they touch.

    Each window is `passage_bounds` with `context_chars` each side (so it ends at a paragraph, line or
    space), which bounds what a cited document costs to show, however large the document.
    """
    windows: list[tuple[int, int]] = []
    for _, s, e in sorted(spans, key=lambda span: (span[1], span[2])):
        lo, hi = passage_bounds(text, s, e, context_chars=context_chars)
        if windows and lo <= windows[-1][1]:
            windows[-1] = (windows[-1][0], max(hi, windows[-1][1]))
        else:
            windows.append((lo, hi))
    return windows


def _omitted(chars: int) -> str:
    return f'<div class="omitted">… {chars:,} characters not shown …</div>'


def render_corpus(
    documents: Sequence[Document],
    citations: Sequence[Citation] = (),
    *,
    max_chars: int = CORPUS_VIEW_CHARS,
    document_chars: int = CORPUS_DOCUMENT_CHARS,
    window_chars: int = CORPUS_WINDOW_CHARS,
) -> str:
    """HTML of the corpus documents with the spans cited by the latest answer highlighted.

    Cited documents come first and open; the others follow closed. A document longer than
    `document_chars` is never sent whole: when cited, only windows of `window_chars` around its
    cited passages are shown; when not, its name and size. Once the documents shown pass
    `max_chars`, the remaining uncited ones are listed by name only. So every answer ships a
    bounded amount of HTML (and the server keeps a bounded copy per session). Citations whose
    quote no longer matches the document are not highlighted (the chat's passage says why).
    """
    texts = {d.source: d.text for d in documents}
    spans: dict[str, list[tuple[int, int, int]]] = {}
    for c in citations:
        if quote_matches(c, texts):
            spans.setdefault(c.source, []).append((c.n, c.start, c.end))
    ordered = sorted(documents, key=lambda d: (d.source not in spans, d.source))
    shown = 0
    parts = ['<div class="corpus">']
    for doc in ordered:
        cited = spans.get(doc.source, [])
        label = f"{len(cited)} cited passage{'s' if len(cited) != 1 else ''}" if cited else "not cited"
        name = f"<strong>{escape_html_line(doc.source)}</strong> <small>({label})</small>"
        attribute = escape_attribute(doc.source)
        large = len(doc.text) > document_chars
        if not cited and (large or shown + len(doc.text) > max_chars):
            parts.append(f'<div class="doc doc-hidden" data-source="{attribute}"><span>{name}</span> '
                         f"<small>— {len(doc.text):,} characters, not shown</small></div>")
            continue
        if large:
            windows = corpus_windows(doc.text, cited, context_chars=window_chars)
            pieces, cursor = [], 0
            for lo, hi in windows:
                if lo > cursor:
                    pieces.append(_omitted(lo - cursor))
                pieces.append(layout_html(doc.text, cited, start=lo, end=hi))
                cursor = hi
            if cursor < len(doc.text):
                pieces.append(_omitted(len(doc.text) - cursor))
            body = "".join(pieces)
            shown += sum(hi - lo for lo, hi in windows)
        else:
            body = layout_html(doc.text, cited)
            shown += len(doc.text)
        is_open = " open" if cited or len(documents) == 1 else ""
        parts.append(f'<details class="doc"{is_open} data-source="{attribute}"><summary>{name}</summary>'
                     f'<div class="doc-text">{body}</div></details>')
    if not documents:
        parts.append("<p>The corpus folder has no readable documents.</p>")
    parts.append("</div>")
    return "".join(parts)
