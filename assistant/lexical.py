"""BM25 over chunks with bm25s, and the project's one text normaliser for matching.

The normaliser (`tokenize`) is used for matching only: lower-case, NFKC, words of letters and
digits, English stop words removed, Snowball-stemmed. What is quoted is never normalised.
Single-character tokens are kept so that "vitamin D" and "vitamin K2" stay distinguishable.
"""

from __future__ import annotations

import logging
import math
import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

logger = logging.getLogger(__name__)

_WORD = re.compile(r"\w+", re.UNICODE)


@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


@lru_cache(maxsize=1)
def stopwords() -> frozenset[str]:
    _bm25s()
    from bm25s.stopwords import STOPWORDS_EN_PLUS

    return frozenset(STOPWORDS_EN_PLUS)


def normalize(text: str) -> str:
    """Lower-cased NFKC text, for comparing, never for quoting."""
    return unicodedata.normalize("NFKC", text).lower()


def words(text: str) -> list[str]:
    """The normalised words of `text`, stop words included, unstemmed."""
    return _WORD.findall(normalize(text))


#: Health terms, one a line under "# category: …" lines: `assistant.features` reads scope signals from them, and
#: `assistant.query` never takes one of their words for a typo ("statins" is not "starting").
HEALTH_LEXICON = Path(__file__).resolve().parent / "data" / "health_lexicon.txt"


@lru_cache(maxsize=1)
def health_terms() -> tuple[tuple[str, str], ...]:
    """(category, term) for every term of the health lexicon, hyphens read as spaces ("beta carotene")."""
    terms, category = [], ""
    for line in HEALTH_LEXICON.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line.startswith("# category:"):
            category = line.split(":", 1)[1].strip()
        elif line and not line.startswith("#"):
            terms.append((category, line.replace("-", " ")))
    return tuple(terms)


@lru_cache(maxsize=1)
def health_words() -> frozenset[str]:
    """Every word of the health lexicon's terms, normalised and unstemmed ("statin", "warfarin", "aplastic")."""
    return frozenset(w for _, term in health_terms() for w in words(term))


def tokenize(text: str) -> list[str]:
    """Stemmed content tokens: what BM25 indexes and what scope checks compare."""
    stop = stopwords()
    return _stemmer().stemWords([w for w in words(text) if w not in stop and w != "_"])


_NAME = re.compile(r"\b(?:[A-Z][a-z]+\w*|[A-Z]{2,}[a-z]?|\w*\d\w*)\b")


#: How often (in symspellpy's English word counts) a word may occur and still be a rare name: "Framingham",
#: "glycinate" and "warfarin" (0.5 M) are under it; "World", "Cup", "France" (45 M and more) are everyday words.
COMMON_WORD = 10_000_000


def named_terms(text: str, english: Mapping[str, int] | None = None) -> list[str]:
    """Words that name something rather than phrase a question: capitalised words other than
    the first, acronyms ("CKD", "VSMCs") and tokens with digits ("K2", "2017"). Stemmed.

    With `english` (word -> how often it is used), only names rare in English: an everyday word
    capitalised ("World Cup") names nothing a small embedding model would not know.

    >>> named_terms("What did the Framingham study find in 2017?")
    ['framingham', '2017']
    >>> named_terms("Who won the World Cup in Framingham?", {"world": 431934249, "cup": 45032014})
    ['framingham']
    """
    first = re.match(r"\W*(\w+)", text)
    skip = first.start(1) if first else -1
    return [
        token
        for match in _NAME.finditer(text)
        if match.start() != skip and (english is None or english.get(match.group(0).lower(), 0) < COMMON_WORD)
        for token in tokenize(match.group(0))
        if len(token) > 1  # a lone digit or letter ("1" in "alert(1)") names nothing
    ]


@dataclass(frozen=True)
class Vocabulary:
    """The words a corpus uses (lower-cased, with how many chunks use each) and the acronyms it defines."""

    words: dict[str, int] = field(default_factory=dict)
    acronyms: dict[str, str] = field(default_factory=dict)


_ACRONYM = re.compile(r"\(([A-Z][A-Za-z0-9]{1,9})\)")
_BEFORE = re.compile(r"[A-Za-z][\w-]*")


def build_vocabulary(texts: Iterable[str]) -> Vocabulary:
    """The `Vocabulary` of these chunk texts; acronyms are "long form (LF)" definitions whose initials match.

    >>> v = build_vocabulary(["Vascular smooth muscle cells (VSMCs) change.", "chronic kidney disease (CKD)"])
    >>> v.acronyms == {"VSMCs": "Vascular smooth muscle cells", "CKD": "chronic kidney disease"}
    True
    >>> v.words["vascular"]
    1
    """
    counts: dict[str, int] = {}
    acronyms: dict[str, str] = {}
    for text in texts:
        for word in set(words(text)):
            counts[word] = counts.get(word, 0) + 1
        for match in _ACRONYM.finditer(text):
            acronym = match.group(1)
            letters = acronym[:-1] if acronym.endswith("s") and len(acronym) > 2 else acronym
            before = _BEFORE.findall(text[max(0, match.start() - 200) : match.start()])
            if len(before) >= len(letters):
                phrase = before[-len(letters):]
                if all(w[0].lower() == c.lower() for w, c in zip(phrase, letters)):
                    acronyms.setdefault(acronym, " ".join(phrase))
    return Vocabulary(dict(sorted(counts.items())), acronyms)


