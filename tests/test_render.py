"""assistant.render: what the chat shows, from hand-made answers (no model, no UI library)."""

from __future__ import annotations

import ast
import html
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assistant import render
from assistant.answer import DISCLAIMER, NOT_COVERED
from assistant.models import Answer, Citation, Document

SOURCE = "notes/mag*nesium_<b>.md"
TEXT = (
    "# Magnesium <basics>\n"
    "\n"
    "Intro line about minerals.\n"
    "Magnesium helps *sleep* & <script>alert(1)</script> calm. Other words follow here.\n"
    "\n"
    "| Form | Use |\n"
    "|---|---|\n"
    "| Glycinate | Sleep ${x} {{y}} |\n"
    "\n"
    "Closing paragraph.\n"
)
QUOTE_1 = "Magnesium helps *sleep* & <script>alert(1)</script> calm."
QUOTE_2 = "| Glycinate | Sleep ${x} {{y}} |"
#: What a table-row quote shows, cell by cell: its text without the pipes (an oracle independent of the layout code).
CELLS_2 = ["Glycinate", "Sleep ${x} {{y}}"]


def cite(n: int, quote: str, *, source: str = SOURCE, text: str = TEXT) -> Citation:
    start = text.index(quote)
    end = start + len(quote)
    return Citation(n=n, quote=quote, source=source, section="Magnesium <basics>", start=start, end=end, score=0.5)


def grounded_answer() -> Answer:
    citations = [cite(1, QUOTE_1), cite(2, QUOTE_2)]
    return Answer(
        question="What helps <b>sleep</b>?",
        answer="\n\n".join(f"{c.quote} [{c.n}]" for c in citations),
        grounded=True,
        citations=citations,
        disclaimer=DISCLAIMER,
    )


TEXTS = {SOURCE: TEXT}


