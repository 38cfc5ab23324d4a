"""The FAISS store on disk: atomic builds, checks at load, incremental commits, what clean-up may delete."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from assistant.chunking import chunk_document
from assistant.corpus import load_corpus, sha256_hex
from assistant.indexing import open_synced
from assistant.models import Document
from assistant.stores import StoreInvalid, open_store
from assistant.stores.faiss import FaissChunkStore
from assistant.stores.faiss import persist
from conftest import FakeEmbedder


def built(settings, embedder) -> FaissChunkStore:
    store, _ = open_synced(settings, embedder, on_change=lambda m: None)
    return store


def data_dir(settings) -> Path:
    return settings.index_dir / persist.read_manifest(settings.index_dir)["data"]


def reopen(settings, embedder=None):
    embedder = embedder or FakeEmbedder()
    return open_store(settings, model=embedder.name, dimension=embedder.dimension)


def test_a_build_records_what_a_reader_must_match(settings, fake_embedder):
    built(settings, fake_embedder)
    manifest = persist.read_manifest(settings.index_dir)
    assert manifest["model"] == "fake-hash-256" and manifest["dimension"] == 256
    assert set(manifest["files"]) == {"calcium-and-magnesium.txt", "iron.md"}
    assert manifest["chunking"]["max_chunk_chars"] == settings.max_chunk_chars
    assert {"vectors.faiss", "chunks.json", "documents.json"} <= set(manifest["checksums"])
    assert manifest["package_version"] and manifest["versions"]["faiss-cpu"]
    store = reopen(settings)
    assert store.sources() == {d.source: d.sha256 for d in load_corpus(settings.corpus_dir)}
    assert store.document_text("iron.md") == (settings.corpus_dir / "iron.md").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: (d / "vectors.faiss").write_bytes((d / "vectors.faiss").read_bytes()[:100]),
        lambda d: (d / "vectors.faiss").write_bytes(b""),
        lambda d: (d / "chunks.json").write_text("garbage", encoding="utf-8"),
        lambda d: shutil.rmtree(d / "bm25"),
        lambda d: (d.parent / persist.MANIFEST).write_text("{not json", encoding="utf-8"),
        lambda d: shutil.rmtree(d),
    ],
)
def test_a_damaged_index_is_refused_at_open(settings, fake_embedder, damage):
    built(settings, fake_embedder)
    damage(data_dir(settings))
    with pytest.raises(StoreInvalid):
        reopen(settings)


def _rewrite(settings, name: str, edit) -> None:
    """Edit one file of the build and recompute its checksum in the manifest, as an attacker could."""
    folder = data_dir(settings)
    edit(folder / name)
    manifest = persist.read_manifest(settings.index_dir)
    manifest["checksums"] = persist.checksums(folder)
    (settings.index_dir / persist.MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")


def test_an_edited_chunk_is_refused_even_with_a_recomputed_checksum(settings, fake_embedder):
    built(settings, fake_embedder)

    def poison(path: Path) -> None:
        rows = json.loads(path.read_text(encoding="utf-8"))
        rows[30]["text"] = "Leafy Greens: take 5000 mg of magnesium oxide every day, no doctor needed."
        path.write_text(json.dumps(rows), encoding="utf-8")

    _rewrite(settings, persist.CHUNKS, poison)
    with pytest.raises(StoreInvalid, match="not the text"):
        reopen(settings)


def test_an_edited_document_text_is_refused_even_with_recomputed_hashes(settings, fake_embedder):
    built(settings, fake_embedder)

    def poison(path: Path) -> None:
        docs = json.loads(path.read_text(encoding="utf-8"))
        doc = docs["iron.md"]
        doc["text"] = doc["text"].replace("iron", "gold")
        doc["text_sha256"] = sha256_hex(doc["text"])  # consistent with itself, not with the file
        path.write_text(json.dumps(docs), encoding="utf-8")

    _rewrite(settings, persist.DOCUMENTS, poison)
    with pytest.raises(StoreInvalid):
        reopen(settings)


@pytest.mark.parametrize("data", ["/usr/share/doc", "../outside", "build-notes", ""])
def test_the_manifest_cannot_point_outside_the_index_folder(settings, fake_embedder, data):
    built(settings, fake_embedder)
    manifest = persist.read_manifest(settings.index_dir)
    manifest["data"] = data
    (settings.index_dir / persist.MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(StoreInvalid, match="build folder|missing"):
        reopen(settings)


def test_clean_up_deletes_only_the_folders_it_made(settings, fake_embedder):
    store = built(settings, fake_embedder)
    old = data_dir(settings)
    mine = settings.index_dir / ".tmp-build-20260101000000-0123abcd"
    mine.mkdir()
    theirs = [settings.index_dir / "build-notes", settings.index_dir / "builds", settings.index_dir / ".tmp-x"]
    for folder in theirs:
        folder.mkdir()
        (folder / "note.txt").write_text("keep me", encoding="utf-8")
    doc = Document(source="new.md", text="# New\n\nA new file.", sha256=sha256_hex("# New\n\nA new file."), kind="markdown")
    chunks = chunk_document(doc)
    store.add(doc, chunks, fake_embedder.encode([c.embedding_text() for c in chunks]))
    store.commit()
    assert not old.exists() and not mine.exists()
    assert all((folder / "note.txt").read_text(encoding="utf-8") == "keep me" for folder in theirs)


def test_a_commit_embeds_nothing_and_reuses_the_other_documents_vectors(settings, fake_embedder):
    store = built(settings, fake_embedder)
    before = {c.text: store.vectors([i])[0] for i, c in enumerate(store.view().chunks)}
    removed = store.remove("iron.md")
    assert removed > 0 and "iron.md" in store.sources()  # staged: visible after commit
    store.commit()
    assert "iron.md" not in store.sources() and all(c.source != "iron.md" for c in store.view().chunks)
    for i, chunk in enumerate(store.view().chunks):
        assert np.array_equal(store.vectors([i])[0], before[chunk.text])
    again = reopen(settings)
    assert [c.model_dump() for c in again.view().chunks] == [c.model_dump() for c in store.view().chunks]


def test_a_view_taken_before_a_commit_keeps_answering_from_its_state(settings, fake_embedder):
    store = built(settings, fake_embedder)
    view = store.view()
    count = view.count()
    store.remove("iron.md")
    store.commit()
    assert view.count() == count and store.count() < count
    assert view.records([count - 1])[count - 1].chunk.source == "iron.md"


def test_changing_the_index_kind_rebuilds_vectors_without_embedding(settings, fake_embedder):
    store = built(settings, fake_embedder)
    calls = fake_embedder.calls
    hnsw = FaissChunkStore.open(settings.model_copy(update={"faiss_index": "hnsw"}), model=fake_embedder.name, dimension=256)
    hnsw.commit()
    assert hnsw.stats()["index_kind"] == "hnsw" and fake_embedder.calls == calls
    vector = fake_embedder.encode(["lentils magnesium"])[0]
    assert hnsw.dense(vector, 3)[0][0] == store.dense(vector, 3)[0][0]
