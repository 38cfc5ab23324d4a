"""PDFs and web pages as corpus documents: indexed, cited with page and boxes, skipped with a reason.

Fixtures are generated (reportlab, HTML strings) by the helpers of test_readers.py. Boxes are
checked against an independent extractor, PDFium (pypdfium2), never against our own reader.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from assistant import Assistant
from assistant.answer import DISCLAIMER
from assistant.corpus import Unreadable, open_document
from assistant.models import Answer
from assistant.readers import read_file
from assistant.settings import Settings

pytest.importorskip("pypdfium2")
pytest.importorskip("reportlab")

from test_readers import (  # noqa: E402  (the generators live with the readers' tests)
    BOILERPLATE,
    CROSS_SENTENCE,
    HTML_BOILERPLATE,
    HTML_PAGE,
    make_article_pdf,
    make_crossing_pdf,
    make_encrypted_pdf,
    make_image_only_pdf,
    pdfium_text_in,
)

BACKENDS = ["faiss", pytest.param("milvus", marks=pytest.mark.milvus)]


@pytest.fixture(scope="module")
def pdf_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("pdfs")
    make_article_pdf(folder / "one-column.pdf", columns=1)
    make_article_pdf(folder / "two-column.pdf", columns=2)
    make_crossing_pdf(folder / "crossing.pdf")
    return folder


def corpus_of(tmp_path: Path, pdf_folder: Path, *names: str) -> Path:
    corpus = tmp_path / "corpus"
    corpus.mkdir(exist_ok=True)
    for name in names:
        shutil.copy(pdf_folder / name, corpus / name)
    return corpus


def load(tmp_path: Path, corpus: Path, embedder, backend: str = "faiss", **extra) -> Assistant:
    if backend == "milvus":
        pytest.importorskip("pymilvus")
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / f"index-{backend}", backend=backend,
                        milvus_uri=str(tmp_path / "milvus.db"), uploads_dir=tmp_path / "uploads", **extra)
    return Assistant.load(settings, embedder=embedder, on_rebuild=lambda m: None)


def _flat(text: str) -> str:
    return re.sub(r"[\W_]+", "", text.lower())


def assert_cited_on_its_pages(answer: Answer, corpus: Path) -> None:
    """Every quote is the exact span of its file's `source_text`; a PDF's boxes hold its words for PDFium."""
    assert answer.disclaimer == DISCLAIMER
    for c in answer.citations:
        path = corpus / c.source
        text = read_file(path, max_bytes=50_000_000).text  # re-extracted: the index is not the oracle
        assert text[c.start : c.end] == c.quote
        if path.suffix != ".pdf":
            assert c.page is None and c.boxes == []
            continue
        assert c.boxes and c.page == c.boxes[0][0]
        inside = _flat(pdfium_text_in(path, c.boxes))
        for word in re.findall(r"\w+", c.quote.lower()):
            assert _flat(word) in inside, f"{word!r} of {c.quote!r} is not in its boxes for PDFium: {inside!r}"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ["one-column.pdf", "two-column.pdf"])
def test_pdfs_are_indexed_and_cited_with_page_and_boxes(tmp_path, pdf_folder, fake_embedder, name, backend):
    corpus = corpus_of(tmp_path, pdf_folder, name)
    bot = load(tmp_path, corpus, fake_embedder, backend)
    try:
        for question in ("How much calcium do adults need a day?", "When should I see a doctor about cramps?",
                         "Which foods are good sources of magnesium?"):
            answer = bot.ask(question)
            assert answer.grounded, question
            assert_cited_on_its_pages(answer, corpus)
            for c in answer.citations:
                assert not any(marker in c.quote for marker in BOILERPLATE)
        assert bot.store.geometry(name) is not None and bot.store.geometry("nothing.pdf") is None
    finally:
        bot.close()
    again = load(tmp_path, corpus, fake_embedder, backend)  # reopened: the geometry came from the store, not the file
    try:
        cited = again.ask("How much calcium do adults need a day?")
        assert cited.citations and cited.citations[0].boxes
        payload = Answer.model_validate_json(cited.model_dump_json())
        assert payload.citations[0].boxes == cited.citations[0].boxes and payload.citations[0].page >= 1
    finally:
        again.close()


def test_a_quote_crossing_a_page_has_boxes_on_both_pages(tmp_path, pdf_folder, fake_embedder):
    corpus = corpus_of(tmp_path, pdf_folder, "crossing.pdf")
    bot = load(tmp_path, corpus, fake_embedder)
    try:
        answer = bot.ask("Does magnesium help the body absorb and use calcium from food?")
    finally:
        bot.close()
    crossing = [c for c in answer.citations if CROSS_SENTENCE in c.quote]
    assert crossing, [c.quote for c in answer.citations]
    assert crossing[0].page == 1 and {box[0] for box in crossing[0].boxes} == {1, 2}
    assert_cited_on_its_pages(answer, corpus)


def test_unusable_pdfs_are_skipped_with_a_reason_and_the_others_load(tmp_path, pdf_folder, fake_embedder):
    corpus = corpus_of(tmp_path, pdf_folder, "one-column.pdf")
    make_image_only_pdf(corpus / "scan.pdf")
    make_encrypted_pdf(corpus / "locked.pdf", user_password="secret")
    (corpus / "fake.pdf").write_text("not a pdf at all", encoding="utf-8")
    from assistant.indexing import open_synced

    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index")
    store, report = open_synced(settings, fake_embedder, on_change=lambda m: None)
    try:
        reasons = {s.source: s.reason for s in report.skipped}
        assert set(store.sources()) == {"one-column.pdf"}
    finally:
        store.close()
    assert set(reasons) == {"scan.pdf", "locked.pdf", "fake.pdf"}
    assert "text layer" in reasons["scan.pdf"] and "encrypted" in reasons["locked.pdf"]
    assert "not a PDF" in reasons["fake.pdf"]
    assert all("\n" not in reason for reason in reasons.values())
    with pytest.raises(Unreadable):
        open_document(corpus / "locked.pdf", corpus, max_bytes=10_000_000)


def test_the_pdf_limits_come_from_the_settings(tmp_path, pdf_folder, fake_embedder):
    from assistant.indexing import open_synced

    corpus = corpus_of(tmp_path, pdf_folder, "crossing.pdf")  # two pages
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index", pdf_max_pages=1)
    store, report = open_synced(settings, fake_embedder, on_change=lambda m: None)
    try:
        assert store.sources() == {}
    finally:
        store.close()
    assert [s.source for s in report.skipped] == ["crossing.pdf"] and "page" in report.skipped[0].reason


def test_web_pages_are_quoted_without_their_boilerplate(tmp_path, fake_embedder):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "page.html").write_text(HTML_PAGE, encoding="utf-8")
    bot = load(tmp_path, corpus, fake_embedder)
    try:
        answers = [bot.ask(q) for q in ("Which foods are good sources of magnesium?", "How much calcium do adults need?",
                                        "Do you accept all cookies?", "What is in the navigation menu?")]
    finally:
        bot.close()
    assert answers[0].grounded
    for answer in answers:
        assert_cited_on_its_pages(answer, corpus)
        for c in answer.citations:
            assert not any(marker in c.quote for marker in HTML_BOILERPLATE), c.quote


def test_verify_reads_pdfs_and_web_pages_again(tmp_path, pdf_folder, fake_embedder, monkeypatch):
    from assistant import readers
    from assistant.verify import verify_store

    corpus = corpus_of(tmp_path, pdf_folder, "one-column.pdf")
    (corpus / "page.html").write_text(HTML_PAGE, encoding="utf-8")
    bot = load(tmp_path, corpus, fake_embedder)
    try:
        report = verify_store(bot.store, corpus)
        assert report.ok and report.files == 2, report.problems
        read = readers.read_file

        def newer_reader(path, **kwargs):  # a reader whose rules changed since the index was built
            found = read(path, **kwargs)
            return found if found.kind == "pdf" else readers.Extracted(text=found.text.replace("minerals", "elements"), kind=found.kind)

        monkeypatch.setattr(readers, "read_file", newer_reader)
        problems = verify_store(bot.store, corpus).problems
        assert "reader changed" in problems[0] and all(p.startswith("page.html") for p in problems)
        monkeypatch.undo()
        shutil.copy(pdf_folder / "two-column.pdf", corpus / "one-column.pdf")  # the file itself changed
        problems = verify_store(bot.store, corpus).problems
        assert len(problems) == 1 and "one-column.pdf" in problems[0] and "changed" in problems[0]
    finally:
        bot.close()


# ------------------------------------------------------------------------------------------ uploads


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_upload_is_indexed_alone_answerable_at_once_and_survives_a_restart(tmp_path, corpus_dir, pdf_folder, fake_embedder,
                                                                              backend):
    bot = load(tmp_path, corpus_dir, fake_embedder, backend)
    try:
        before = fake_embedder.texts
        corpus_chunks = bot.store.count()
        summary = bot.add_document("leaflet.pdf", (pdf_folder / "crossing.pdf").read_bytes())
        assert summary.source == "uploads/leaflet.pdf" and summary.kind == "pdf" and summary.pages == 2
        assert fake_embedder.texts - before == summary.chunks  # only the new document was embedded
        assert bot.store.count() == corpus_chunks + summary.chunks
        answer = bot.ask("Does magnesium help the body absorb calcium from food?", sources=["uploads/leaflet.pdf"])
        assert answer.citations and {c.source for c in answer.citations} == {"uploads/leaflet.pdf"}
        assert answer.citations[0].page is not None and answer.citations[0].boxes
        assert (tmp_path / "uploads" / "leaflet.pdf").read_bytes() == (pdf_folder / "crossing.pdf").read_bytes()
        from assistant.verify import verify_store

        report = verify_store(bot.store, corpus_dir, uploads_dir=tmp_path / "uploads")
        assert report.ok and report.files == 3, report.problems
    finally:
        bot.close()
    embedded = fake_embedder.texts
    again = load(tmp_path, corpus_dir, fake_embedder, backend)  # a restart: nothing to embed, the upload is still there
    try:
        assert fake_embedder.texts == embedded and "uploads/leaflet.pdf" in again.store.sources()
        with pytest.raises(ValueError, match="corpus file"):
            again.remove_document("iron.md")
        assert again.remove_document("leaflet.pdf") == summary.chunks
        assert "uploads/leaflet.pdf" not in again.store.sources() and not (tmp_path / "uploads" / "leaflet.pdf").exists()
        with pytest.raises(ValueError, match="no uploaded document"):
            again.remove_document("leaflet.pdf")
    finally:
        again.close()


@pytest.mark.parametrize("name, data, reason", [
    ("../escape.txt", b"Iron is a metal.", "path"),
    ("sub/notes.txt", b"Iron is a metal.", "path"),
    (".hidden.txt", b"Iron is a metal.", "hidden"),
    ("bell\x07.txt", b"Iron is a metal.", "control"),
    ("notes.docx", b"PK\x03\x04", "not a supported type"),
    ("big.txt", b"x" * 2_001, "over the limit"),
    ("fake.pdf", b"<html><body><p>Iron.</p></body></html>", "content is html"),
    ("sneaky.txt", b"%PDF-1.4\n...", "content is pdf"),
    ("latin.txt", "caf\xe9".encode("latin-1"), "UTF-8"),
    ("empty.md", b"   ", "empty"),
])
def test_uploads_are_refused_with_a_one_line_reason(tmp_path, corpus_dir, fake_embedder, name, data, reason):
    from assistant.uploads import UploadRefused

    bot = load(tmp_path, corpus_dir, fake_embedder, max_file_bytes=2_000)
    try:
        with pytest.raises(UploadRefused) as caught:
            bot.add_document(name, data)
        assert reason in caught.value.reason and "\n" not in caught.value.reason
        assert caught.value.disclaimer == DISCLAIMER
        assert not any((tmp_path / "uploads").glob("*")) if (tmp_path / "uploads").exists() else True
        assert all(not s.startswith("uploads/") for s in bot.store.sources())
    finally:
        bot.close()


def test_an_encrypted_upload_is_refused_and_leaves_nothing_behind(tmp_path, corpus_dir, fake_embedder):
    from assistant.uploads import UploadRefused

    make_encrypted_pdf(tmp_path / "locked.pdf", user_password="secret")
    bot = load(tmp_path, corpus_dir, fake_embedder)
    try:
        with pytest.raises(UploadRefused, match="encrypted"):
            bot.add_document("locked.pdf", (tmp_path / "locked.pdf").read_bytes())
        assert list((tmp_path / "uploads").iterdir()) == []
    finally:
        bot.close()


def test_uploading_a_name_again_replaces_the_document(tmp_path, corpus_dir, fake_embedder):
    bot = load(tmp_path, corpus_dir, fake_embedder)
    try:
        bot.add_document("note.md", b"# Zinc\n\nZinc supports the immune system.\n")
        second = bot.add_document("note.md", b"# Copper\n\nCopper helps the body form red blood cells.\n")
        assert bot.store.document_text("uploads/note.md").startswith("# Copper")
        assert [r.chunk.text for r in bot.store.chunks_of("uploads/note.md")][-1] == "Copper helps the body form red blood cells."
        assert len(bot.store.chunks_of("uploads/note.md")) == second.chunks
        answer = bot.ask("What does zinc support?", sources=["uploads/note.md"])
        assert all("Zinc" not in c.quote for c in answer.citations)
    finally:
        bot.close()