def idf(df: int, n: int) -> float:
    """BM25's idf (Lucene's, always positive) of a token found in `df` of `n` chunks."""
    return math.log(1.0 + (n - df + 0.5) / (df + 0.5))


BM25_K1, BM25_B = 1.2, 0.75


def bm25_scores(
    query: Sequence[str], docs: Sequence[Sequence[str]], df: dict[str, int], n: int, avgdl: float,
    *, k1: float = BM25_K1, b: float = BM25_B,
) -> np.ndarray:
    """BM25 (Lucene's variant, as bm25s computes it) of each tokenised doc for the query tokens.

    For backends that keep the tokens but not bm25s's matrix: given the corpus statistics
    (`df`, `n` chunks, `avgdl` tokens per chunk) the scores equal `LexicalIndex.scores`.
    A query token counts as often as it occurs in the query, as in bm25s.
    """
    out = np.zeros(len(docs), dtype=np.float32)
    known = [t for t in query if df.get(t, 0) > 0]
    if not known or avgdl <= 0:
        return out
    for row, doc in enumerate(docs):
        counts: dict[str, int] = {}
        for token in doc:
            counts[token] = counts.get(token, 0) + 1
        norm = k1 * (1 - b + b * len(doc) / avgdl)
        out[row] = sum(idf(df[t], n) * counts[t] / (counts[t] + norm) for t in known if t in counts)
    return out


def coverage(tokens: Sequence[str], df: dict[str, int], n: int) -> float:
    """IDF-weighted share of the query's content words that the corpus uses (0..1).

    A word the corpus never uses weighs as much as its rarest word, so "sources of iron"
    against an article without iron scores low even though "sources" matches.
    Returns 0 when the query has no content words.

    >>> round(coverage(["magnesium", "iron"], {"magnesium": 5, "iron": 0}, 100), 2)
    0.35
    """
    if not tokens:
        return 0.0
    weights = [idf(df.get(t, 0), n) for t in tokens]
    known = sum(w for t, w in zip(tokens, weights) if df.get(t, 0) > 0)
    return known / sum(weights)


def top_positive(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The `k` highest positive scores and their positions, best first, ties by position.

    >>> top_positive(np.array([0.0, 2.0, 1.0, 2.0]), 2)[1].tolist()
    [1, 3]
    """
    positive = np.flatnonzero(scores > 0)
    if positive.size > k:
        positive = positive[np.argpartition(-scores[positive], k - 1)[:k]]
    order = positive[np.lexsort((positive, -scores[positive]))]
    return scores[order], order


def _bm25s():
    """Import bm25s, undoing the DEBUG level it gives its own logger at import time.

    bm25s imports numba and scipy when they are installed (ranx brings numba), for backends the
    project does not use: that costs half a second of every cold start. They are hidden while bm25s
    is imported, so it settles on its numpy backend; anything imported later sees them as usual.
    """
    import sys

    if "bm25s" not in sys.modules:
        hidden = [name for name in ("numba", "scipy", "scipy.sparse") if name not in sys.modules]
        for name in hidden:
            sys.modules[name] = None  # type: ignore[assignment]
        try:
            import bm25s  # noqa: F401
        finally:
            for name in hidden:
                sys.modules.pop(name, None)
    import bm25s

    logging.getLogger("bm25s").setLevel(logging.WARNING)
    return bm25s


class LexicalIndex:
    """BM25 (Lucene variant, k1=1.2, b=0.75) over pre-tokenised chunks.

    Example:
        >>> lex = LexicalIndex.build(["magnesium in nuts", "iron in meat"])
        >>> int(lex.scores("nuts").argmax())
        0
    """

    def __init__(self, retriever, vocab: dict[str, int]) -> None:
        self._bm25 = retriever
        self.vocab = vocab

    @classmethod
    def build(cls, texts: Sequence[str], *, k1: float = BM25_K1, b: float = BM25_B) -> "LexicalIndex":
        bm25s = _bm25s()
        corpus_tokens = [tokenize(t) or ["_empty_"] for t in texts]
        retriever = bm25s.BM25(k1=k1, b=b, method="lucene")
        retriever.index(corpus_tokens, show_progress=False)
        return cls(retriever, dict(retriever.vocab_dict))

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every chunk for `query` (zeros when no query word is in the corpus)."""
        tokens = [t for t in tokenize(query) if t in self.vocab]
        if not tokens:
            return np.zeros(self.count(), dtype=np.float32)
        return np.asarray(self._bm25.get_scores(tokens), dtype=np.float32)

    def document_frequencies(self, tokens: Sequence[str]) -> dict[str, int]:
        """How many chunks contain each stemmed token (0 for tokens the corpus never uses)."""
        indptr = self._bm25.scores["indptr"]
        out = {}
        for token in tokens:
            tid = self.vocab.get(token)
            out[token] = 0 if tid is None else int(indptr[tid + 1] - indptr[tid])
        return out

    def count(self) -> int:
        return int(self._bm25.scores["num_docs"])

    def save(self, path: str) -> None:
        """Write bm25s's own files into the folder `path`."""
        self._bm25.save(path, show_progress=False)

    @classmethod
    def load(cls, path: str) -> "LexicalIndex":
        retriever = _bm25s().BM25.load(path, show_progress=False, verbosity=0)
        return cls(retriever, dict(retriever.vocab_dict))