class _Text(HTMLParser):
    """Visible text and tags of an HTML fragment, as a browser would parse it."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.tags: list[str] = []
        self.marks: list[str] = []
        self._in_mark = 0

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "br":
            self.text.append("\n")
        if tag == "mark":
            self._in_mark += 1
            self.marks.append("")

    def handle_endtag(self, tag):
        if tag == "mark":
            self._in_mark -= 1

    def handle_data(self, data):
        self.text.append(data)
        if self._in_mark:
            self.marks[-1] += data


def parse(fragment: str) -> _Text:
    parser = _Text()
    parser.feed(fragment)
    parser.close()
    return parser


# --- escaping ---------------------------------------------------------------------------------


def test_escape_html_makes_tags_and_template_syntax_inert():
    out = render.escape_html('<img src=x onerror="alert(1)"> ${x} {{y}} `z` &amp;')
    assert "<" not in out and ">" not in out and "${" not in out and "{{" not in out and "`" not in out
    assert parse(out).text == ['<img src=x onerror="alert(1)"> ${x} {{y}} `z` &amp;']


@pytest.mark.parametrize(
    "text",
    [
        "<script>alert(1)</script>",
        "**bold** _it_ `code` ~~gone~~ [link](javascript:alert(1)) ![img](x.png)",
        "| a | b |\n|---|---|\n| c | d |",
        "# heading\n- item\n+ item\n1. first\n2) second\n===\n    indented code",
        "$$x^2$$ and \\ backslash & &amp; entity",
    ],
)
def test_escape_markdown_leaves_no_markup(text):
    out = render.escape_markdown(text)
    assert "<" not in out and ">" not in out
    assert not re.search(r"(?<!\\)[*_`\[\]|~$]", out), out
    assert not re.search(r"^[ \t]*(?:[#+\-=]|\d+[.)])", out, flags=re.MULTILINE), out
    assert not re.search(r"^[ \t]", out, flags=re.MULTILINE), out


markdown_it = pytest.importorskip("markdown_it")
_MD = markdown_it.MarkdownIt("commonmark").enable(["table", "strikethrough"])


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="ab 1.#*_-+=|~`$[]()!<>&;\\\n\t{}", max_size=60))
def test_escaped_markdown_renders_to_the_same_characters(text):
    """Whatever the text, Markdown shows exactly its characters (blank space aside) and no element."""
    rendered = parse(_MD.render(render.escape_markdown(text)))
    assert set(rendered.tags) <= {"p", "br"}, (text, rendered.tags)
    assert "".join("".join(rendered.text).split()) == "".join(text.split())


# --- passages and highlights ----------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="ab <&>\n{}$", min_size=1, max_size=80), st.data())
def test_highlight_marks_exactly_the_span(text, data):
    start = data.draw(st.integers(0, len(text) - 1))
    end = data.draw(st.integers(start + 1, len(text)))
    out = parse(render.highlight_html(text, [(1, start, end)]))
    assert out.marks == [text[start:end]]
    assert "".join(out.text) == text[:end] + "[1]" + text[end:]


def test_highlight_skips_overlaps_and_clips_to_the_window():
    text = "0123456789"
    out = parse(render.highlight_html(text, [(2, 4, 8), (1, 2, 6), (3, 8, 12)], start=1, end=9))
    assert out.marks == ["2345", "8"]


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="ab .\n", min_size=1, max_size=300), st.data(), st.integers(0, 50))
def test_passage_contains_the_quote_within_the_cap(text, data, cap):
    start = data.draw(st.integers(0, len(text) - 1))
    end = data.draw(st.integers(start + 1, len(text)))
    lo, hi = render.passage_bounds(text, start, end, context_chars=cap)
    assert max(0, start - cap) <= lo <= start and end <= hi <= min(len(text), end + cap)


def test_passage_stops_at_blank_lines_and_keeps_whole_lines():
    lo, hi = render.passage_bounds(TEXT, TEXT.index(QUOTE_2), TEXT.index(QUOTE_2) + len(QUOTE_2))
    assert TEXT[lo:hi] == "| Form | Use |\n|---|---|\n" + QUOTE_2  # the whole table, header included
    start = TEXT.index(QUOTE_1)
    lo, hi = render.passage_bounds(TEXT, start, start + len(QUOTE_1), context_chars=12)
    assert TEXT[lo:hi] == QUOTE_1 + " Other"  # from the line start, to the last space within the cap


def test_passage_is_one_line_with_the_quote_highlighted():
    citation = cite(1, QUOTE_1)
    passage = render.render_passage(citation, TEXTS)
    assert "\n" not in passage
    out = parse(passage)
    assert out.marks == [QUOTE_1]
    assert "Intro line about minerals." in "".join(out.text)
    assert "script" not in out.tags and "basics" not in out.tags


def test_passage_of_a_changed_document_warns_instead_of_highlighting_other_words():
    citation = cite(1, QUOTE_1)
    changed = {SOURCE: TEXT.replace("Magnesium helps", "Zinc supports")}
    out = parse(render.render_passage(citation, changed))
    assert out.marks == [QUOTE_1]
    assert "changed since it was indexed" in "".join(out.text)
    absent = parse(render.render_passage(citation, {}))  # a server that holds the index but not the files
    assert absent.marks == [QUOTE_1] and "not on this server" in "".join(absent.text)


# --- whole messages -----------------------------------------------------------------------------


def test_answer_has_markers_sources_passages_and_the_disclaimer():
    answer = grounded_answer()
    message = render.render_answer(answer, TEXTS)
    body, _, sources = message.partition("**Sources**")
    shown = parse(body)
    assert "[1]" in shown.text and "[2]" in shown.text  # markers, each once
    assert "Glycinate" in shown.text and "Form" in shown.text  # the row under its table's header
    expected = {1: [QUOTE_1], 2: CELLS_2}
    for c in answer.citations:
        block = next(b for b in message.split("\n\n") if b.startswith(f'<details class="citation" data-n="{c.n}"'))
        out = parse(block)
        assert out.marks == expected[c.n]
        assert SOURCE in "".join(out.text) and "Magnesium <basics>" in "".join(out.text)
        assert f"[{c.n}]" in "".join(out.text)
    assert message.endswith(f"_{render.escape_markdown(DISCLAIMER)}_")
    assert "<script>" not in message and "<basics>" not in message and "<b>" not in message


def test_html_blocks_have_no_blank_line_inside():
    """A blank line would end the Markdown HTML block and show the rest of the passage as Markdown."""
    message = render.render_answer(grounded_answer(), TEXTS)
    for block in message.split("\n\n"):
        if block.startswith("<details"):
            assert "\n" not in block and block.endswith("</details>")


def test_not_covered_answer_has_no_sources_but_the_disclaimer():
    answer = Answer(question="Who wrote it?", answer=NOT_COVERED, grounded=False, disclaimer=DISCLAIMER)
    message = render.render_answer(answer, TEXTS)
    assert render.escape_markdown(NOT_COVERED) in message
    assert "Sources" not in message and "<details" not in message
    assert message.endswith(f"_{render.escape_markdown(DISCLAIMER)}_")


def test_error_and_placeholder_carry_the_disclaimer():
    message = render.render_error("the question is <empty>")
    assert "&lt;empty&gt;" in message and message.endswith(f"_{render.escape_markdown(DISCLAIMER)}_")
    assert render.with_disclaimer([render.SEARCHING]).endswith(f"_{render.escape_markdown(DISCLAIMER)}_")


def test_progressive_pieces_grow_and_all_end_with_the_disclaimer():
    answer = grounded_answer()
    blocks = render.answer_blocks(answer, TEXTS)
    pieces = list(render.progressive(blocks))
    assert len(pieces) == len(blocks)
    assert pieces[-1] == render.render_answer(answer, TEXTS)
    footer = f"\n\n---\n\n_{render.escape_markdown(DISCLAIMER)}_"
    assert all(p.endswith(footer) for p in pieces)
    for shorter, longer in zip(pieces, pieces[1:]):
        assert longer.startswith(shorter.removesuffix(footer) + "\n\n")


def test_question_is_shown_literally():
    assert "<" not in render.render_question("<script>alert(1)</script>")
    assert html.unescape(render.render_question("<b>hi</b>").replace("\\", "")) == "<b>hi</b>"
    assert render.render_question("   ") == "_(empty question)_"


# --- the corpus view ----------------------------------------------------------------------------


def test_corpus_view_highlights_cited_spans_first_and_escapes_everything():
    other = Document(source="a-first.txt", text="Unrelated <i>text</i>.", sha256="0")
    doc = Document(source=SOURCE, text=TEXT, sha256="1")
    view = render.render_corpus([other, doc], grounded_answer().citations)
    out = parse(view)
    assert out.marks == [QUOTE_1, *CELLS_2]
    assert view.index(render.escape_html(SOURCE)) < view.index("a-first.txt")  # cited documents first
    assert "2 cited passages" in view and "not cited" in view
    assert "script" not in out.tags and "i" not in out.tags and "${" not in view and "{{" not in view


def test_corpus_view_lists_uncited_documents_by_name_past_its_budget():
    docs = [Document(source=f"d{i}.txt", text="x" * 100, sha256=str(i)) for i in range(3)]
    view = render.render_corpus(docs, max_chars=150)
    assert view.count('class="doc-text"') == 1 and view.count("not shown") == 2
    assert "no readable documents" in render.render_corpus([])


def test_corpus_view_ignores_citations_that_no_longer_match():
    doc = Document(source=SOURCE, text=TEXT.replace("helps", "HELPS"), sha256="1")
    assert parse(render.render_corpus([doc], grounded_answer().citations)).marks == CELLS_2


def test_render_never_imports_a_ui_library():
    tree = ast.parse(Path(render.__file__).read_text(encoding="utf-8"))
    nodes = list(ast.walk(tree))
    imported = {alias.name.split(".")[0] for node in nodes if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in nodes if isinstance(node, ast.ImportFrom) and node.module}
    assert "gradio" not in imported


# --- escaping by context: hostile text from documents and file names (issue 11, findings 1 and 9) ---------

#: Pieces of hostile text: Markdown and HTML syntax, links and images, bare URLs, domains and addresses,
#: every line-break convention, and terminal controls. Hypothesis joins them in any order.
HOSTILE = [
    "a", "b", "1", " ", "  ", "    ", "\t", "#", "*", "_", "-", "+", "=", ">", "<", "&", ";", "|", "~", "`", "$",
    "\\", "[", "]", "(", ")", "!", ":", "/", ".", "@", "{", "}", '"', "'", "1.", "1)", "***", "---", "===",
    "http://evil.example/x.png", "https://evil.example/phish", "www.evil.example", "evil.com", "mail@evil.example",
    "//evil.example/p", "javascript:alert(1)", "<img src=x onerror=alert(1)>", "<a href='https://evil.example'>",
    "</details>", "<details>", "![x](http://evil.example/x.png)", "[click](https://evil.example/phish)",
    "<https://evil.example>", "&lt;", "&#x3C;", "${x}", "{{y}}",
    "\r", "\n", "\r\n", "\r\r", "\n\n", "\v", "\f", "\x85", "\u2028", "\u2029", "\x1c", "\x1d", "\x1e",
    "\x00", "\x1b[2J", "\x1b]0;title\x07", "\x9b31m", "\x7f", "\u202e",
]
hostile_text = st.lists(st.sampled_from(HOSTILE), max_size=30).map("".join)
LINE_BREAKS = "\r\n\v\f\x1c\x1d\x1e\x85\u2028\u2029"

_GFM = markdown_it.MarkdownIt("gfm-like")  # GitHub-flavoured: tables, strikethrough and bare-URL links (linkify)


def _tokens(tokens):
    for token in tokens:
        yield token
        yield from _tokens(token.children or [])


def _visible(text: str) -> str:
    """What a reader sees of `text`, blank space aside (Markdown folds it; NUL becomes U+FFFD everywhere)."""
    return "".join(text.replace("\x00", "\ufffd").split())


@settings(max_examples=400, deadline=None)
@given(hostile_text)
def test_escaped_markdown_has_no_link_image_or_html_and_shows_the_text(text):
    """The oracle is markdown-it with linkify: escaped text parses to paragraphs and line breaks only."""
    escaped = render.escape_markdown(text)
    kinds = {token.type for token in _tokens(_GFM.parse(escaped))}
    assert not kinds & {"link_open", "image", "html_inline", "html_block", "fence", "code_block", "table_open"}, kinds
    rendered = parse(_GFM.render(escaped))
    assert set(rendered.tags) <= {"p", "br"}, (text, rendered.tags)
    assert _visible("".join(rendered.text)) == _visible(text)


@pytest.mark.parametrize("line_break", ["\r", "\r\n", "\n", "\v", "\f", "\x85", "\u2028", "\u2029", "\x1e"])
def test_every_line_break_starts_a_line_that_is_escaped_too(line_break):
    """Today's miss: block syntax after a bare `\\r` was left as it was."""
    text = f"intro{line_break}# heading{line_break}- item{line_break}1. first{line_break}    code"
    out = render.escape_markdown(text)
    assert out.split("\n")[1:] == ["\\# heading", "\\- item", "1\\. first", "&#32;" * 4 + "code"]


