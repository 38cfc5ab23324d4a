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
    assert "\\[1\\]" in body and "\\[2\\]" in body  # markers, shown literally
    for c in answer.citations:
        block = next(b for b in message.split("\n\n") if b.startswith(f'<details class="citation" data-n="{c.n}"'))
        out = parse(block)
        assert out.marks == [c.quote]
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
    assert out.marks == [QUOTE_1, QUOTE_2]
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
    assert parse(render.render_corpus([doc], grounded_answer().citations)).marks == [QUOTE_2]


def test_render_never_imports_a_ui_library():
    tree = ast.parse(Path(render.__file__).read_text(encoding="utf-8"))
    nodes = list(ast.walk(tree))
    imported = {alias.name.split(".")[0] for node in nodes if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in nodes if isinstance(node, ast.ImportFrom) and node.module}
    assert "gradio" not in imported
