from __future__ import annotations

from hypothesis import given, settings as hsettings, strategies as st

from assistant.chunking import chunk_document, layout_lines, split_sentences, table_cells, table_header
from assistant.corpus import sha256_hex
from assistant.models import Document
from conftest import ARTICLE, FIXTURES


def doc(text: str, source: str = "doc.md") -> Document:
    return Document(source=source, text=text, sha256=sha256_hex(text))


def assert_exact(document: Document, chunks) -> None:
    for c in chunks:
        assert c.text == document.text[c.start : c.end]
        assert c.start < c.end
        assert c.text == c.text.strip()
        assert c.source == document.source
    assert [c.id for c in chunks] == list(range(chunks[0].id, chunks[0].id + len(chunks))) if chunks else True


def test_article_chunks_are_exact_spans_with_sections():
    article = doc(ARTICLE.read_text(encoding="utf-8"), ARTICLE.name)
    chunks = chunk_document(article)
    assert_exact(article, chunks)
    by_text = {c.text: c for c in chunks}
    first = chunks[0]
    assert first.section == "The Dynamic Relationship Between Calcium and Magnesium"
    assert first.text.startswith("Calcium and magnesium are antagonistic minerals")
    item = next(c for c in chunks if c.kind == "list_item" and c.text.startswith("Legumes"))
    assert item.section == "Optimizing Your Diet to Support Magnesium Intake"
    assert "Here are some excellent dietary sources:" in item.context
    row = next(c for c in chunks if c.kind == "table_row" and "Glycinate" in c.text)
    assert row.section == "Magnesium Supplementation and Forms"
    assert "Bioavailability: High" in row.context and "Best For: Relaxation, sleep, muscle tension." in row.context
    assert row.text.startswith("| Magnesium Glycinate |")
    assert {c.kind for c in chunks} == {"sentence", "list_item", "table_row", "list", "table"}
    assert "Mechanisms: Can Magnesium Dissolve Calcification?" in {c.section for c in chunks}
    assert "Mechanisms: Can Magnesium Dissolve Calcification?" not in by_text  # headings are context, not quotes


def test_markdown_structure():
    text = (FIXTURES / "corpus_md" / "iron.md").read_text(encoding="utf-8")
    document = doc(text, "iron.md")
    chunks = chunk_document(document)
    assert_exact(document, chunks)
    sections = [c.section for c in chunks]
    assert sections[0] == "Iron and Health"
    assert "Food sources" in sections and "Absorption" in sections
    # a hard-wrapped sentence stays one sentence, newline included, and "e.g." does not end it
    wrapped = next(c for c in chunks if c.text.startswith("Without enough iron"))
    assert "\n" in wrapped.text and wrapped.text.endswith("to the muscles.")
    item = next(c for c in chunks if c.text == "Beans, lentils and tofu")
    assert item.kind == "list_item" and "Good sources of iron include:" in item.context
    row = next(c for c in chunks if c.kind == "table_row" and "Non-haem" in c.text)
    assert "Absorbed: Less well" in row.context


def test_a_list_straight_under_a_heading_takes_no_lead_in_from_the_section_before():
    document = doc("# Intake\nAdults need two litres a day.\n\n# Signs\n- Thirst\n- Dark urine\n")
    items = [c for c in chunk_document(document) if c.kind == "list_item"]
    assert [c.context.split("\n")[-1] for c in items] == ["Signs", "Signs"]
    assert not any("Adults need" in c.context for c in items)


def test_a_chunk_that_does_not_name_the_page_subject_is_read_under_the_page_title():
    document = doc("# Iron Deficiency\n\n## Signs\n\nTiredness is the most common complaint. "
                   "Iron stores fall first.\n\n| Sign | How often |\n|---|---|\n| Pale skin | Often |\n")
    chunks = {c.text: c for c in chunk_document(document)}
    assert chunks["Tiredness is the most common complaint."].context == "Iron Deficiency\nSigns"
    assert chunks["Iron stores fall first."].context == "Signs"  # names the subject itself
    assert chunks["| Pale skin | Often |"].context.startswith("Iron Deficiency\nSigns\n")
    assert {c.section for c in chunks.values()} == {"Signs"}  # the citation's section is unchanged