def test_bare_urls_domains_and_addresses_are_not_links():
    for text in ["see https://evil.example/phish", "www.evil.example", "evil.com/x", "write to a@evil.example"]:
        escaped = render.escape_markdown(text)
        assert "link_open" not in {t.type for t in _tokens(_GFM.parse(escaped))}, escaped
        assert parse(_GFM.render(escaped)).text == [text, "\n"]


@settings(max_examples=300, deadline=None)
@given(hostile_text)
def test_single_line_html_and_attributes_have_no_line_break_and_keep_the_text(text):
    line = render.escape_html_line(text)
    attribute = render.escape_attribute(text)
    assert not any(c in LINE_BREAKS for c in line + attribute)
    assert "<" not in line and "<" not in attribute and '"' not in attribute
    expected = render.LINE_BREAK.sub(" ", text).replace("\x00", "\ufffd")
    assert "".join(parse(f"<p>{line}</p>").text).replace("\x00", "\ufffd") == expected

    class Attributes(HTMLParser):
        def handle_starttag(self, tag, attrs):
            self.attrs = dict(attrs)

    parser = Attributes(convert_charrefs=True)
    parser.feed(f'<p data-x="{attribute}" title="t">')
    assert parser.attrs["data-x"].replace("\x00", "\ufffd") == expected and parser.attrs["title"] == "t"
    assert render.escape_html_line("a\r\rb", line_break="<br>") == "a<br><br>b"


