"""One conformance suite, run against every `ChunkStore` backend: FAISS files and Milvus (Lite, in tmp).

The answer contract is the same whichever backend holds the chunks: verbatim quotes at
their offsets, citations, refusals, the disclaimer, rejected input, and the index following
the corpus as files come and go. Milvus-only behaviour (foreign or other-model collections
refused, damage rebuilt, interrupted indexing resumed) is at the end.
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
from assistant.settings import Settings
from assistant.stores import open_store
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
    close(assistant.store)


def close(store) -> None:
    if hasattr(store, "close"):  # a Milvus Lite file serves one client at a time
        store.close()


def source_text(corpus: Path, source: str) -> str:
    return (corpus / source).read_bytes().decode("utf-8")


def assert_verbatim(answer, corpus: Path) -> None:
    assert answer.disclaimer == DISCLAIMER and answer.answer
    for c in answer.citations:
        assert source_text(corpus, c.source)[c.start : c.end] == c.quote


def test_answers_quote_the_corpus_verbatim_with_citations(bot, corpus_dir):
    answer = bot.ask("Which foods are good sources of iron?")
    assert answer.grounded and answer.citations
    assert any(c.source == "iron.md" for c in answer.citations)
    assert_verbatim(answer, corpus_dir)
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
    answer = bot.ask("<script>alert(1)</script> Which foods contain iron?")
    assert_verbatim(answer, corpus_dir)


def test_store_interface(bot, backend):
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
    hits = store.hybrid("haem iron", vector, 5, alpha=0.8)
    assert hits and hits[0].chunk.source == "iron.md"
    df = store.document_frequencies(["iron", "magnesium", "zzzunknown"])
    assert df["iron"] > 0 and df["magnesium"] > 0 and df["zzzunknown"] == 0
    assert store.coverage("iron magnesium") == 1.0 and store.coverage("zzzunknown") == 0.0
    assert store.names_known("What does the Framingham study say?") and not store.names_known("What does Zorblax say?")


def test_group_lookup_finds_the_whole_list(bot):
    item = next(h.chunk for h in bot.retriever.search("Red meat and liver", k=10) if h.chunk.kind == "list_item")
    whole = bot.store.group(item)
    assert whole is not None and whole.kind == "list" and item.text in whole.text


def test_delete_and_add_a_file_through_the_interface(bot, corpus_dir, fake_embedder):
    from assistant.chunking import chunk_document
    from assistant.corpus import read_document

    store = bot.store
    before = store.count()
    removed = store.delete_source("iron.md")
    assert removed > 0 and store.count() == before - removed and "iron.md" not in store.sources()
    assert all(bot.store.records([k])[k].chunk.source != "iron.md" for k, _ in store.lexical("haem iron", 5))
    doc = read_document(corpus_dir / "iron.md", corpus_dir, max_bytes=10**6)
    chunks = chunk_document(doc)
    store.add(doc.source, doc.sha256, chunks, fake_embedder.encode([c.embedding_text() for c in chunks]))
    assert store.count() == before and store.sources()["iron.md"] == doc.sha256
    assert any(store.records([k])[k].chunk.source == "iron.md" for k, _ in store.lexical("haem iron", 3))


def test_the_index_follows_files_added_changed_and_removed(tmp_path, backend, fake_embedder):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(FIXTURES / "corpus_md" / "iron.md", corpus / "iron.md")
    settings = make_settings(tmp_path, corpus, backend)

    def ask(question: str):
        bot = Assistant.load(settings, embedder=fake_embedder, on_rebuild=lambda m: None)
        try:
            answer = bot.ask(question)
            assert_verbatim(answer, corpus)
            return answer
        finally:
            close(bot.store)

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


def test_verify_checks_every_stored_chunk_against_the_files(bot, corpus_dir, tmp_path):
    from assistant.verify import verify_store

    report = verify_store(bot.store, corpus_dir)
    assert report.ok and report.files == 2 and report.chunks == bot.store.count()
    copy = tmp_path / "copy"
    shutil.copytree(corpus_dir, copy)
    (copy / "iron.md").write_text("# Iron\n\nEdited after indexing.\n", encoding="utf-8")
    (copy / ARTICLE_NAME).unlink()
    problems = verify_store(bot.store, copy).problems
    assert any("iron.md" in p and "changed" in p for p in problems)
    assert any(ARTICLE_NAME in p and "not found" in p for p in problems)


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
            assert_verbatim(answer, corpus)
            answers.append((answer.grounded, [(c.source, c.start, c.end) for c in answer.citations]))
        results[backend] = answers
        close(bot.store)
    differing = [item.get("question") or item["turns"] for item, f, m in zip(items, results["faiss"], results["milvus"]) if f != m]
    assert not differing, f"the backends answer differently: {differing}"
    assert sum(grounded for grounded, _ in results["milvus"]) > len(items) // 2


# Milvus only: the collection's own life cycle.

@pytest.fixture
def milvus_settings(tmp_path, corpus_dir):
    pytest.importorskip("pymilvus", reason="the milvus extra is not installed: pip install -e '.[milvus]'")
    return make_settings(tmp_path, corpus_dir, "milvus")


class OtherModel(FakeEmbedder):
    name = "another-model"


@pytest.mark.milvus
def test_a_collection_of_another_model_is_refused_not_mixed(milvus_settings, fake_embedder):
    from assistant.stores.milvus_store import MilvusStoreError

    close(open_store(milvus_settings, fake_embedder))
    with pytest.raises(MilvusStoreError, match="another-model"):
        open_store(milvus_settings, OtherModel())
    store = open_store(milvus_settings, fake_embedder)  # still whole, still usable
    assert store.stats()["model"] == FakeEmbedder.name and store.count() > 0
    close(store)
    store = open_store(milvus_settings, OtherModel(), force=True)  # an explicit rebuild replaces it
    assert store.stats()["model"] == "another-model"
    close(store)


@pytest.mark.milvus
def test_a_foreign_collection_is_refused(milvus_settings, fake_embedder):
    from pymilvus import MilvusClient

    from assistant.stores.milvus_store import MilvusStoreError

    client = MilvusClient(milvus_settings.milvus_uri)
    client.create_collection(milvus_settings.milvus_collection, dimension=4)
    client.close()
    with pytest.raises(MilvusStoreError, match="not made by this assistant"):
        open_store(milvus_settings, fake_embedder)


@pytest.mark.milvus
def test_a_damaged_collection_is_detected_and_rebuilt(milvus_settings, fake_embedder):
    store = open_store(milvus_settings, fake_embedder)
    chunks = store.count()
    store.client.drop_collection(store.meta_name)
    close(store)
    messages: list[str] = []
    store = open_store(milvus_settings, fake_embedder, on_rebuild=messages.append)
    assert any("missing" in m for m in messages)
    assert store.count() == chunks and len(store.sources()) == 2
    close(store)


@pytest.mark.milvus
def test_a_row_whose_text_no_longer_matches_its_key_is_never_quoted(milvus_settings, fake_embedder):
    store = open_store(milvus_settings, fake_embedder)
    key, _ = store.lexical("haem iron", 1)[0]
    row = store.client.query(store.name, ids=[key], output_fields=["*"])[0]
    row.pop("sparse", None)
    row["text"] = "Iron cures everything."  # tampered after indexing
    store.client.upsert(store.name, [row])
    close(store)
    store = open_store(milvus_settings, fake_embedder)  # a process reading the damaged row
    assert key not in store.records([key])
    from assistant.verify import verify_store

    assert any("content key" in p for p in verify_store(store, milvus_settings.corpus_dir).problems)
    close(store)


def write_documents(corpus: Path, *, files: int, sentences: int) -> Path:
    """A corpus of `files` Markdown files, each a heading and `sentences` one-line sentences (a chunk each)."""
    corpus.mkdir()
    for n in range(files):
        (corpus / f"doc{n:02d}.md").write_text(
            f"# Document {n}\n\n" + " ".join(f"Sentence {i} of document {n} is about topic {i * n}." for i in range(sentences)),
            encoding="utf-8")
    return corpus


class FailingEmbedder(FakeEmbedder):
    """Dies on its `fail_at`-th call, like a process killed in the middle of indexing."""

    def __init__(self, fail_at: int) -> None:
        super().__init__()
        self.fail_at = fail_at
        self.texts = 0

    def encode(self, texts, **kwargs):
        if self.calls + 1 == self.fail_at:
            raise KeyboardInterrupt("killed")
        self.texts += len(texts)
        return super().encode(texts, **kwargs)


@pytest.mark.milvus
def test_indexing_resumes_and_does_only_what_is_missing(tmp_path):
    pytest.importorskip("pymilvus")
    corpus = write_documents(tmp_path / "corpus", files=6, sentences=30)
    settings = make_settings(tmp_path, corpus, "milvus", milvus_batch_size=16)
    with pytest.raises(KeyboardInterrupt):
        open_store(settings, FailingEmbedder(fail_at=5))
    resumed = FailingEmbedder(fail_at=0)
    store = open_store(settings, resumed)
    done = store.count()
    assert len(store.sources()) == 6
    assert 0 < resumed.texts < done, "the second run re-embedded chunks the first had stored"
    keys = {r["id"] for r in store.client.query(store.name, filter="", output_fields=["id"], limit=10_000)}
    close(store)
    clean = make_settings(tmp_path / "clean", corpus, "milvus")
    (tmp_path / "clean").mkdir()
    fresh = open_store(clean, FakeEmbedder())
    assert keys == {r["id"] for r in fresh.client.query(fresh.name, filter="", output_fields=["id"], limit=10_000)}
    assert done == fresh.count() == len(keys)
    close(fresh)
    again = FailingEmbedder(fail_at=0)
    close(open_store(settings, again))
    assert again.texts == 0, "an up-to-date collection was embedded again"


@pytest.mark.milvus
def test_a_serving_machine_without_the_corpus_answers_from_the_stored_chunks(milvus_settings, fake_embedder, tmp_path):
    close(open_store(milvus_settings, fake_embedder))
    serving = milvus_settings.model_copy(update={"corpus_dir": tmp_path / "absent", "sync_on_load": False})
    bot = Assistant.load(serving, embedder=fake_embedder)
    answer = bot.ask("Which foods are good sources of iron?")
    assert answer.grounded
    assert_verbatim(answer, milvus_settings.corpus_dir)  # checked against the files on the indexing machine
    close(bot.store)


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
        "sys.path.insert(0, 'tests'); from conftest import FakeEmbedder\n"
        f"open_store(Settings(backend='milvus', index_dir={str(tmp_path / 'idx')!r}), FakeEmbedder())\n"
    )
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode != 0 and "pip install -e '.[milvus]'" in run.stderr


@pytest.mark.milvus
@pytest.mark.integration
def test_indexing_killed_with_sigkill_resumes_where_it_stopped(tmp_path):
    """A real kill: the indexing process gets SIGKILL once some files are recorded; the next run finishes the rest."""
    pytest.importorskip("pymilvus")
    import os
    import signal

    corpus = write_documents(tmp_path / "corpus", files=40, sentences=20)
    settings = make_settings(tmp_path, corpus, "milvus", milvus_batch_size=20)
    code = (
        "import sys, time; sys.path.insert(0, 'tests')\n"
        "from conftest import FakeEmbedder\n"
        "from assistant.settings import Settings; from assistant.stores import open_store\n"
        "class Slow(FakeEmbedder):\n"
        "    def encode(self, texts, **kw):\n"
        "        print('batch', flush=True); time.sleep(0.2); return super().encode(texts, **kw)\n"
        f"open_store(Settings.model_validate_json({settings.model_dump_json()!r}), Slow())\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, start_new_session=True, stdout=subprocess.PIPE, text=True)
    try:
        for _ in range(10):  # ten of the forty batches are embedded, nine of them written
            assert proc.stdout.readline() == "batch\n", "indexing stopped before it could be killed"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the whole group, Milvus Lite's server included if it has its own process
        proc.wait()
    resumed = FailingEmbedder(fail_at=0)
    store = open_store(settings, resumed)
    try:
        assert len(store.sources()) == 40 and store.count() == 40 * 20
        assert 0 < resumed.texts < 40 * 20, f"re-embedded {resumed.texts} of {40 * 20} chunks"
        answer_keys = [key for key, _ in store.lexical("topic sentence document", 5)]
        assert len(store.records(answer_keys)) == len(answer_keys)
    finally:
        close(store)


@pytest.mark.milvus
@pytest.mark.integration
def test_a_milvus_lite_file_in_use_by_another_process_gets_a_clear_message(milvus_settings, fake_embedder):
    from assistant.stores.milvus_store import MilvusStoreError

    code = (
        "import sys, time; sys.path.insert(0, 'tests')\n"
        "from conftest import FakeEmbedder\n"
        "from assistant.settings import Settings; from assistant.stores import open_store\n"
        f"store = open_store(Settings.model_validate_json({milvus_settings.model_dump_json()!r}), FakeEmbedder())\n"
        "print('ready', flush=True); time.sleep(60)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "ready\n"
        with pytest.raises(MilvusStoreError, match="serves one process at a time"):
            open_store(milvus_settings, fake_embedder)
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.milvus
@pytest.mark.integration
@pytest.mark.slow
def test_the_app_serves_from_milvus_also_on_a_machine_without_the_corpus(tmp_path):
    """app.py on Milvus Lite: it indexes on start; then a 'replica' with no corpus answers from the collection."""
    pytest.importorskip("pymilvus")
    gradio_client = pytest.importorskip("gradio_client")
    from app_server import running_app

    from assistant.render import escape_markdown

    env = {"ASSISTANT_BACKEND": "milvus", "ASSISTANT_MILVUS_URI": str(tmp_path / "milvus.db")}
    question = "Which magnesium form is best for sleep?"
    with running_app(tmp_path / "indexer", env=env) as app:
        client = gradio_client.Client(app.url, verbose=False)
        first = client.predict(question, api_name="/ask")
        client.close()
    footer = f"_{escape_markdown(DISCLAIMER)}_"
    assert "Magnesium Glycinate" in first and first.endswith(footer)
    replica = {**env, "ASSISTANT_CORPUS_DIR": str(tmp_path / "no-corpus-here"), "ASSISTANT_SYNC_ON_LOAD": "false"}
    with running_app(tmp_path / "replica", env=replica) as app:
        client = gradio_client.Client(app.url, verbose=False)
        served = client.predict(question, api_name="/ask")
        client.close()
        assert "Traceback" not in app.log()
    assert served.partition("**Sources**")[0] == first.partition("**Sources**")[0]  # the same quotes
    assert "not on this server" in served and served.endswith(footer)


def expected_statistics(corpus: Path) -> tuple[dict[str, int], int, float]:
    """Document frequencies, chunk count and mean tokens per chunk, computed from scratch."""
    from assistant.chunking import chunk_document
    from assistant.corpus import load_corpus
    from assistant.lexical import tokenize

    df: dict[str, int] = {}
    chunks = tokens = 0
    for doc in load_corpus(corpus):
        for chunk in chunk_document(doc):
            words = tokenize(chunk.embedding_text())
            chunks += 1
            tokens += max(len(words), 1)
            for token in set(words):
                df[token] = df.get(token, 0) + 1
    return df, chunks, tokens / chunks


@pytest.mark.milvus
def test_term_statistics_stay_exact_through_changes_and_an_interrupted_run(tmp_path):
    pytest.importorskip("pymilvus")
    corpus = tmp_path / "corpus"
    shutil.copytree(FIXTURES / "corpus_md", corpus)
    shutil.copy(ARTICLE, corpus / ARTICLE_NAME)
    settings = make_settings(tmp_path, corpus, "milvus", milvus_batch_size=8)
    seen: set[str] = set()

    def check() -> None:
        store = open_store(settings, FakeEmbedder())
        try:
            want, chunks, avgdl = expected_statistics(corpus)
            seen.update(want)
            assert store.document_frequencies(sorted(seen)) == {t: want.get(t, 0) for t in sorted(seen)}
            assert store.count() == chunks
            assert store._corpus_stats() == (chunks, pytest.approx(avgdl))
        finally:
            close(store)

    check()
    (corpus / "iron.md").write_text("# Iron\n\nIron is in red meat. Zinc is in oysters.\n", encoding="utf-8")
    check()
    (corpus / ARTICLE_NAME).unlink()
    check()
    (corpus / "zinc.md").write_text("# Zinc\n\n" + " ".join(f"Zinc fact {i} about oysters and seeds." for i in range(40)),
                                    encoding="utf-8")
    with pytest.raises(KeyboardInterrupt):
        open_store(settings, FailingEmbedder(fail_at=3))
    check()
    shutil.copy(ARTICLE, corpus / ARTICLE_NAME)
    check()
