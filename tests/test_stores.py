"""One conformance suite, run against every `ChunkStore` backend: FAISS files and Milvus (Lite, in tmp).

The answer contract is the same whichever backend holds the chunks: verbatim quotes at their
offsets, citations, refusals, the disclaimer, rejected input, and the store following the
corpus as files come and go. The FAISS store is the oracle for Milvus's BM25 statistics.
Milvus's own life cycle is in test_stores_milvus.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from assistant import Assistant
from assistant.answer import DISCLAIMER
from assistant.assistant import InvalidQuestion
from assistant.chunking import chunk_document
from assistant.corpus import read_document
from assistant.indexing import open_synced
from assistant.lexical import tokenize
from assistant.scope import coverage, names_known
from assistant.settings import Settings
from assistant.verify import verify_store
from assertions import assert_quotes_exact
from conftest import ARTICLE, FIXTURES, ROOT, FakeEmbedder

BACKENDS = ["faiss", pytest.param("milvus", marks=pytest.mark.milvus)]
ARTICLE_NAME = ARTICLE.name


def make_settings(tmp_path: Path, corpus: Path, backend: str, **extra) -> Settings:
    return Settings(
        corpus_dir=corpus, index_dir=tmp_path / f"index-{backend}", backend=backend,
        milvus_uri=str(tmp_path / f"milvus-{backend}.db"), **extra,
    )


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    if request.param == "milvus":
        pytest.importorskip("pymilvus", reason="the milvus extra is not installed: pip install -e '.[milvus]'")
    return request.param


@pytest.fixture
def bot(tmp_path, corpus_dir, backend, fake_embedder):
    assistant = Assistant.load(make_settings(tmp_path, corpus_dir, backend), embedder=fake_embedder, on_rebuild=lambda m: None)
    yield assistant
    assistant.close()


def test_answers_quote_the_corpus_verbatim_with_citations(bot, corpus_dir):
    answer = bot.ask("Which foods are good sources of iron?")
    assert answer.grounded and any(c.source == "iron.md" for c in answer.citations)
    assert_quotes_exact(answer, corpus_dir)
    assert "[1]" in answer.answer


def test_questions_outside_the_corpus_are_refused_with_the_disclaimer(bot):
    answer = bot.ask("How do I change the oil of a motorbike engine?")
    assert not answer.grounded and not answer.citations and answer.disclaimer == DISCLAIMER


@pytest.mark.parametrize("question", ["", "   ", "x" * 5000, "magnesium\x00", "calcium\x1b[31m"])
def test_bad_input_is_rejected_with_a_message(bot, question):
    with pytest.raises(InvalidQuestion) as caught:
        bot.ask(question)
    assert caught.value.reason and caught.value.disclaimer == DISCLAIMER


def test_markup_is_treated_as_text(bot, corpus_dir):
    assert_quotes_exact(bot.ask("<script>alert(1)</script> Which foods contain iron?"), corpus_dir)


def test_store_contract(bot, backend):
    store, embedder = bot.store, bot.embedder
    assert store.backend == backend
    stats = store.stats()
    assert stats["backend"] == backend and stats["files"] == 2 and stats["chunks"] == store.count() > 0
    assert stats["model"] == FakeEmbedder.name and stats["dimension"] == FakeEmbedder.dimension
    assert set(store.sources()) == {ARTICLE_NAME, "iron.md"}
    vector = embedder.encode(["haem iron absorbed from meat"])[0]
    dense = store.dense(vector, 5)
    assert len(dense) == 5 and [s for _, s in dense] == sorted((s for _, s in dense), reverse=True)
    lexical = store.lexical("haem iron", 5)
    assert lexical and all(s > 0 for _, s in lexical)
    records = store.records([key for key, _ in dense + lexical])
    assert all("iron" in r.chunk.embedding_text().lower() for key, r in records.items() if key in dict(lexical))
    assert np.allclose(store.vectors([dense[0][0]])[0] @ vector, dense[0][1], atol=1e-4)
    scores = store.lexical_scores("haem iron", [key for key, _ in lexical])
    assert np.allclose(scores, [s for _, s in lexical], rtol=1e-4)
    df = store.document_frequencies(["iron", "magnesium", "zzzunknown"])
    assert df["iron"] > 0 and df["magnesium"] > 0 and df["zzzunknown"] == 0
    view = store.view()
    assert coverage(view, "iron magnesium") == 1.0 and coverage(view, "zzzunknown") == 0.0
    assert names_known(view, "What does the Framingham study say?") and not names_known(view, "What does Zorblax say?")
    assert [r.chunk.start for r in store.chunks_of("iron.md")] == sorted(r.chunk.start for r in store.chunks_of("iron.md"))


def test_group_lookup_finds_the_whole_list(bot):
    item = next(h.chunk for h in bot.retriever.search("Red meat and liver", k=10) if h.chunk.kind == "list_item")
    whole = bot.store.view().group(item)
    assert whole is not None and whole.kind == "list" and item.text in whole.text


def test_remove_and_add_a_document_through_the_contract(bot, corpus_dir, fake_embedder):
    store = bot.store
    before = store.count()
    removed = store.remove("iron.md")
    store.commit()
    assert removed > 0 and store.count() == before - removed and "iron.md" not in store.sources()
    keys = [k for k, _ in store.lexical("haem iron", 5)]
    assert all(r.chunk.source != "iron.md" for r in store.records(keys).values())
    doc = read_document(corpus_dir / "iron.md", corpus_dir, max_bytes=10**6)
    chunks = chunk_document(doc)
    store.add(doc, chunks, fake_embedder.encode([c.embedding_text() for c in chunks]))
    store.commit()
    assert store.count() == before and store.sources()["iron.md"] == doc.sha256
    keys = [k for k, _ in store.lexical("haem iron", 3)]
    assert any(r.chunk.source == "iron.md" for r in store.records(keys).values())


def test_the_store_follows_files_added_changed_and_removed(tmp_path, backend, fake_embedder):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(FIXTURES / "corpus_md" / "iron.md", corpus / "iron.md")
    settings = make_settings(tmp_path, corpus, backend)

    def ask(question: str):
        bot = Assistant.load(settings, embedder=fake_embedder, on_rebuild=lambda m: None)
        try:
            answer = bot.ask(question)
            assert_quotes_exact(answer, corpus)
            return answer
        finally:
            bot.close()

    assert not ask("What is zinc needed for in the immune system?").grounded
    (corpus / "zinc.md").write_text(
        "# Zinc\n\nZinc is needed for the immune system and for wound healing.\n\n"
        "Oysters, beef and pumpkin seeds are rich in zinc.\n", encoding="utf-8")
    answer = ask("What is zinc needed for in the immune system?")
    assert answer.grounded and answer.citations[0].source == "zinc.md"
    (corpus / "zinc.md").write_text(
        "# Zinc\n\nAn edited first line comes before the rest.\n\nZinc supports the immune system and helps wounds heal.\n",
        encoding="utf-8")
    answer = ask("What is zinc needed for in the immune system?")
    assert answer.citations and all(c.quote != "Zinc is needed for the immune system and for wound healing." for c in answer.citations)
    (corpus / "zinc.md").unlink()
    answer = ask("What is zinc needed for in the immune system?")
    assert all(c.source != "zinc.md" for c in answer.citations)


def test_verify_reports_changed_and_missing_files(bot, corpus_dir, tmp_path):
    report = verify_store(bot.store, corpus_dir)
    assert report.ok and report.files == 2 and report.chunks == bot.store.count()
    copy = tmp_path / "copy"
    shutil.copytree(corpus_dir, copy)
    (copy / "iron.md").write_text("# Iron\n\nEdited after indexing.\n", encoding="utf-8")
    (copy / ARTICLE_NAME).unlink()
    problems = verify_store(bot.store, copy).problems
    assert any("iron.md" in p and "changed" in p for p in problems)
    assert any(ARTICLE_NAME in p and "not found" in p for p in problems)


@pytest.mark.milvus
def test_milvus_bm25_statistics_equal_the_faiss_stores(tmp_path, fake_embedder):
    """FAISS's BM25 is bm25s over the same tokens: the oracle for Milvus's kept statistics, through edits."""
    pytest.importorskip("pymilvus")
    corpus = tmp_path / "corpus"
    shutil.copytree(FIXTURES / "corpus_md", corpus)
    shutil.copy(ARTICLE, corpus / ARTICLE_NAME)
    queries = ["magnesium calcium", "iron red meat", "vitamin K2 bones", "zinc oysters seeds", "calcification"]

    def compare() -> None:
        stores = {}
        for backend in ("faiss", "milvus"):
            stores[backend], _ = open_synced(make_settings(tmp_path, corpus, backend, milvus_batch_size=8), fake_embedder,
                                             on_change=lambda m: None)
        try:
            faiss, milvus = stores["faiss"], stores["milvus"]
            assert milvus.count() == faiss.count()
            tokens = sorted({t for c in faiss.view().chunks for t in tokenize(c.embedding_text())}) + ["body's", "zzz"]
            assert milvus.document_frequencies(tokens) == faiss.document_frequencies(tokens)
            for query in queries:
                by_text = {r.chunk.text + r.chunk.source: k for k, r in milvus.records([k for k, _ in milvus.lexical(query, 50)]).items()}
                faiss_hits = faiss.lexical(query, 50)
                faiss_records = faiss.records([k for k, _ in faiss_hits])
                for key, score in faiss_hits:
                    chunk = faiss_records[key].chunk
                    other = by_text.get(chunk.text + chunk.source)
                    if other is not None:
                        assert milvus.lexical_scores(query, [other])[0] == pytest.approx(score, rel=1e-5)
        finally:
            stores["milvus"].close()

    compare()
    (corpus / "iron.md").write_text("# Iron\n\nIron is in red meat. Zinc is in oysters.\n", encoding="utf-8")
    compare()
    (corpus / ARTICLE_NAME).unlink()
    compare()
    (corpus / "zinc.md").write_text("# Zinc\n\n" + " ".join(f"Zinc fact {i} about oysters and seeds." for i in range(40)),
                                    encoding="utf-8")
    compare()


@pytest.mark.slow
@pytest.mark.milvus
def test_both_backends_give_the_same_citations_on_the_seed_corpus(tmp_path):
    """The real model, the project's corpus and its own question set: identical answers, citation for citation."""
    pytest.importorskip("pymilvus")
    from assistant.embedding import get_embedder

    corpus = tmp_path / "corpus"
    shutil.copytree(ROOT / "corpus", corpus)
    items = [json.loads(line) for line in (FIXTURES / "questions.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    embedder = get_embedder(Settings().model)
    results = {}
    for backend in ("faiss", "milvus"):
        bot = Assistant.load(make_settings(tmp_path, corpus, backend), embedder=embedder, on_rebuild=lambda m: None)
        answers = []
        for item in items:
            *history, question = item.get("turns") or [item["question"]]
            answer = bot.ask(question, history=history)
            assert_quotes_exact(answer, corpus)
            answers.append((answer.grounded, [(c.source, c.start, c.end) for c in answer.citations]))
        results[backend] = answers
        bot.close()
    differing = [item.get("question") or item["turns"] for item, f, m in zip(items, results["faiss"], results["milvus"]) if f != m]
    assert not differing, f"the backends answer differently: {differing}"
    assert sum(grounded for grounded, _ in results["milvus"]) > len(items) // 2


def test_the_faiss_backend_never_imports_pymilvus(tmp_path):
    code = (
        "import sys; from assistant import Assistant; from assistant.settings import Settings\n"
        "sys.path.insert(0, 'tests'); from conftest import FakeEmbedder\n"
        f"bot = Assistant.load(Settings(index_dir={str(tmp_path / 'idx')!r}), embedder=FakeEmbedder())\n"
        "bot.ask('Which foods contain magnesium?')\n"
        "assert 'pymilvus' not in sys.modules, 'pymilvus was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=120)


def test_choosing_milvus_without_the_extra_names_the_extra(tmp_path):
    code = (
        "import sys; sys.modules['pymilvus'] = None\n"
        "from assistant.settings import Settings; from assistant.stores import open_store\n"
        f"open_store(Settings(backend='milvus', index_dir={str(tmp_path / 'idx')!r}), model='m', dimension=4)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode != 0 and "pip install -e '.[milvus]'" in run.stderr


# ------------------------------------------------------------------------------------------ issue 13: sources, geometry


def test_a_question_can_be_restricted_to_named_documents(bot):
    from assistant.assistant import UnknownSource

    question = "Which foods are good sources of iron?"
    assert any(c.source == "iron.md" for c in bot.ask(question).citations)
    only = bot.ask(question, sources=[ARTICLE_NAME])
    assert only.citations and {c.source for c in only.citations} == {ARTICLE_NAME}
    view = bot.store.view()
    vector = bot.embedder.encode([question])[0]
    for pairs in (view.dense(vector, 50, {"iron.md"}), view.lexical(question, 50, {"iron.md"})):
        assert pairs and {r.chunk.source for r in view.records([k for k, _ in pairs]).values()} == {"iron.md"}
    restricted = dict(view.lexical(question, 500, {"iron.md"}))
    assert all(abs(score - restricted[key]) < 1e-4 for key, score in view.lexical(question, 500) if key in restricted)
    with pytest.raises(UnknownSource) as caught:
        bot.ask(question, sources=["nowhere.pdf"])
    assert "nowhere.pdf" in caught.value.reason and "iron.md" in caught.value.reason
    assert caught.value.disclaimer == DISCLAIMER


def test_page_geometry_is_kept_by_the_store_and_goes_with_its_document(tmp_path, corpus_dir, backend, fake_embedder):
    from assistant.models import Document
    from assistant.readers import PageGeometry
    from assistant.stores import open_store

    text = "# Iron\n\nIron is a metal found in red meat."
    drawn = [i for i, ch in enumerate(text) if ch not in "#\n"]
    geometry = PageGeometry.from_arrays(
        page_starts=[0, 8], page_sizes=[(612.0, 792.0)] * 2,
        char_line=[(0 if i < 8 else 1) if i in drawn else -1 for i in range(len(text))],
        char_x0=[10.0 + i for i in range(len(text))], char_x1=[15.0 + i for i in range(len(text))],
        line_page=[1, 2], line_top=[100.0, 72.0], line_bottom=[120.0, 84.0],
    )
    doc = Document(source="metal.pdf", text=text, sha256="f" * 64, kind="pdf", pages=2, geometry=geometry)
    settings = make_settings(tmp_path, corpus_dir, backend)
    identity = {"model": fake_embedder.name, "dimension": fake_embedder.dimension}
    store = open_store(settings, **identity, reset=True)
    chunks = chunk_document(doc)
    store.add(doc, chunks, fake_embedder.encode([c.embedding_text() for c in chunks]))
    store.commit()
    store.close()
    store = open_store(settings, **identity)
    try:
        assert store.geometry("metal.pdf") == geometry and store.view().geometry("metal.pdf") == geometry
        assert store.document_text("metal.pdf") == text and store.geometry("iron.md") is None
        store.remove("metal.pdf")
        store.commit()
        assert store.geometry("metal.pdf") is None
    finally:
        store.close()