ISSUE_HEADING = (
    "Selenium facts\r\r![x](http://evil.example/x.png)\r\r"
    "[Click here for your personal dose](https://evil.example/phish)\r\rend"
)
ISSUE_TEXT = f"# {ISSUE_HEADING}\n\nSelenium is a trace mineral found in Brazil nuts.\n"


def _check_message(message: str) -> list[str]:
    """Parse a chat message as the oracle does: no link, no image, every HTML block one whole `<details>`."""
    tokens = list(_tokens(_GFM.parse(message)))
    assert not {t.type for t in tokens} & {"link_open", "image", "html_inline"}, [t.type for t in tokens]
    blocks = [t.content for t in tokens if t.type == "html_block"]
    for block in blocks:  # a citation, a laid-out quote or a notice: one whole element on one line
        closing = "</details>" if block.startswith("<details") else "</div>"
        assert block.startswith(("<details", '<div class="quote"', '<div class="notice"')), block
        assert block.rstrip("\n").endswith(closing), block
        assert block.rstrip("\n").count("\n") == 0, block
    tags = set(parse(_GFM.render(message)).tags)
    assert tags <= {"p", "br", "strong", "em", "hr", "details", "summary", "small", "div", "mark", "sup", "span",
                    "h4", "ul", "li", "table", "tr", "th", "td"}, tags
    return blocks


