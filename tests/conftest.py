"""Shared fixtures: a fake deterministic embedder (no model download) and isolated folders."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest

from assistant.corpus import sha256_hex
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

    def encode(self, texts, *, batch_size: int = 64, show_progress: bool = False) -> np.ndarray:
        self.calls += 1
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


def tree_hashes(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): sha256_hex(p.read_bytes()) for p in sorted(folder.rglob("*")) if p.is_file()}


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
    before = tree_hashes(folder)
    yield folder
    assert tree_hashes(folder) == before, "the program modified the corpus folder"


@pytest.fixture
def settings(tmp_path: Path, corpus_dir: Path) -> Settings:
    return Settings(corpus_dir=corpus_dir, index_dir=tmp_path / "index")


@pytest.fixture(autouse=True)
def project_corpus_untouched():
    """Every test: the project's own corpus/ is byte-for-byte the same afterwards."""
    before = tree_hashes(ROOT / "corpus")
    yield
    assert tree_hashes(ROOT / "corpus") == before, "a test modified the project's corpus/"
