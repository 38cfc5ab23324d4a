"""Whether the corpus covers a question: the scope policy, and the corpus statistics it reads.

The policy is a function of a store's statistics, not a method of the store: every backend
gives the same term document frequencies, so every backend decides alike.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from assistant.lexical import coverage as idf_coverage
from assistant.lexical import named_terms, tokenize
from assistant.stores.base import ChunkReader

logger = logging.getLogger(__name__)


def coverage(reader: ChunkReader, query: str) -> float:
    """IDF-weighted share of the query's content words that the corpus uses (`lexical.coverage`)."""
    tokens = tokenize(query)
    return idf_coverage(tokens, reader.document_frequencies(tokens), reader.count())


def names_known(reader: ChunkReader, query: str, english: Mapping[str, int] | None = None) -> bool:
    """True when the query names something (`lexical.named_terms`, only names rare in `english` when given)
    and the corpus uses every such name."""
    names = named_terms(query, english)
    if not names:
        return False
    df = reader.document_frequencies(names)
    return all(df.get(name, 0) > 0 for name in names)


@dataclass(frozen=True)
class ScopePolicy:
    """When a question counts as covered: best cosine + weight·(coverage − 1) ≥ threshold,
    or the question names things (proper names, acronyms, "K2") that the corpus names too.

    `coverage` is the IDF-weighted share of the question's words the corpus uses at all, so a
    question about something the document never names ("sources of iron") needs a much closer
    passage than one whose words all occur. Names are the second route because a small
    embedding model knows little about rare names: "What did the Framingham study find?" is far
    from every passage in cosine, yet plainly about one.

    >>> ScopePolicy(threshold=0.24, coverage_weight=0.35).covers(0.5, 0.5)
    True
    """

    threshold: float = 0.24
    coverage_weight: float = 0.35

    def score(self, best_dense: float, coverage: float) -> float:
        return best_dense + self.coverage_weight * (coverage - 1.0)

    def covers(self, best_dense: float, coverage: float, names_known: bool = False) -> bool:
        return names_known or self.score(best_dense, coverage) >= self.threshold


def sigmoid(z: np.ndarray | float) -> np.ndarray | float:
    return 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=float)))