def test_the_issue_heading_stays_inside_its_citation():
    """Finding 1: a heading with `\\r\\r`, an image and a link ended the `<details>` block; now it is text."""
    quote = "Selenium is a trace mineral found in Brazil nuts."
    start = ISSUE_TEXT.index(quote)
    citation = Citation(n=1, quote=quote, source="s.md", section=ISSUE_HEADING, start=start, end=start + len(quote),
                        score=1.0)
    answer = Answer(question="selenium?", answer=f"{quote} [1]", grounded=True, citations=[citation],
                    disclaimer=DISCLAIMER)
    message = render.render_answer(answer, {"s.md": ISSUE_TEXT})
    quote_block, block = _check_message(message)
    shown = "".join(parse(block).text)
    assert "![x](http://evil.example/x.png)" in shown and "(https://evil.example/phish)" in shown


@settings(max_examples=200, deadline=None)
@given(source=hostile_text, section=hostile_text, before=hostile_text, quote=hostile_text, after=hostile_text)
def test_a_hostile_document_and_file_name_cannot_add_markup_to_an_answer(source, section, before, quote, after):
    quote = quote or "q"
    text = before + quote + after
    citation = Citation(n=1, quote=quote, source=source or "s", section=section, start=len(before),
                        end=len(before) + len(quote), score=1.0)
    answer = Answer(question="q", answer=f"{quote} [1]", grounded=True, citations=[citation], disclaimer=DISCLAIMER)
    message = render.render_answer(answer, {citation.source: text})
    assert len(_check_message(message)) == 2  # the quote and its citation
    assert message.endswith(f"_{render.escape_markdown(DISCLAIMER)}_")


def test_a_file_name_with_blank_lines_and_markup_stays_one_line():
    source = "notes\n\n![y](https:evil.example)\n\n[z](https:evil.example)\r\r.md"
    citation = cite(1, QUOTE_1, source=source)
    answer = Answer(question="q", answer=f"{QUOTE_1} [1]", grounded=True, citations=[citation], disclaimer=DISCLAIMER)
    message = render.render_answer(answer, {source: TEXT})
    quote_block, block = _check_message(message)
    assert "![y](https:evil.example)" in "".join(parse(block).text)
    view = render.render_corpus([Document(source=source, text=TEXT, sha256="0")], [citation])
    out = parse(view)
    assert "a" not in out.tags and "img" not in out.tags and "\n\n" not in view.split('class="doc-text"')[0]


# --- the terminal ------------------------------------------------------------------------------------


TERMINAL_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


