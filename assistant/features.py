"""What the learned decisions look at: features of each retrieved chunk, and of a question against the corpus.

Every feature is relative to the corpus and the question — scores, ranks, shares, whether a
word is known — never a word of one document, so weights learned on one document carry over
to others (the bank's two other documents check that). `scope.AnswerModel` turns them into a
ranking and an answerability probability; `evaluation.training` fits the weights.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache
from typing import Sequence

import numpy as np

from assistant.encoders.pipeline import TokenVectors
from assistant.lexical import health_terms, idf, named_terms, stopwords, tokenize, words
from assistant.models import Chunk, embedding_text
from assistant.retrieval import Hit

KINDS = ("sentence", "list_item", "table_row", "list", "table")

CANDIDATE_FEATURES = (
    "dense", "dense_gap", "bm25_share", "fused_gap", "block_gap", "previous_dense", "next_dense",
    "dense_rank", "bm25_rank", "length", "token_share", "rare_match", "has_rarest", *(f"kind_{k}" for k in KINDS),
)

#: How well the question's words find a counterpart among the passages' words, in the encoder's own contextual
#: token vectors (BERTScore-like): "Does cooking spinach reduce its magnesium content?" finds spinach and
#: magnesium in "Leafy Greens: Spinach, kale, …" but nothing close to "cooking" — the passage is about the
#: question's subject, not its point. Computed over the top candidate, and the best of the first three.
ALIGNMENT_FEATURES = ("align_min", "align_weak", "align_best_mean", "align_best_min", "align_best_weak")
ALIGNMENT_PASSAGES = 3

QUESTION_FEATURES = (
    "best_dense", "best_rank_score", "rank_margin", "coverage", "best_chunk_share", "unknown_share",
    "unknown_english", "unknown_commonness", "names_unknown", "length", "wants_number_missing",
    "unknown_health_entity", "unknown_population", "unknown_anatomy", "unknown_commerce", "population_unmentioned",
    *ALIGNMENT_FEATURES,
)

#: What a question asks beyond its first passages: its vector less its projection on the span of the vectors of
#: the top `RESIDUAL_PASSAGES` passages, one feature per embedding dimension ("residual_<i>"). Which way that
#: remainder points says what the passages leave out — an amount, a brand, an age group, another nutrient —
#: whatever the document's subject, so the weights learned on the bank's documents carry over to others.
RESIDUAL_PASSAGES = 3

#: Groups of `health_lexicon` categories, one question feature each: the question names a term of the group
#: that the corpus does not use. Entities (a nutrient, food, medicine, condition, test) weigh most.
LEXICON_GROUPS: dict[str, tuple[str, ...]] = {
    "entity": ("nutrient", "food", "medicine", "condition", "procedure"),
    "population": ("population",), "anatomy": ("anatomy",), "commerce": ("commerce",),
}

# Words that shape a question rather than name its subject: an unknown one says nothing about scope.
_FILLER = frozenset("""
how much many what which when where who whom whose why does did do is are was were be been can could should would
will shall may might must type kind sort best better good bad ok okay real really like lol lmao actually basically
just also even still please thanks thank hey hi hello anyone someone somebody know tell explain say says said mean
means find finds found show shows showed shown thing things stuff way ways get gets got gotta gonna wanna take takes taking taken make makes made use used
using need needs help helps work works working legit true false right wrong whole part overall bottom line
""".split())
_NUMBER_QUESTION = re.compile(r"\b(how (much|many|long|often)|dose|dosage|amount|mg|milligrams?|grams?|iu|per day|daily)\b", re.I)
_HAS_NUMBER = re.compile(r"\d")


@lru_cache(maxsize=65_536)
def _tokens(kind: str, context: str, text: str) -> frozenset[str]:
    return frozenset(tokenize(embedding_text(kind, context, text)))


def _tokens_of(chunk: Chunk) -> frozenset[str]:
    """The tokens of a chunk's `embedding_text`, kept: the same chunks come back question after question.

    Keyed on the chunk's own strings, whose hashes Python keeps, rather than on a string built anew each time.
    """
    return _tokens(chunk.kind, chunk.context, chunk.text)


@lru_cache(maxsize=1)
def health_lexicon() -> dict[str, dict[str, tuple[tuple[str, ...], ...]]]:
    """Health terms (`lexical.health_terms`) as token sequences, by `LEXICON_GROUPS` group and first token."""
    group_of = {category: group for group, categories in LEXICON_GROUPS.items() for category in categories}
    by_first: dict[str, dict[str, set[tuple[str, ...]]]] = {}
    for category, text in health_terms():
        group, term = group_of.get(category), tuple(tokenize(text))
        if group is not None and term:
            by_first.setdefault(term[0], {}).setdefault(group, set()).add(term)
    return {first: {g: tuple(terms) for g, terms in groups.items()} for first, groups in by_first.items()}


def unknown_health_terms(tokens: Sequence[str], df: dict[str, int],
                         named: dict[str, list[tuple[str, ...]]] | None = None) -> dict[str, int]:
    """How many terms of each `LEXICON_GROUPS` group the question's `tokens` name with a word the corpus lacks
    (`named`: `health_terms_named(tokens)`, when already at hand).

    >>> unknown_health_terms(["warfarin", "magnesium", "kidney"], {"magnesium": 3, "kidney": 1})
    {'entity': 1, 'population': 0, 'anatomy': 0, 'commerce': 0}
    """
    named = health_terms_named(tokens) if named is None else named
    return {group: sum(not all(df.get(t, 0) > 0 for t in term) for term in terms) for group, terms in named.items()}


def health_terms_named(tokens: Sequence[str]) -> dict[str, list[tuple[str, ...]]]:
    """The terms of each `LEXICON_GROUPS` group that `tokens` name, as token sequences, in order.

    >>> health_terms_named(tokenize("Is it safe for pregnant women and children?"))["population"]
    [('pregnant',), ('women',), ('children',)]
    """
    lexicon = health_lexicon()
    named: dict[str, list[tuple[str, ...]]] = {group: [] for group in LEXICON_GROUPS}
    for i, token in enumerate(tokens):
        for group, terms in lexicon.get(token, {}).items():
            named[group] += [term for term in terms if tuple(tokens[i:i + len(term)]) == term]
    return named


def _rank_map(values: np.ndarray) -> np.ndarray:
    """1 / (1 + rank) of each value, best first; ties by position."""
    order = np.lexsort((np.arange(len(values)), -values))
    out = np.empty(len(values))
    out[order] = 1.0 / (1.0 + np.arange(len(values)))
    return out


def candidate_features(hits: Sequence[Hit], query_tokens: Sequence[str], df: dict[str, int], n: int) -> np.ndarray:
    """One row of `CANDIDATE_FEATURES` per hit, in the order of `hits` (column by column: it runs per question)."""
    if not hits:
        return np.zeros((0, len(CANDIDATE_FEATURES)))
    chunks = [h.chunk for h in hits]
    dense = np.array([h.dense for h in hits])
    lexical = np.array([h.lexical for h in hits])
    top = lexical.max()
    share = lexical / top if top > 0 else np.zeros_like(lexical)
    fused = 0.8 * dense + 0.2 * share
    by_place = {(c.source, c.block, c.id): d for c, d in zip(chunks, dense.tolist())}
    block_best: dict[tuple[str, int], float] = {}
    for c, d in zip(chunks, dense.tolist()):
        key = (c.source, c.block)
        if d > block_best.get(key, -1.0):
            block_best[key] = d
    terms = sorted(set(query_tokens))
    weights = np.array([idf(df.get(t, 0), n) for t in terms])
    total = float(weights.sum()) or 1.0
    # The rarest query word the corpus uses, and how close to it each chunk's rarest match comes: "is rhubarb bad
    # for kidney stones" is answered by the one list item naming rhubarb, far from the question in cosine.
    known = weights * np.array([df.get(t, 0) > 0 for t in terms], dtype=float)
    rarest = float(known.max(initial=0.0)) or 1.0
    contains = np.array([[t in tokens for t in terms] for tokens in map(_tokens_of, chunks)], dtype=float)
    rare = (contains * known).max(axis=1, initial=0.0) / rarest
    kinds = [c.kind for c in chunks]
    return np.column_stack([
        dense, dense - dense.max(), share, fused - fused.max(),
        np.array([block_best[(c.source, c.block)] for c in chunks]) - dense,
        [by_place.get((c.source, c.block, c.id - 1), 0.0) for c in chunks],
        [by_place.get((c.source, c.block, c.id + 1), 0.0) for c in chunks],
        _rank_map(dense), _rank_map(lexical), np.log1p([len(c.text) for c in chunks]) / 7.0,
        contains @ weights / total, rare, rare >= 0.999,
        *([kind == k for kind in kinds] for k in KINDS),
    ]).astype(float)


@lru_cache(maxsize=1)
def _not_content() -> frozenset[str]:
    return stopwords() | _FILLER


def has_content(text: str) -> bool:
    """Whether `text` has a word that names something: not a stop word, not a question-shaping word.

    >>> has_content("and what about vitamin K1?"), has_content("who gets it then?")
    (True, False)
    """
    return bool(content_words(text))


def content_words(text: str) -> list[str]:
    """The words of `text` that are neither stop words nor question-shaping words, normalised, in order."""
    stop = _not_content()
    return [w for w in words(text) if w not in stop]


def content_pieces(pieces: Sequence[str]) -> list[int]:
    """Positions of the word pieces that carry a question's content: not punctuation, not a stop word or a
    question-shaping word standing alone (a piece continued by `##…` is part of a longer word)."""
    stop = _not_content()
    keep = []
    for i, piece in enumerate(pieces):
        if not any(ch.isalnum() for ch in piece):
            continue
        whole = not piece.startswith("##") and not (i + 1 < len(pieces) and pieces[i + 1].startswith("##"))
        if whole and piece.lower() in stop:
            continue
        keep.append(i)
    return keep


def alignment_features(question: TokenVectors | None, passages: Sequence[TokenVectors]) -> np.ndarray:
    """The `ALIGNMENT_FEATURES` of a question's token vectors against its ranked passages' (best first).

    For each content piece of the question, its best cosine to any piece of a passage; then, for the top
    passage, the lowest of those and the share under 0.40; over the first `ALIGNMENT_PASSAGES`, the best mean,
    the best lowest and the smallest share under 0.55. A question with no content word ("thanks, that
    helps") or no passage aligns with nothing: best cosines 0, every share 1.
    """
    keep = content_pieces(question[0]) if question is not None else []
    if not keep or not passages:
        return np.array([0.0, 1.0, 0.0, 0.0, 1.0])
    rows = question[1][keep]
    stats = []
    for _, vectors in passages[:ALIGNMENT_PASSAGES]:
        best = (rows @ vectors.T).max(axis=1) if len(vectors) else np.zeros(len(rows))
        stats.append((float(best.mean()), float(best.min()), float(np.mean(best < 0.40)), float(np.mean(best < 0.55))))
    top = stats[0]
    return np.array([top[1], top[2], max(s[0] for s in stats), max(s[1] for s in stats), min(s[3] for s in stats)])


def residual_names(dimension: int) -> tuple[str, ...]:
    """The names of the residual features of an embedder with `dimension`-wide vectors."""
    return tuple(f"residual_{i}" for i in range(dimension))


def residual_features(question: np.ndarray, passages: np.ndarray) -> np.ndarray:
    """The part of `question` (a vector) outside the span of `passages` (rows, best first): see `RESIDUAL_PASSAGES`.

    Not rescaled: its length, how much of the question the passages leave out, is part of what it says.
    """
    question = np.asarray(question, dtype=float)
    left = question / (np.linalg.norm(question) or 1.0)
    basis: list[np.ndarray] = []
    for row in np.asarray(passages, dtype=float)[:RESIDUAL_PASSAGES]:  # Gram-Schmidt: a few rows, no LAPACK call
        for b in basis:
            row = row - (row @ b) * b
        size = np.linalg.norm(row)
        if size > 1e-9:  # a passage in the span of the ones before adds nothing
            basis.append(row / size)
    for b in basis:
        left = left - (left @ b) * b
    return left


def answerability_features(
    question: str, hits: Sequence[Hit], rank_scores: np.ndarray, df: dict[str, int], n: int,
    english: dict[str, int], alignment: np.ndarray, question_vector: np.ndarray, passage_vectors: np.ndarray,
) -> np.ndarray:
    """The row the answerability model reads: `question_features`, then `residual_features` of the question's
    own vector against its ranked passages' stored vectors (the first `RESIDUAL_PASSAGES` suffice)."""
    return np.concatenate([
        question_features(question, hits, rank_scores, df, n, english, alignment),
        residual_features(question_vector, passage_vectors),
    ])


def question_features(
    question: str, hits: Sequence[Hit], rank_scores: np.ndarray, df: dict[str, int], n: int,
    english: dict[str, int], alignment: np.ndarray,
) -> np.ndarray:
    """The row of `QUESTION_FEATURES` for `question` (as rewritten for search) and its ranked candidates.

    `alignment` is `alignment_features` of the question against the ranked candidates.
    """
    tokens = tokenize(question)
    weights = {t: idf(df.get(t, 0), n) for t in tokens}
    total = sum(weights.values()) or 1.0
    known = [t for t in tokens if df.get(t, 0) > 0]
    coverage = sum(weights[t] for t in known) / total if tokens else 0.0
    words = [w for w in re.findall(r"[a-z]+", question.lower()) if w not in _FILLER and len(w) > 2]
    unknown_words = [w for w in words if df.get(tokenize(w)[0] if tokenize(w) else w, 0) == 0]
    unknown_english = [w for w in unknown_words if w in english]
    commonness = max((math.log10(english[w]) for w in unknown_english), default=0.0) / 10.0
    names = named_terms(question)
    order = np.argsort(-rank_scores) if len(rank_scores) else np.array([], dtype=int)
    best_share = 0.0
    for j in order[:5]:
        chunk_tokens = _tokens_of(hits[j].chunk)
        best_share = max(best_share, sum(w for t, w in weights.items() if t in chunk_tokens) / total)
    best_text = hits[order[0]].chunk.text if len(order) else ""
    named = health_terms_named(tokens)
    # "Is magnesium glycinate safe while breastfeeding?": a group of people none of the best passages speaks of,
    # even where another passage of the corpus does.
    passage_tokens = frozenset().union(*(_tokens_of(hits[j].chunk) for j in order[:RESIDUAL_PASSAGES]))
    population_unmentioned = any(not set(term) <= passage_tokens for term in named["population"])
    wants_number_missing = bool(_NUMBER_QUESTION.search(question)) and not _HAS_NUMBER.search(best_text)
    sorted_scores = np.sort(rank_scores)[::-1] if len(rank_scores) else np.zeros(1)
    return np.array([
        max((h.dense for h in hits), default=0.0),
        float(sorted_scores[0]),
        float(sorted_scores[0] - sorted_scores[1]) if len(sorted_scores) > 1 else 0.0,
        coverage, best_share,
        len(unknown_words) / max(len(words), 1),
        min(len(unknown_english), 3) / 3.0,
        commonness,
        float(any(df.get(t, 0) == 0 for t in names)),
        min(len(tokens), 20) / 10.0,
        float(wants_number_missing),
        *(float(n > 0) for n in unknown_health_terms(tokens, df, named).values()),
        float(population_unmentioned),
        *alignment,
    ], dtype=float)