@dataclass(frozen=True)
class LinearModel:
    """A logistic regression as fitted by scikit-learn, kept as plain numbers: standardise, dot, sigmoid."""

    features: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    def logits(self, rows: np.ndarray) -> np.ndarray:
        rows = np.atleast_2d(rows)
        if rows.shape[1] != len(self.features):
            raise ValueError(f"expected {len(self.features)} features ({', '.join(self.features)}), got {rows.shape[1]}")
        return ((rows - self.mean) / self.scale) @ self.coef + self.intercept

    def probabilities(self, rows: np.ndarray) -> np.ndarray:
        return sigmoid(self.logits(rows))

    def to_json(self) -> dict[str, Any]:
        return {"features": list(self.features), "mean": self.mean.tolist(), "scale": self.scale.tolist(),
                "coef": self.coef.tolist(), "intercept": float(self.intercept)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "LinearModel":
        return cls(tuple(data["features"]), np.asarray(data["mean"], float), np.asarray(data["scale"], float),
                   np.asarray(data["coef"], float), float(data["intercept"]))


#: The most the residual features may add to a question's logit (see `answerable_logits`).
RESIDUAL_CAP = 2.0


@lru_cache(maxsize=8)
def residual_columns(features: tuple[str, ...]) -> np.ndarray:
    """Which of `features` are residual ones (`features.residual_names`), as a read-only mask."""
    mask = np.array([name.startswith("residual_") for name in features], dtype=bool)
    mask.setflags(write=False)
    return mask


def answerable_logits(model: LinearModel, rows: np.ndarray) -> np.ndarray:
    """The answerability model's logits, where the residual features (`features.residual_features`) add at
    most `RESIDUAL_CAP`, and nothing to a question naming a health term the corpus never uses
    (`unknown_health_entity`): they may lower its score only.

    The residual reads what a question asks beyond its passages, and with it the shape of the questions the
    bank's documents answer: "What are good dietary sources of iron?" is shaped like many an answerable
    question, and the residual outweighed the missing "iron" — 16 of 100 such questions about nutrients the
    calcium article never names were answered, 4 without the residual. And a question far from every passage
    (“What should I bring on a trip to Iceland?”) is nearly all residual, in directions no training question
    took, where the weights add noise: +7 in one case. Capped both ways, 7 of those 100 and none of 40
    off-topic questions are answered, and the bank's test parts keep most of the residual's gain (near-topic
    refused 0.77 against 0.63 without it, answered 0.94 both).
    """
    rows = np.atleast_2d(rows)
    residual = residual_columns(model.features)
    if not residual.any():
        return model.logits(rows)
    terms = ((rows - model.mean) / model.scale) * model.coef
    outside = terms[:, residual].sum(axis=1)
    if "unknown_health_entity" in model.features:
        unknown = rows[:, model.features.index("unknown_health_entity")] > 0
        outside = np.where(unknown, np.minimum(outside, 0.0), outside)
    return terms[:, ~residual].sum(axis=1) + np.minimum(outside, RESIDUAL_CAP) + model.intercept


@dataclass(frozen=True)
class AnswerModel:
    """The learned decisions of an answer: how to rank candidates, whether the question is covered, what to quote.

    Trained on the tuning part of the question bank by `assistant.evaluation.training`, for one
    embedding model (`embedder`): with another model its features mean something else, and
    `load_answer_model` refuses it so that the hand-set `ScopePolicy` is used instead.
    """

    embedder: str
    rank: LinearModel
    answerable: LinearModel
    threshold: float  # least probability of being answerable
    emergency_threshold: float  # the same, when the question describes an emergency: quote only a clear answer
    relative: float  # a further quote needs this share of the best quote's probability
    absolute: float  # and at least this probability
    trained: dict[str, Any]
    extend: float = 1.0  # a neighbouring sentence joins a quote with this share of its probability

    def answerable_probability(self, facts: np.ndarray) -> float:
        """The probability that the corpus answers a question with these `QUESTION_FEATURES` (+ residual ones)."""
        return float(sigmoid(answerable_logits(self.answerable, facts))[0])

    def to_json(self) -> dict[str, Any]:
        return {"embedder": self.embedder, "rank": self.rank.to_json(), "answerable": self.answerable.to_json(),
                "threshold": self.threshold, "emergency_threshold": self.emergency_threshold,
                "relative": self.relative, "absolute": self.absolute, "extend": self.extend, "trained": self.trained}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "AnswerModel":
        return cls(data["embedder"], LinearModel.from_json(data["rank"]), LinearModel.from_json(data["answerable"]),
                   float(data["threshold"]), float(data["emergency_threshold"]), float(data["relative"]),
                   float(data["absolute"]), dict(data.get("trained", {})), float(data.get("extend", 1.0)))


DEFAULT_ANSWER_MODEL = Path(__file__).resolve().parent / "data" / "answer_model.json"


def load_answer_model(path: Path | None, embedder: str) -> AnswerModel | None:
    """The answer model at `path` (the packaged one by default), or None when it is absent or made for another embedder."""
    path = path or DEFAULT_ANSWER_MODEL
    try:
        model = AnswerModel.from_json(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        logger.warning("no answer model at %s: using the hand-set scope policy", path)
        return None
    except (ValueError, KeyError, TypeError) as exc:
        logger.warning("the answer model %s cannot be read (%s): using the hand-set scope policy", path, exc)
        return None
    if model.embedder != embedder:
        logger.warning("the answer model %s was trained for %s, not %s: using the hand-set scope policy",
                       path, model.embedder, embedder)
        return None
    return model