@settings(max_examples=300, deadline=None)
@given(hostile_text)
def test_terminal_text_has_no_control_character_but_newline_and_tab(text):
    out = render.escape_terminal(text)
    assert not TERMINAL_UNSAFE.search(out), repr(out)
    assert out.count("\n") == len(render.LINE_BREAK.findall(text))  # every line break, of any convention, once


@given(st.text(st.characters(blacklist_categories=["Cc", "Cs", "Zl", "Zp"], blacklist_characters="\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")))
def test_terminal_leaves_ordinary_text_alone(text):
    assert render.escape_terminal(text) == text
    assert render.escape_terminal(f"{text}\n\t{text}") == f"{text}\n\t{text}"


def test_terminal_escape_sequences_print_as_text():
    """Finding 9: `\\033]0;…\\007\\033[2J` retitled the terminal and cleared it."""
    assert render.escape_terminal("a\x1b]0;pwned\x07\x1b[2Jb") == "a\\x1b]0;pwned\\x07\\x1b[2Jb"
    assert render.escape_terminal("safe\rEVIL") == "safe\nEVIL"  # a bare CR cannot overwrite the line
    assert render.escape_terminal("x\x9b2Jy\u202egnp.exe") == "x\\x9b2Jy\\u202egnp.exe"
    assert render.escape_terminal("l1\r\nl2\x85l3\u2028l4\fl5") == "l1\nl2\nl3\nl4\nl5"


# --- bounded output ----------------------------------------------------------------------------------


def test_a_question_over_the_limit_is_not_echoed():
    shown = render.render_question("x" * 1_000_000, max_chars=2000)
    assert len(shown) < 100 and "1,000,000 characters" in shown
    assert render.render_question("**hi**", max_chars=2000) == render.escape_markdown("**hi**")


def test_busy_message_says_when_to_try_again():
    message = render.with_disclaimer(render.busy_blocks(12))
    assert "busy, try again in 12 s" in message and message.endswith(f"_{render.escape_markdown(DISCLAIMER)}_")


def test_corpus_view_shows_a_window_of_a_large_cited_document_not_all_of_it():
    filler = "Filler sentence about nothing in particular. " * 20
    text = "\n\n".join([filler] * 300 + ["Selenium is found in Brazil nuts."] + [filler] * 300)  # ~550k characters
    quote = "Selenium is found in Brazil nuts."
    citation = Citation(n=1, quote=quote, source="big.txt", section="", start=text.index(quote),
                        end=text.index(quote) + len(quote), score=1.0)
    big = Document(source="big.txt", text=text, sha256="0")
    small = Document(source="small.txt", text="Short.", sha256="1")
    view = render.render_corpus([big, small], [citation])
    assert len(text) > 500_000 and len(view) < 12_000
    out = parse(view)
    assert out.marks == [quote] and view.count("characters not shown") == 2
    assert "Short." in view
    uncited = render.render_corpus([big, small])
    assert len(uncited) < 2_000 and "not shown" in uncited and "Short." in uncited


def test_corpus_windows_merge_and_hold_their_spans():
    text = "word " * 2000
    windows = render.corpus_windows(text, [(2, 5000, 5004), (1, 100, 104), (3, 150, 154)], context_chars=100)
    assert len(windows) == 2 and windows[0][0] <= 100 and windows[0][1] >= 154
    assert windows[1][0] <= 5000 <= 5004 <= windows[1][1] and windows[1][1] - windows[1][0] <= 204
    assert windows[0][1] - windows[0][0] <= 254


# --- laid out as the document: tables with their header, lists with every bullet, headings (issue 14) ---

IRON = (Path(__file__).parent / "fixtures" / "corpus_md" / "iron.md").read_text(encoding="utf-8")


def iron_citation(n: int, quote: str) -> Citation:
    return cite(n, quote, source="iron.md", text=IRON)


