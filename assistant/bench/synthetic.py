"""Synthetic corpora for the scale and Milvus parts: vectors, texts, queries, and the chunks that hold them.

Vectors come in two distributions. `random` (i.i.d. unit vectors) is the worst case for
approximate search: nothing is close to anything. `topical` imitates all-MiniLM-L6-v2
embeddings of real chunks: documents of 9 chunks whose centres lie in a 64-dimensional topic
subspace, plus a direction every embedding shares and isotropic noise. Its parameters were fit
on the embeddings of 3,596 SciFact chunks (`benchmarks/calibrate_synthetic.py`: nearest-neighbour
cosine 0.755 vs 0.749, random-pair cosine 0.10±0.11 vs 0.13±0.11, recall@10 of a deliberately
weak HNSW 0.92 vs 0.91).

Texts are words drawn from a real corpus's unigram distribution; they become chunks of
synthetic files of `FILE_CHUNKS` chunks, each file's text being its chunks joined by newlines,
so every chunk is exactly `document.text[start:end]` as the stores check.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from assistant.corpus import sha256_hex
from assistant.models import Chunk, Document

DISTRIBUTIONS = ("topical", "random")
DIMENSION = 384  # all-MiniLM-L6-v2
ADD_BATCH = 50_000
#: Chunks of one synthetic document (a topic, a section) and of one synthetic file.
DOC_SIZE = 9
FILE_CHUNKS = 1000


def _unit(x: np.ndarray) -> np.ndarray:
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    return x


class SyntheticVectors:
    """Deterministic synthetic embeddings, `random` or `topical` (see the module docstring).

    Example:
        >>> gen = SyntheticVectors("topical", n=1000, seed=0)
        >>> gen.corpus().shape, gen.queries(5).shape
        ((1000, 384), (5, 384))

    `topical` rows are `a·shared + b·doc_centre + c·topic_noise + e·isotropic_noise`, normalised;
    the weights and the 64-d subspace were fit on real all-MiniLM-L6-v2 chunk embeddings. A
    document is 9 consecutive rows, as chunks of one file are; queries are new rows of random documents.
    """

    def __init__(
        self,
        distribution: str,
        *,
        n: int,
        dim: int = DIMENSION,
        seed: int = 0,
        rank: int = 64,
        doc_size: int = DOC_SIZE,
        weights: tuple[float, float, float, float] = (0.4, 1.0, 0.5, 0.45),
    ) -> None:
        if distribution not in DISTRIBUTIONS:
            raise ValueError(f"distribution must be one of {DISTRIBUTIONS}, got {distribution!r}")
        if n <= 0:
            raise ValueError(f"n must be > 0, got {n}")
        self.distribution, self.n, self.dim, self.doc_size, self.weights = distribution, n, dim, doc_size, weights
        self._rng = np.random.default_rng(seed)
        rng = self._rng
        self._shared = _unit(rng.standard_normal((1, dim), dtype=np.float32))
        self._basis = rng.standard_normal((dim, rank), dtype=np.float32) / np.float32(np.sqrt(dim))
        self.documents = max(1, n // doc_size)
        self._centres = _unit(rng.standard_normal((self.documents, rank), dtype=np.float32) @ self._basis.T)

    def _rows(self, documents: np.ndarray) -> np.ndarray:
        rng, count = self._rng, len(documents)
        noise = _unit(rng.standard_normal((count, self.dim), dtype=np.float32))
        if self.distribution == "random":
            return noise
        a, b, c, e = self.weights
        topic = _unit(rng.standard_normal((count, self._basis.shape[1]), dtype=np.float32) @ self._basis.T)
        return _unit(a * self._shared + b * self._centres[documents] + c * topic + e * noise)

    def corpus(self, batch: int = ADD_BATCH) -> np.ndarray:
        out = np.empty((self.n, self.dim), dtype=np.float32)
        for start in range(0, self.n, batch):
            stop = min(self.n, start + batch)
            out[start:stop] = self._rows(np.minimum(np.arange(start, stop) // self.doc_size, self.documents - 1))
        return out

    def queries(self, count: int) -> np.ndarray:
        return self._rows(self._rng.integers(0, self.documents, size=count))


def word_distribution(texts: Iterable[str], *, max_words: int = 50_000) -> tuple[list[str], np.ndarray]:
    """The `max_words` most frequent normalised words of `texts` and their probabilities."""
    from assistant.lexical import words

    counts = Counter(w for text in texts for w in words(text))
    if not counts:
        raise ValueError("no words to build synthetic text from: give a corpus with some text")
    common = counts.most_common(max_words)
    freq = np.array([c for _, c in common], dtype=np.float64)
    return [w for w, _ in common], freq / freq.sum()


def synthetic_texts(
    n: int, vocabulary: Sequence[str], probabilities: np.ndarray, *, seed: int = 0, min_words: int = 12, max_words: int = 36
) -> list[str]:
    """`n` texts of `min_words`–`max_words` words drawn from a unigram distribution.

    Not sentences, but their BM25 posting lists are as long as real ones of that vocabulary,
    which is what lexical search time depends on.
    """
    rng = np.random.default_rng(seed)
    lengths = rng.integers(min_words, max_words + 1, size=n)
    vocab = np.asarray(vocabulary, dtype=object)
    texts: list[str] = []
    for start in range(0, n, ADD_BATCH):
        stop = min(n, start + ADD_BATCH)
        draws = rng.choice(len(vocab), size=(stop - start, max_words), p=probabilities)
        texts.extend(" ".join(vocab[row[:length]]) for row, length in zip(draws, lengths[start:stop]))
    return texts


def synthetic_queries(texts: Sequence[str], count: int, *, seed: int = 1, words_per_query: int = 6) -> list[str]:
    """Questions made of words from random texts, as real questions reuse the document's words."""
    rng = np.random.default_rng(seed)
    queries = []
    for i in rng.integers(0, len(texts), size=count):
        words = texts[int(i)].split()
        picked = rng.choice(len(words), size=min(words_per_query, len(words)), replace=False)
        queries.append(" ".join(words[j] for j in sorted(picked)))
    return queries


