from __future__ import annotations

import json
import multiprocessing
import shutil
from pathlib import Path

import pytest

from assistant.index import MANIFEST, IndexInvalid, load_index, open_index, read_manifest
from assistant.settings import Settings
from conftest import FakeEmbedder


def data_dir(settings: Settings) -> Path:
    return settings.index_dir / read_manifest(settings.index_dir)["data"]


def test_builds_then_loads_without_embedding_again(settings, fake_embedder):
    messages: list[str] = []
    first = open_index(settings, fake_embedder, on_rebuild=messages.append)
    assert messages and "no index" in messages[0]
    calls = fake_embedder.calls
    second = open_index(settings, fake_embedder, on_rebuild=messages.append)
    assert fake_embedder.calls == calls and len(messages) == 1
    assert [c.model_dump() for c in second.chunks] == [c.model_dump() for c in first.chunks]
    manifest = second.manifest
    assert manifest["model"] == "fake-hash-256" and manifest["dimension"] == 256
    assert set(manifest["files"]) == {"calcium-and-magnesium.txt", "iron.md"}
    assert manifest["chunking"] == {"max_chunk_chars": settings.max_chunk_chars, "max_heading_words": settings.max_heading_words}
    assert "vectors.faiss" in manifest["checksums"] and "chunks.json" in manifest["checksums"]
    assert manifest["package_version"] and manifest["versions"]["faiss-cpu"]


@pytest.mark.parametrize(
    "change, expected",
    [
        (lambda s: (s.corpus_dir / "new.md").write_text("# New\n\nA new file.", encoding="utf-8"), "corpus changed"),
        (lambda s: (s.corpus_dir / "iron.md").unlink(), "corpus changed"),
        (lambda s: (s.corpus_dir / "iron.md").write_text("# Iron\n\nEdited.", encoding="utf-8"), "corpus changed"),
    ],
)
def test_corpus_changes_trigger_a_rebuild(tmp_path, fake_embedder, change, expected):
    corpus = tmp_path / "own-corpus"
    shutil.copytree(Path(__file__).parent / "fixtures" / "corpus_md", corpus)
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "idx")
    open_index(settings, fake_embedder)
    change(settings)
    messages: list[str] = []
    index = open_index(settings, fake_embedder, on_rebuild=messages.append)
    assert len(messages) == 1 and expected in messages[0]
    assert set(index.manifest["files"]) == {p.name for p in corpus.iterdir()}


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: (d / "vectors.faiss").write_bytes((d / "vectors.faiss").read_bytes()[:100]),
        lambda d: (d / "vectors.faiss").write_bytes(b""),
        lambda d: (d / "chunks.json").write_text("garbage", encoding="utf-8"),
        lambda d: shutil.rmtree(d / "bm25"),
        lambda d: (d.parent / MANIFEST).write_text("{not json", encoding="utf-8"),
        lambda d: shutil.rmtree(d),
    ],
)
def test_damaged_index_is_detected_and_rebuilt(settings, fake_embedder, damage):
    open_index(settings, fake_embedder)
    damage(data_dir(settings))
    with pytest.raises(IndexInvalid):
        load_index(settings.index_dir)
    messages: list[str] = []
    index = open_index(settings, fake_embedder, on_rebuild=messages.append)
    assert len(messages) == 1
    assert load_index(settings.index_dir).manifest["checksums"] == index.manifest["checksums"]


def test_other_model_or_settings_trigger_a_rebuild(settings, fake_embedder):
    open_index(settings, fake_embedder)
    other = FakeEmbedder()
    other.name = "another-model"
    messages: list[str] = []
    open_index(settings, other, on_rebuild=messages.append)
    assert "model" in messages[0]
    changed = settings.model_copy(update={"max_chunk_chars": 500})
    open_index(changed, other, on_rebuild=messages.append)
    assert "chunking" in messages[1]


def test_rebuild_replaces_old_build_and_leftovers(settings, fake_embedder):
    open_index(settings, fake_embedder)
    old = data_dir(settings)
    (settings.index_dir / ".tmp-build-killed").mkdir()
    open_index(settings, fake_embedder, force=True)
    assert not old.exists()
    assert sorted(p.name for p in settings.index_dir.iterdir() if p.is_dir()) == [data_dir(settings).name]


def _open_in_child(corpus_dir: str, index_dir: str, log: str) -> None:
    settings = Settings(corpus_dir=corpus_dir, index_dir=index_dir)

    def record(message: str) -> None:
        with open(log, "a", encoding="utf-8") as f:
            f.write(message + "\n")

    index = open_index(settings, FakeEmbedder(), on_rebuild=record)
    with open(log + ".counts", "a", encoding="utf-8") as f:
        f.write(f"{len(index.chunks)}\n")


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
    assert json.loads((settings.index_dir / MANIFEST).read_text())["chunk_count"] > 40