def test_a_sentence_that_points_back_is_found_through_the_one_before():
    document = doc("# Shingles\n\nThe rash appears on one side of the body. It can also affect the scalp. Most recover.\n")
    chunks = {c.text: c for c in chunk_document(document)}
    assert chunks["It can also affect the scalp."].context == "Shingles\nThe rash appears on one side of the body."
    assert chunks["Most recover."].context == "Shingles"  # reads alone: no sentence borrowed
    assert chunks["The rash appears on one side of the body."].context == "Shingles"


def test_crlf_and_plain_text_offsets():
    text = "Title Line\r\nFirst sentence here. Second one follows!\r\n\r\n- item one\r\n- item two\r\n"
    document = doc(text, "crlf.txt")
    chunks = chunk_document(document)
    assert_exact(document, chunks)
    assert [c.text for c in chunks if c.kind != "list"] == [
        "First sentence here.", "Second one follows!", "item one", "item two"
    ]
    assert all("\r" not in c.text for c in chunks if c.kind != "list")


def test_split_sentences_respects_abbreviations():
    text = "Dr. Smith met Mr. Jones, e.g. at noon. They spoke. Vitamin D. Levels rose."
    spans = split_sentences(text, 0, len(text))
    assert [text[s:e] for s, e in spans][:2] == ["Dr. Smith met Mr. Jones, e.g. at noon.", "They spoke."]


def test_long_sentence_is_cut_within_limit():
    text = "Intro\n" + " ".join(["word"] * 600) + "."
    document = doc(text, "long.txt")
    chunks = chunk_document(document, max_chunk_chars=200)
    assert_exact(document, chunks)
    assert all(len(c.text) <= 200 for c in chunks)


line = st.one_of(
    st.text(min_size=0, max_size=80),
    st.sampled_from(["# Heading", "## Sub heading", "Short Title", "- item", "* item two", "1. first",
                     "| a | b |", "|---|---|", "| 1 | 2 |", "", "   ", "Text. More text! Why?", "===", "---"]),
)


@hsettings(max_examples=300, deadline=None)
@given(st.lists(line, max_size=25), st.sampled_from(["\n", "\r\n"]))
def test_any_document_gives_exact_spans(lines, newline):
    text = newline.join(lines)
    if not text.strip():
        return
    document = doc(text)
    chunks = chunk_document(document, max_chunk_chars=120)
    assert_exact(document, chunks)


@hsettings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=400))
def test_arbitrary_text_never_raises(text):
    document = doc(text)
    assert_exact(document, chunk_document(document, max_chunk_chars=80))


def test_layout_lines_give_content_without_markers_and_a_row_finds_its_header():
    text = "# Title\n\n- one\n- two\n\n| A | B |\n|---|---|\n| x | y |\n| z | w |\n"
    laid = [(line.kind, text[line.body_start : line.body_end]) for line in layout_lines(text) if line.kind != "blank"]
    assert laid == [("heading", "Title"), ("list_item", "one"), ("list_item", "two"), ("table", "| A | B |"),
                    ("table_sep", "|---|---|"), ("table", "| x | y |"), ("table", "| z | w |")]
    row = text.index("| z")
    assert [text[s:e] for s, e in table_cells(text, row, row + 9)] == ["z", "w"]
    header = table_header(text, row)
    assert header is not None and text[header[0] : header[1]] == "| A | B |"
    assert table_header(text, text.index("| A")) is None and table_header(text, text.index("- two")) is None


def test_a_long_first_line_without_closing_punctuation_is_the_title():
    text = ("Vitamin B12 — What It Does, Who Runs Low, and How Deficiency Is Treated\n\n"
            "# Food sources\n\nGood sources include meat and fish.\n")
    chunks = chunk_document(doc(text, "b12.txt"))
    assert [c.text for c in chunks] == ["Good sources include meat and fish."]
    assert chunks[0].context.startswith("Vitamin B12 — What It Does")
    sentence = "This first line is a long sentence of more than twelve words that ends with a full stop.\n"
    assert [c.kind for c in chunk_document(doc(sentence, "s.txt"))] == ["sentence"]
