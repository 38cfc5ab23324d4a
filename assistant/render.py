"""Turn an `Answer` into what the chat UI shows: Markdown for the message, HTML for passages and documents.

Everything here is a pure function of its arguments and imports no UI library, so the chat
(`app.py`), its `/ask` API and the tests all produce the very same text. Two rules hold
throughout:

* **Nothing from a user or a document is ever markup.** Questions and quotes are escaped for
  the context they land in (`escape_markdown` in Markdown, `escape_html` inside HTML blocks),
  so `<script>` in a question or `**` in a document shows literally. The chat's own sanitizer
  is a second line of defence, not the first.
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

import html
import re
from typing import Iterator, Mapping, Sequence

from assistant.answer import DISCLAIMER
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

# Characters that start inline Markdown (emphasis, code, links, tables, strikethrough, maths) anywhere
# in a line. `<`, `>` and `&` are handled by html.escape, before these are backslash-escaped.
_INLINE_MARKDOWN = re.compile(r"([\\`*_\[\]|~$])")
# Block syntax that only counts at the start of a line: headings, list bullets, setext underlines,
# and the "1." / "1)" of ordered lists.
_LINE_START_MARKER = re.compile(r"^([ \t]*)([#+\-=])", re.MULTILINE)
_LINE_START_NUMBER = re.compile(r"^([ \t]*\d+)([.)])", re.MULTILINE)
_LEADING_BLANKS = re.compile(r"^[ \t]+", re.MULTILINE)
# A blank line: where a paragraph (and a Markdown HTML block) ends. Any line-ending convention.
_BLANK_LINE = re.compile(r"(?:\r\n|\r|\n)[ \t]*(?:\r\n|\r|\n)")
_LINE_END = re.compile(r"\r\n|\r|\n")
# Template syntax of HTML components ("${…}", "{{…}}"): harmless as entities, risky as characters.
_TEMPLATE_CHARS = str.maketrans({"$": "&#36;", "{": "&#123;", "}": "&#125;", "`": "&#96;"})


def escape_html(text: str) -> str:
    """`text` as inert HTML: tags, entities and template syntax all shown as the characters they are.

    Beyond `html.escape`, `$ { } \\`` become entities too, because Gradio's HTML component runs its
    value through a template engine; a document saying `${…}` or `{{…}}` must stay text.
    """
    return html.escape(text, quote=True).translate(_TEMPLATE_CHARS)


def escape_markdown(text: str) -> str:
    """`text` as Markdown that renders to exactly these characters, with no markup and no HTML.

    HTML-escaping removes tags; backslash-escaping the inline Markdown characters and the
    line-start block markers keeps a quote from a table (`| a | b |`) or a list (`- item`)
    from turning into a table or a list. Leading blanks become entities so that an indented
    line cannot open a code block. Newlines are kept (the chat renders them as line breaks).
    """
    escaped = _INLINE_MARKDOWN.sub(r"\\\1", html.escape(text, quote=False))
    escaped = _LINE_START_MARKER.sub(r"\1\\\2", escaped)
    escaped = _LINE_START_NUMBER.sub(r"\1\\\2", escaped)
    return _LEADING_BLANKS.sub(lambda m: "&#32;" * len(m.group()), escaped)


def highlight_html(text: str, spans: Sequence[tuple[int, int, int]], *, start: int = 0, end: int | None = None) -> str:
    """Escaped HTML of `text[start:end]` with each `(n, span_start, span_end)` wrapped in `<mark>`.

    Each mark carries its citation number, visibly (`[n]` after it) and as `data-n`, so the reader can
    match it to the marker in the answer. Spans outside the window are clipped; overlapping spans
    (which `select_quotes` never produces) are skipped rather than nested.
    """
    end = len(text) if end is None else end
    parts: list[str] = []
    cursor = start
    for n, s, e in sorted(spans, key=lambda span: (span[1], span[0])):
        s, e = max(s, start), min(e, end)
        if s >= e or s < cursor:
            continue
        parts.append(escape_html(text[cursor:s]))
        parts.append(f'<mark data-n="{n}">{escape_html(text[s:e])}</mark><sup class="cite-n">[{n}]</sup>')
        cursor = e
    parts.append(escape_html(text[cursor:end]))
    return "".join(parts)


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

    One line because the chat reads it inside a Markdown HTML block, which a blank line would end;
    newlines become `<br>`. If the document no longer matches the quote, the quote is shown alone
    with a warning rather than highlighting the wrong words.
    """
    if not quote_matches(citation, texts):
        body = f'<mark data-n="{citation.n}">{escape_html(citation.quote)}</mark>'
        why = "is not on this server" if citation.source not in texts else "has changed since it was indexed"
        note = f'<em class="stale">The document {why}; this is the quote as indexed.</em><br>'
        return _LINE_END.sub("<br>", f'<div class="passage">{note}{body}</div>')
    text = texts[citation.source]
    lo, hi = passage_bounds(text, citation.start, citation.end)
    inner = highlight_html(text, [(citation.n, citation.start, citation.end)], start=lo, end=hi)
    lead = "… " if lo > 0 and text[lo - 1] not in "\r\n" else ""
    tail = " …" if hi < len(text) and text[hi] not in "\r\n" else ""
    return _LINE_END.sub("<br>", f'<div class="passage">{lead}{inner}{tail}</div>')


def render_citation(citation: Citation, texts: Mapping[str, str]) -> str:
    """One citation as a `<details>` block: number, file and section; expanding it shows the passage."""
    summary = (
        f'<summary><strong>[{citation.n}]</strong> {escape_html(citation.source)}'
        f' — <em>{escape_html(citation.section or "(no section)")}</em>'
        f' <small>(characters {citation.start}–{citation.end})</small></summary>'
    )
    return f'<details class="citation" data-n="{citation.n}">{summary}{render_passage(citation, texts)}</details>'


def answer_blocks(answer: Answer, texts: Mapping[str, str]) -> list[str]:
    """The Markdown blocks of an answer, in reading order: the answer, then its numbered sources.

    The answer text is the engine's own (quotes each followed by `[n]`, or the "not covered"
    message, after any safety notice), escaped; the sources follow with the same numbers.
    """
    blocks = [escape_markdown(part) for part in answer.answer.split("\n\n") if part.strip()]
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


def render_question(question: str) -> str:
    """A user's question as the chat shows it: literal text, whatever markup it contains."""
    return escape_markdown(question) if question.strip() else "_(empty question)_"


def progressive(blocks: Sequence[str], disclaimer: str = DISCLAIMER) -> Iterator[str]:
    """Growing messages, one more block each time, each already ending with the disclaimer.

    Cutting only between blocks means no partial message has half an HTML element, so what
    streams in is valid at every step; the last message is `with_disclaimer(blocks)`.
    """
    for count in range(1, len(blocks) + 1):
        yield with_disclaimer(blocks[:count], disclaimer)


def render_corpus(
    documents: Sequence[Document], citations: Sequence[Citation] = (), *, max_chars: int = CORPUS_VIEW_CHARS
) -> str:
    """HTML of the corpus documents with the spans cited by the latest answer highlighted.

    Cited documents come first and open; the others follow closed. Once the documents shown in
    full pass `max_chars`, the remaining uncited ones are listed by name only. Citations whose
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
        summary = f"<summary><strong>{escape_html(doc.source)}</strong> <small>({label})</small></summary>"
        if not cited and shown + len(doc.text) > max_chars:
            parts.append(f'<div class="doc doc-hidden">{summary.replace("summary", "span")} '
                         f"<small>— {len(doc.text):,} characters, not shown</small></div>")
            continue
        shown += len(doc.text)
        is_open = " open" if cited or len(documents) == 1 else ""
        text = highlight_html(doc.text, cited)
        parts.append(f'<details class="doc"{is_open}>{summary}<div class="doc-text">{text}</div></details>')
    if not documents:
        parts.append("<p>The corpus folder has no readable documents.</p>")
    parts.append("</div>")
    return "".join(parts)
