"""assistant.server.uploads_ui: the documents panel's add, remove, list and restrict, on a real Assistant.

Files arrive as Gradio would hand them over (a temporary copy named as the user's file); the
assistant uses the fake embedder of conftest, so nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant import Assistant
from assistant.answer import DISCLAIMER
from assistant.corpus import load_corpus
from assistant.server.auth import Credentials
from assistant.server.uploads_ui import Library, uploads_enabled
from assistant.settings import Settings

pytest.importorskip("reportlab")

from test_readers import make_crossing_pdf  # noqa: E402


@pytest.fixture(params=["faiss", pytest.param("milvus", marks=pytest.mark.milvus)])
def library(request, tmp_path, corpus_dir, fake_embedder):
    """A library on each backend: the panel only uses the Assistant's API, which hides the store."""
    if request.param == "milvus":
        pytest.importorskip("pymilvus")
    settings = Settings(corpus_dir=corpus_dir, index_dir=tmp_path / "index", uploads_dir=tmp_path / "uploads",
                        max_file_bytes=200_000, backend=request.param, milvus_uri=str(tmp_path / "milvus.db"))
    bot = Assistant.load(settings, embedder=fake_embedder, on_rebuild=lambda m: None)
    yield Library(bot, load_corpus(corpus_dir), settings)
    bot.close()


def gradio_copy(tmp_path: Path, name: str, data: bytes) -> Path:
    folder = tmp_path / "gradio" / "0123abcd"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)
    return folder / name


def test_an_upload_is_indexed_listed_answerable_alone_and_its_temporary_copy_deleted(tmp_path, library):
    copy = gradio_copy(tmp_path, "leaflet.pdf", make_crossing_pdf(tmp_path / "src.pdf").read_bytes())
    status = library.add(str(copy)).replace("\\", "")  # Markdown escapes the dot
    assert status.startswith("Ready: **uploads/leaflet.pdf**") and "(PDF, 2 pages)" in status
    assert status.rstrip().endswith("_") and DISCLAIMER.split()[0] in status
    assert not copy.exists() and not copy.parent.exists()
    listing = library.render_list()
    assert "uploads/leaflet.pdf</strong> <small>(PDF, 2 pages, uploaded)" in listing
    assert "calcium-and-magnesium.txt</strong> <small>(text)" in listing
    assert "iron.md</strong> <small>(Markdown)" in listing
    assert library.uploaded() == ["uploads/leaflet.pdf"] and "uploads/leaflet.pdf" in library.choices()
    assert "uploads/leaflet.pdf" in library.texts and library.locate("uploads/leaflet.pdf").is_file()
    answer = library.bot.ask("Does magnesium help the body absorb calcium from food?",
                             sources=library.sources_for(["uploads/leaflet.pdf"]))
    assert answer.citations and {c.source for c in answer.citations} == {"uploads/leaflet.pdf"}
    assert answer.citations[0].boxes


@pytest.mark.parametrize("name, data, reason", [
    ("tool.exe", b"MZ binary", "is not a supported type"),
    ("notes.pdf", b"just text, not a PDF", "its content is text"),
    ("big.txt", b"iron " * 50_000, "ASSISTANT_MAX_FILE_BYTES"),
    ("empty.md", b"   ", "is empty"),
])
def test_a_refused_upload_is_one_line_with_the_disclaimer_and_leaves_nothing(tmp_path, library, name, data, reason):
    copy = gradio_copy(tmp_path, name, data)
    status = library.add(copy)
    assert status.startswith("**Not done:**") and reason in status.replace("\\", "")
    assert status.count("\n\n") == 2 and DISCLAIMER.split()[0] in status  # the line, the rule, the disclaimer
    assert not copy.exists() and library.uploaded() == []
    assert not (tmp_path / "uploads").exists() or not any((tmp_path / "uploads").iterdir())


def test_nothing_received_and_uploads_off_are_refused(tmp_path, library):
    assert "no file was received" in library.add(None)
    library.enabled = False
    copy = gradio_copy(tmp_path, "a.md", b"# A\n\nIron is a metal.\n")
    assert "takes no uploads" in library.add(str(copy))


def test_an_upload_can_be_removed_but_a_corpus_document_cannot(tmp_path, library):
    library.add(gradio_copy(tmp_path, "zinc.md", b"# Zinc\n\nZinc supports the immune system.\n"))
    assert library.uploaded() == ["uploads/zinc.md"]
    refused = library.remove("iron.md")
    assert refused.startswith("**Not done:**") and "corpus file" in refused
    assert "choose an uploaded document" in library.remove(None)
    removed = library.remove("uploads/zinc.md").replace("\\", "")
    assert removed.startswith("Removed **uploads/zinc.md**")
    assert library.uploaded() == [] and "uploads/zinc.md" not in library.texts
    assert all(d.source != "uploads/zinc.md" for d in library.documents)
    assert "no uploaded document" in library.remove("uploads/zinc.md")


def test_the_restriction_is_none_when_nothing_is_chosen(library):
    assert library.sources_for([]) is None and library.sources_for(None) is None
    assert library.sources_for("iron.md") == ["iron.md"] and library.sources_for(["a", "b"]) == ["a", "b"]


@pytest.mark.parametrize("host, users, setting, expected", [
    ("127.0.0.1", False, None, True),
    ("0.0.0.0", False, None, False),  # exposed anonymously: no uploads unless asked for
    ("0.0.0.0", True, None, True),
    ("0.0.0.0", False, True, True),
    ("127.0.0.1", False, False, False),
])
def test_uploads_are_on_by_default_only_on_loopback_or_with_sign_in(host, users, setting, expected):
    from assistant.server.auth import hash_password

    credentials = Credentials(users={"alice": hash_password("a long password", n=2**8)} if users else {}, tokens=[])
    assert uploads_enabled(Settings(uploads_enabled=setting), host, credentials) is expected


def test_stored_documents_are_the_corpus_as_read_and_uploads_on_request(tmp_path, library):
    """The app's documents come from the store (no second read of every file); load_corpus is the oracle."""
    from assistant.server.uploads_ui import stored_documents

    library.add(str(gradio_copy(tmp_path, "leaflet.pdf", make_crossing_pdf(tmp_path / "src.pdf").read_bytes())))
    store = library.bot.store
    corpus = [(d.source, d.text, d.sha256, d.kind) for d in load_corpus(library.settings.corpus_dir)]
    assert [(d.source, d.text, d.sha256, d.kind) for d in stored_documents(store, uploads=False)] == corpus
    everything = stored_documents(store)
    leaflet = next(d for d in everything if d.source == "uploads/leaflet.pdf")
    assert [d.source for d in everything] == sorted([*(c[0] for c in corpus), "uploads/leaflet.pdf"])
    assert leaflet.kind == "pdf" and leaflet.pages == 2 and leaflet.geometry is not None