def synthetic_files(texts: Sequence[str], *, file_chunks: int = FILE_CHUNKS, doc_size: int = DOC_SIZE) -> Iterator[list[Chunk]]:
    """The chunks of each synthetic file of `file_chunks` texts, in order.

    A chunk's id is its row; its section (and block) is its `doc_size`-chunk document, so the
    chunk before it in the same section is the row before it within the document. Offsets are
    those of the texts joined by newlines (`synthetic_document`).

    >>> [(c.source, c.section, c.start, c.end) for f in synthetic_files(["ab", "c", "de"], file_chunks=2, doc_size=2) for c in f]
    [('synthetic/000000.txt', 'document 0', 0, 2), ('synthetic/000000.txt', 'document 0', 3, 4), ('synthetic/000001.txt', 'document 1', 0, 2)]
    """
    for first in range(0, len(texts), file_chunks):
        source = f"synthetic/{first // file_chunks:06d}.txt"
        chunks, offset = [], 0
        for i in range(first, min(len(texts), first + file_chunks)):
            text = texts[i]
            chunks.append(Chunk(id=i, source=source, section=f"document {i // doc_size}", kind="sentence",
                                start=offset, end=offset + len(text), text=text, block=i // doc_size))
            offset += len(text) + 1
        yield chunks


def synthetic_document(chunks: Sequence[Chunk]) -> Document:
    """The document of one synthetic file: its chunks' texts joined by newlines (so `text[start:end]` is each chunk)."""
    text = "\n".join(c.text for c in chunks)
    return Document(source=chunks[0].source, text=text, sha256=sha256_hex(text), kind="text")


@dataclass
class SyntheticCorpus:
    """The same synthetic corpus in every engine's process: `topical` vectors, texts, queries and exact neighbours."""

    n: int
    vectors: np.ndarray
    texts: list[str]
    query_vectors: np.ndarray
    query_texts: list[str]
    truth: np.ndarray
    file_chunks: int
    doc_size: int

    @classmethod
    def make(
        cls, n: int, queries: int, vocabulary: tuple[list[str], np.ndarray], *, k: int = 10, seed: int = 0,
        file_chunks: int = FILE_CHUNKS,
    ) -> SyntheticCorpus:
        import faiss

        gen = SyntheticVectors("topical", n=n, seed=seed)
        vectors, query_vectors = gen.corpus(), gen.queries(queries)
        _, truth = faiss.knn(query_vectors, vectors, min(k, n), metric=faiss.METRIC_INNER_PRODUCT)
        texts = synthetic_texts(n, *vocabulary, seed=seed)
        return cls(n, vectors, texts, query_vectors, synthetic_queries(texts, queries, seed=seed + 1), truth,
                   file_chunks, gen.doc_size)

    def digest(self) -> str:
        """sha256 of the vectors, texts and queries: equal in every process that made the same corpus."""
        h = hashlib.sha256(self.vectors.tobytes())
        h.update(self.query_vectors.tobytes())
        for text in (*self.texts, *self.query_texts):
            h.update(text.encode("utf-8") + b"\0")
        return h.hexdigest()

    def files(self) -> Iterator[tuple[Document, list[Chunk], np.ndarray]]:
        """(document, chunks, vectors) per synthetic file, in order: what `ChunkStore.add` takes."""
        for chunks in synthetic_files(self.texts, file_chunks=self.file_chunks, doc_size=self.doc_size):
            yield synthetic_document(chunks), chunks, self.vectors[chunks[0].id : chunks[-1].id + 1]
