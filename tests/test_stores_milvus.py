"""Milvus's own life cycle: other models and foreign collections refused, damage rebuilt, tampered rows
never quoted, interrupted indexing resumed, a Lite file in use, serving without the corpus."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from assistant import Assistant
from assistant.answer import DISCLAIMER
from assistant.indexing import open_synced
from assistant.stores import StoreInvalid, open_store
from assistant.verify import verify_store
from assertions import assert_quotes_exact
from conftest import ROOT, FakeEmbedder
from test_indexing import FailingEmbedder, write_documents
from test_stores import make_settings

pytestmark = pytest.mark.milvus
pymilvus = pytest.importorskip("pymilvus", reason="the milvus extra is not installed: pip install -e '.[milvus]'")

from assistant.stores.milvus import MilvusStoreError  # noqa: E402


@pytest.fixture
def milvus_settings(tmp_path, corpus_dir):
    return make_settings(tmp_path, corpus_dir, "milvus")


class OtherModel(FakeEmbedder):
    name = "another-model"


def synced(settings, embedder, **kwargs):
    store, _ = open_synced(settings, embedder, on_change=kwargs.pop("on_change", lambda m: None), **kwargs)
    return store


def test_a_collection_of_another_model_is_refused_not_mixed(milvus_settings, fake_embedder):
    synced(milvus_settings, fake_embedder).close()
    with pytest.raises(MilvusStoreError, match="another-model"):
        open_store(milvus_settings, model=OtherModel.name, dimension=OtherModel.dimension)
    store = synced(milvus_settings, fake_embedder)  # still whole, still usable
    assert store.stats()["model"] == FakeEmbedder.name and store.count() > 0
    store.close()
    store = synced(milvus_settings, OtherModel(), force=True)  # an explicit rebuild replaces it
    assert store.stats()["model"] == "another-model" and store.count() > 0
    store.close()


def test_a_foreign_collection_is_refused(milvus_settings):
    client = pymilvus.MilvusClient(milvus_settings.milvus_uri)
    client.create_collection(milvus_settings.milvus_collection, dimension=4)
    client.close()
    with pytest.raises(MilvusStoreError, match="not made by this assistant"):
        open_store(milvus_settings, model="m", dimension=4)


def test_a_damaged_collection_is_reported_at_open_and_rebuilt_by_a_sync(milvus_settings, fake_embedder):
    store = synced(milvus_settings, fake_embedder)
    chunks = store.count()
    store.client.drop_collection(store.meta_name)
    store.close()
    with pytest.raises(StoreInvalid, match="missing"):
        open_store(milvus_settings, model=FakeEmbedder.name, dimension=FakeEmbedder.dimension)
    messages: list[str] = []
    store = synced(milvus_settings, fake_embedder, on_change=messages.append)
    assert any("missing" in m for m in messages)
    assert store.count() == chunks and len(store.sources()) == 2
    store.close()


def test_other_chunk_settings_rebuild_the_collection(milvus_settings, fake_embedder):
    synced(milvus_settings, fake_embedder).close()
    changed = milvus_settings.model_copy(update={"max_chunk_chars": 400})
    messages: list[str] = []
    store = synced(changed, fake_embedder, on_change=messages.append)
    assert any("chunking" in m for m in messages) and store.count() > 0
    store.close()


def test_a_row_whose_text_no_longer_matches_its_key_is_never_quoted(milvus_settings, fake_embedder):
    store = synced(milvus_settings, fake_embedder)
    key, _ = store.lexical("haem iron", 1)[0]
    row = store.client.query(store.name, ids=[key], output_fields=["*"])[0]
    row.pop("sparse", None)
    row["text"] = "Iron cures everything."  # tampered after indexing
    store.client.upsert(store.name, [row])
    store.close()
    store = open_store(milvus_settings, model=FakeEmbedder.name, dimension=FakeEmbedder.dimension)
    assert key not in store.records([key])
    assert any("content key" in p for p in verify_store(store, milvus_settings.corpus_dir).problems)
    store.close()


def test_indexing_resumes_and_does_only_what_is_missing(tmp_path):
    corpus = write_documents(tmp_path / "corpus", files=6, sentences=30)
    settings = make_settings(tmp_path, corpus, "milvus", milvus_batch_size=16)
    import assistant.indexing as indexing

    old = indexing.EMBED_BATCH
    indexing.EMBED_BATCH = 30  # one file a batch
    try:
        with pytest.raises(KeyboardInterrupt):
            synced(settings, FailingEmbedder(fail_at=4))
        resumed = FakeEmbedder()
        store = synced(settings, resumed)
    finally:
        indexing.EMBED_BATCH = old
    assert len(store.sources()) == 6 and store.count() == 180
    assert resumed.texts == 90, "the second run re-embedded files the first had recorded"
    keys = {r["id"] for r in store.client.query(store.name, filter="", output_fields=["id"], limit=10_000)}
    store.close()
    (tmp_path / "clean").mkdir()
    fresh = synced(make_settings(tmp_path / "clean", corpus, "milvus"), FakeEmbedder())
    assert keys == {r["id"] for r in fresh.client.query(fresh.name, filter="", output_fields=["id"], limit=10_000)}
    fresh.close()
    again = FakeEmbedder()
    synced(settings, again).close()
    assert again.texts == 0, "an up-to-date collection was embedded again"


def test_a_serving_machine_without_the_corpus_answers_from_the_stored_chunks(milvus_settings, fake_embedder, tmp_path):
    synced(milvus_settings, fake_embedder).close()
    serving = milvus_settings.model_copy(update={"corpus_dir": tmp_path / "absent", "sync_on_load": False})
    bot = Assistant.load(serving, embedder=fake_embedder)
    answer = bot.ask("Which foods are good sources of iron?")
    assert answer.grounded
    assert_quotes_exact(answer, milvus_settings.corpus_dir)  # checked against the files on the indexing machine
    bot.close()


@pytest.mark.integration
def test_indexing_killed_with_sigkill_resumes_where_it_stopped(tmp_path):
    """A real kill: the indexing process gets SIGKILL once some files are recorded; the next run finishes the rest."""
    corpus = write_documents(tmp_path / "corpus", files=40, sentences=20)
    settings = make_settings(tmp_path, corpus, "milvus", milvus_batch_size=20)
    code = (
        "import sys, time; sys.path.insert(0, 'tests')\n"
        "from conftest import FakeEmbedder\n"
        "import assistant.indexing as indexing; indexing.EMBED_BATCH = 20\n"
        "from assistant.settings import Settings\n"
        "class Slow(FakeEmbedder):\n"
        "    def encode(self, texts, **kw):\n"
        "        print('batch', flush=True); time.sleep(0.2); return super().encode(texts, **kw)\n"
        f"indexing.open_synced(Settings.model_validate_json({settings.model_dump_json()!r}), Slow())\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, start_new_session=True, stdout=subprocess.PIPE, text=True)
    try:
        for _ in range(10):  # ten of the forty files are embedded, nine of them written
            assert proc.stdout.readline() == "batch\n", "indexing stopped before it could be killed"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the whole group, Milvus Lite's server included if it has its own process
        proc.wait()
    resumed = FakeEmbedder()
    store = synced(settings, resumed)
    try:
        assert len(store.sources()) == 40 and store.count() == 40 * 20
        assert 0 < resumed.texts <= 31 * 20, f"re-embedded {resumed.texts} of {40 * 20} chunks"
        keys = [key for key, _ in store.lexical("topic sentence document", 5)]
        assert len(store.records(keys)) == len(keys)
    finally:
        store.close()


@pytest.mark.integration
def test_a_milvus_lite_file_in_use_by_another_process_gets_a_clear_message(milvus_settings, fake_embedder):
    code = (
        "import sys, time; sys.path.insert(0, 'tests')\n"
        "from conftest import FakeEmbedder\n"
        "from assistant.settings import Settings; from assistant.indexing import open_synced\n"
        f"store = open_synced(Settings.model_validate_json({milvus_settings.model_dump_json()!r}), FakeEmbedder())\n"
        "print('ready', flush=True); time.sleep(60)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "ready\n"
        with pytest.raises(MilvusStoreError, match="serves one process at a time"):
            open_store(milvus_settings, model=FakeEmbedder.name, dimension=FakeEmbedder.dimension)
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.integration
@pytest.mark.slow
def test_the_app_serves_from_milvus_also_on_a_machine_without_the_corpus(tmp_path):
    """app.py on Milvus Lite: it indexes on start; then a 'replica' with no corpus answers from the collection."""
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
    assert served == first  # the same quotes, laid out and cited alike, from the text the store keeps
