"""Shared fixtures: a fake deterministic embedder (no model download), isolated folders, guards.

Guards that hold for every test: the project's `corpus/` is byte-for-byte the same afterwards,
and the real embedding model is loaded only by tests marked `slow`.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from assistant.lexical import tokenize
from assistant.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
ARTICLE = ROOT / "corpus" / "calcium-and-magnesium.txt"


class FakeEmbedder:
    """Hashes stemmed words into 256 buckets: similar wording gives similar vectors, deterministically."""

    name = "fake-hash-256"
    dimension = 256

    def __init__(self) -> None:
        self.calls = 0
        self.texts = 0

    def encode(self, texts, *, batch_size: int = 64, show_progress: bool = False) -> np.ndarray:
        self.calls += 1
        self.texts += len(texts)
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for token in tokenize(text):
                bucket = int.from_bytes(hashlib.blake2b(token.encode(), digest_size=4).digest(), "little")
                out[row, bucket % self.dimension] += 1.0
            norm = np.linalg.norm(out[row])
            out[row] = out[row] / norm if norm else out[row]
            if not norm:
                out[row, 0] = 1.0
        return out


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` with its bytes: compared whole, not through the project's own hashing."""
    out = {}
    for dirpath, _, files in os.walk(folder):
        for name in files:
            path = Path(dirpath, name)
            out[path.relative_to(folder).as_posix()] = path.read_bytes()
    return out


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture
def corpus_dir(tmp_path: Path):
    """A corpus with the article and a small Markdown file; asserts the program never writes to it."""
    folder = tmp_path / "corpus"
    folder.mkdir()
    shutil.copy(ARTICLE, folder / ARTICLE.name)
    shutil.copy(FIXTURES / "corpus_md" / "iron.md", folder / "iron.md")
    before = snapshot(folder)
    yield folder
    assert snapshot(folder) == before, "the program modified the corpus folder"


@pytest.fixture
def settings(tmp_path: Path, corpus_dir: Path) -> Settings:
    return Settings(corpus_dir=corpus_dir, index_dir=tmp_path / "index")


@pytest.fixture(autouse=True)
def project_corpus_untouched():
    """Every test: the project's own corpus/ is byte-for-byte the same afterwards."""
    before = snapshot(ROOT / "corpus")
    yield
    assert snapshot(ROOT / "corpus") == before, "a test modified the project's corpus/"


@pytest.fixture(autouse=True)
def real_model_only_when_slow(request, monkeypatch):
    """A test not marked `slow` that reaches for the real model fails instead of silently loading it."""
    if request.node.get_closest_marker("slow"):
        return
    import assistant.embedding as embedding

    def refuse(*args, **kwargs):
        raise AssertionError("this test loads the real embedding model: mark it `slow` or pass the fake embedder")

    monkeypatch.setattr(embedding, "_MODELS", {})  # a model a slow test loaded earlier is not handed out either
    monkeypatch.setattr(embedding, "_load", refuse)
