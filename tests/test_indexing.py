"""The one sync: only new and changed files are embedded, removed ones go, bad files are skipped, a killed
run resumes, processes starting together do the work once."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from assistant.indexing import open_synced, plan_sync, sync_store
from assistant.settings import Settings
from assistant.stores import open_store
from assistant.stores.faiss import persist
from conftest import FIXTURES, ROOT, FakeEmbedder


def sync(settings, embedder):
    messages: list[str] = []
    store, report = open_synced(settings, embedder, on_change=messages.append)
    return store, report, messages


def own_corpus(tmp_path: Path) -> Path:
    corpus = tmp_path / "own-corpus"
    shutil.copytree(FIXTURES / "corpus_md", corpus)
    return corpus


def test_the_first_start_builds_and_the_next_embeds_nothing(settings, fake_embedder):
    _, report, messages = sync(settings, fake_embedder)
    assert len(messages) == 1 and "no index" in messages[0]
    assert sorted(report.added) == ["calcium-and-magnesium.txt", "iron.md"] and report.chunks > 40
    texts = fake_embedder.texts
    _, report, messages = sync(settings, fake_embedder)
    assert fake_embedder.texts == texts and messages == [] and report.unchanged == 2


def test_adding_a_file_embeds_that_file_only(tmp_path, fake_embedder):
    corpus = own_corpus(tmp_path)
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "idx")
    sync(settings, fake_embedder)
    texts = fake_embedder.texts
    (corpus / "zinc.md").write_text("# Zinc\n\nZinc helps wounds heal. Oysters are rich in zinc.\n", encoding="utf-8")
    store, report, messages = sync(settings, fake_embedder)
    assert report.added == ["zinc.md"] and report.changed == report.removed == []
    assert fake_embedder.texts - texts == report.chunks == len(store.chunks_of("zinc.md")) == 2
    assert "1 new or changed, 0 removed" in messages[0]


@pytest.mark.parametrize("change, field", [
    (lambda c: (c / "iron.md").write_text("# Iron\n\nEdited.", encoding="utf-8"), "changed"),
    (lambda c: (c / "iron.md").unlink(), "removed"),
    (lambda c: (c / "iron.md").write_bytes(b"\x00binary now"), "removed"),
])
def test_changed_removed_and_spoilt_files_are_followed(tmp_path, fake_embedder, change, field):
    corpus = own_corpus(tmp_path)
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "idx")
    sync(settings, fake_embedder)
    change(corpus)
    store, report, _ = sync(settings, fake_embedder)
    assert getattr(report, field) == ["iron.md"]
    if field == "removed":
        assert "iron.md" not in store.sources() and not store.chunks_of("iron.md")
    else:
        assert store.document_text("iron.md") == "# Iron\n\nEdited."


def test_files_that_cannot_be_indexed_are_reported_once_each_with_a_reason(tmp_path, fake_embedder):
    corpus = own_corpus(tmp_path)
    (corpus / "leaflet.pdf").write_bytes(b"%PDF-1.4")
    (corpus / "notes.docx").write_bytes(b"PK")
    (corpus / "empty.txt").write_text("", encoding="utf-8")
    os.symlink("loop.md", corpus / "loop.md")
    os.symlink(corpus / "iron.md", corpus / "iron-link.md")
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "idx", max_file_bytes=10_000)
    store, report, _ = sync(settings, fake_embedder)
    reasons = {s.source: s.reason for s in report.skipped}
    assert reasons == {
        "empty.txt": "it is empty",
        "leaflet.pdf": "it is damaged or cut short (no end-of-file marker); download or export it again",
        "loop.md": "a link that loops",
        "notes.docx": "Word document: not supported",
    }
    assert set(store.sources()) == {"iron.md", "iron-link.md"}


def test_index_and_corpus_folders_must_not_overlap(tmp_path):
    corpus = tmp_path / "c"
    corpus.mkdir()
    for index in (corpus, corpus / "index", tmp_path):
        with pytest.raises(ValueError, match="overlap"):
            Settings(corpus_dir=corpus, index_dir=index)


class FailingEmbedder(FakeEmbedder):
    """Dies on its `fail_at`-th call, like a process killed in the middle of indexing."""

    def __init__(self, fail_at: int) -> None:
        super().__init__()
        self.fail_at = fail_at

    def encode(self, texts, **kwargs):
        if self.calls + 1 == self.fail_at:
            raise KeyboardInterrupt("killed")
        return super().encode(texts, **kwargs)


def write_documents(corpus: Path, *, files: int, sentences: int) -> Path:
    """A corpus of `files` Markdown files, each a heading and `sentences` one-line sentences (a chunk each)."""
    corpus.mkdir()
    for n in range(files):
        (corpus / f"doc{n:02d}.md").write_text(
            f"# Document {n}\n\n" + " ".join(f"Sentence {i} of document {n} is about topic {i * n}." for i in range(sentences)),
            encoding="utf-8")
    return corpus


def test_a_killed_sync_resumes_from_its_last_checkpoint(tmp_path, monkeypatch):
    import assistant.indexing as indexing

    monkeypatch.setattr(indexing, "FIRST_CHECKPOINT", 300)
    monkeypatch.setattr(indexing, "EMBED_BATCH", 100)
    corpus = write_documents(tmp_path / "corpus", files=12, sentences=100)
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "idx")
    with pytest.raises(KeyboardInterrupt):
        open_synced(settings, FailingEmbedder(fail_at=6), on_change=lambda m: None)
    kept = open_store(settings, model=FakeEmbedder.name, dimension=FakeEmbedder.dimension)
    assert 0 < len(kept.sources()) < 12, "nothing, or everything, was committed before the kill"
    resumed = FakeEmbedder()
    store, report, _ = sync(settings, resumed)
    assert len(store.sources()) == 12 and store.count() == 1200
    assert resumed.texts == 1200 - kept.count(), "the resumed run embedded files that were already committed"
    assert report.unchanged == len(kept.sources())


def _open_in_child(corpus_dir: str, index_dir: str, log: str) -> None:
    settings = Settings(corpus_dir=corpus_dir, index_dir=index_dir)

    def record(message: str) -> None:
        with open(log, "a", encoding="utf-8") as f:
            f.write(message + "\n")

    store, _ = open_synced(settings, FakeEmbedder(), on_change=record)
    with open(log + ".counts", "a", encoding="utf-8") as f:
        f.write(f"{store.count()}\n")


@pytest.mark.integration
def test_processes_starting_together_build_once(settings, tmp_path):
    log = str(tmp_path / "log.txt")
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_open_in_child, args=(str(settings.corpus_dir), str(settings.index_dir), log)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert len(Path(log).read_text().splitlines()) == 1
    counts = set(Path(log + ".counts").read_text().split())
    assert len(counts) == 1 and int(counts.pop()) > 40
    assert json.loads((settings.index_dir / persist.MANIFEST).read_text())["chunk_count"] > 40


_CHILD = textwrap.dedent(
    """
    import os, sys, time
    sys.path.insert(0, {tests!r})
    from conftest import FakeEmbedder
    import assistant.stores.faiss.persist as persist
    from assistant.indexing import open_synced
    from assistant.settings import Settings

    real_replace = os.replace
    def slow_replace(src, dst):
        open({marker!r}, "a").write("r")
        time.sleep(0.4)
        real_replace(src, dst)
    persist.os.replace = slow_replace
    open_synced(Settings(corpus_dir={corpus!r}, index_dir={index!r}), FakeEmbedder(), force=True, on_change=print)
    """
)


@pytest.mark.integration
@pytest.mark.parametrize("kill_after_replaces", [0, 1, 2])
def test_a_killed_rebuild_leaves_the_old_index_or_the_new(settings, tmp_path, kill_after_replaces):
    old, _ = open_synced(settings, FakeEmbedder(), on_change=lambda m: None)
    marker = tmp_path / "marker"
    script = _CHILD.format(tests=str(ROOT / "tests"), marker=str(marker), corpus=str(settings.corpus_dir), index=str(settings.index_dir))
    child = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and (not marker.exists() or len(marker.read_text()) <= kill_after_replaces):
        if child.poll() is not None:
            break
        time.sleep(0.02)
    if kill_after_replaces < 2:
        time.sleep(0.2)  # in the middle of the slow rename
    child.send_signal(signal.SIGKILL)
    child.wait(30)
    loaded = open_store(settings, model=FakeEmbedder.name, dimension=FakeEmbedder.dimension)  # the old index or the new one
    assert [c.model_dump() for c in loaded.view().chunks] == [c.model_dump() for c in old.view().chunks]
    assert persist.read_manifest(settings.index_dir)["data"] in {p.name for p in settings.index_dir.iterdir()}
    embedder = FakeEmbedder()
    again, report = open_synced(settings, embedder, on_change=lambda m: None)  # and the next start uses it as it is
    assert embedder.calls == 0 and report.unchanged == 2


def test_plan_sync_reads_only_fingerprints(settings, fake_embedder):
    store, _, _ = sync(settings, fake_embedder)
    (settings.corpus_dir.parent / "spare").mkdir()
    plan = plan_sync(store, settings.corpus_dir, max_file_bytes=settings.max_file_bytes)
    assert plan.empty and plan.unchanged == 2
    report = sync_store(store, settings, fake_embedder, plan=plan)
    assert report.chunks == 0 and report.files == 2