class _Structure(HTMLParser):
    """Rows of table cells, list items and headings of an HTML fragment, as text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[list[tuple[str, str]]] = []
        self.items: list[str] = []
        self.headings: list[str] = []
        self._open: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        elif tag in ("th", "td"):
            self.rows[-1].append((tag, ""))
        elif tag == "li":
            self.items.append("")
        elif tag == "h4":
            self.headings.append("")
        self._open.append(tag)

    def handle_endtag(self, tag):
        while self._open and self._open.pop() != tag:
            pass

    def handle_data(self, data):
        if data.startswith("["):  # a citation number
            return
        if "th" in self._open or "td" in self._open:
            kind, text = self.rows[-1][-1]
            self.rows[-1][-1] = (kind, text + data)
        elif "li" in self._open:
            self.items[-1] += data
        elif "h4" in self._open:
            self.headings[-1] += data


def structure(fragment: str) -> _Structure:
    parser = _Structure()
    parser.feed(fragment)
    return parser


def test_a_quoted_table_row_shows_under_its_header_row():
    row = "| Haem iron | Well | Meat and fish |"
    block = render.render_quote(iron_citation(1, row), {"iron.md": IRON})
    assert "\n" not in block and "|" not in block
    out = structure(block)
    assert out.rows == [[("th", "Form"), ("th", "Absorbed"), ("th", "Found in")],
                        [("td", "Haem iron"), ("td", "Well"), ("td", "Meat and fish")]]
    assert parse(block).text.count("[1]") == 1


def test_a_quoted_list_keeps_every_bullet():
    quote = "Red meat and liver\n- Beans, lentils and tofu\n- Fortified breakfast cereals"  # as chunking cuts a list
    out = structure(render.render_quote(iron_citation(2, quote), {"iron.md": IRON}))
    assert out.items == ["Red meat and liver", "Beans, lentils and tofu", "Fortified breakfast cereals"]


def test_a_quote_of_a_changed_document_is_plain_escaped_text():
    citation = iron_citation(1, "| Haem iron | Well | Meat and fish |")
    assert render.render_quote(citation, {"iron.md": IRON.replace("Haem", "Heme")}) == render.escape_markdown(
        citation.quote) + " \\[1\\]"


def test_passage_and_corpus_show_headings_as_headings_and_tables_without_separator_rows():
    citation = iron_citation(1, "Beans, lentils and tofu")
    passage = render.render_passage(citation, {"iron.md": IRON})
    view = render.render_corpus([Document(source="iron.md", text=IRON, sha256="0")], [citation])
    for html_text in (passage, view):
        assert "---" not in html_text and "# " not in "".join(parse(html_text).text)
    out = structure(view)
    assert out.headings == ["Iron and Health", "Food sources", "Absorption"]
    assert out.items == ["Red meat and liver", "Beans, lentils and tofu", "Fortified breakfast cereals"]
    assert [cell for cell, _ in out.rows[0]] == ["th"] * 3 and len(out.rows) == 3
    assert parse(view).marks == ["Beans, lentils and tofu"]


def test_markdown_links_and_images_in_documents_stay_text():
    text = "# Links\n\nSee [a](https://evil.example) and ![i](http://evil.example/i.png) <b>x</b>.\n"
    view = render.render_corpus([Document(source="l.md", text=text, sha256="0")])
    out = parse(view)
    assert not {"a", "img", "b"} & set(out.tags)
    assert "See [a](https://evil.example) and ![i](http://evil.example/i.png) <b>x</b>." in "".join(out.text)


def test_a_safety_notice_is_its_own_block_before_the_quotes():
    notice = "If this is an emergency, call <112> now."
    citation = cite(1, QUOTE_1)
    answer = Answer(question="q", answer=f"{notice}\n\n{QUOTE_1} [1]", grounded=True, citations=[citation],
                    disclaimer=DISCLAIMER, notice=notice)
    blocks = render.answer_blocks(answer, TEXTS)
    assert blocks[0].startswith('<div class="notice" role="note">') and "&lt;112&gt;" in blocks[0]
    assert blocks[1].startswith('<div class="quote" data-n="1">')


def test_a_pdf_citation_names_its_page_and_a_text_one_does_not() -> None:
    on_page = cite(1, QUOTE_1).model_copy(update={"page": 3})
    summary = re.search(r"<summary>.*</summary>", render.render_citation(on_page, {SOURCE: TEXT})).group(0)
    assert "(page 3, characters" in summary
    plain = re.search(r"<summary>.*</summary>", render.render_citation(cite(1, QUOTE_1), {SOURCE: TEXT})).group(0)
    assert "page" not in plain
