"""Fit the answer model and the safety classifiers on the tuning part of the question bank.

Run `python -m assistant eval --train` (it writes `assistant/data/answer_model.json` and
`assistant/data/safety_model.json`); the test part is never read. Every choice — regularisation,
thresholds, how many quotes — is made with cross-validation *inside* the tuning part
(`FOLDS`-fold, grouped by question, seeded), so the figures it prints are out-of-fold estimates,
and the test part's figures (`eval`) stay an honest prediction of unseen questions.

The pipeline up to the decisions is the product's own: `Assistant.inspect` with the hand-set
policy gives the rewritten query, the candidates in retrieval order and the question's
embedding; `assistant.features` turns them into the rows the models read.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from assistant.answer import select_passages
from assistant.evaluation.bank import overlaps
from assistant.features import (ALIGNMENT_PASSAGES, CANDIDATE_FEATURES, QUESTION_FEATURES, RESIDUAL_PASSAGES,
                                alignment_features, answerability_features, candidate_features, residual_names)
from assistant.lexical import tokenize
from assistant.query import english_words
from assistant.safety import speaks_of_oneself
from assistant.scope import AnswerModel, LinearModel, answerable_logits, residual_columns, sigmoid

logger = logging.getLogger(__name__)

FOLDS = 5
SEED = 20261202
ANSWERED_TARGET = 0.95  # share of answerable tuning questions the threshold lets through (out of fold)
C_GRID = (0.1, 0.3, 1.0, 3.0, 10.0)
# Answerability reads one feature per embedding dimension (`residual_features`) beside its few scalar ones. The
# residual ones are penalised RESIDUAL_SHRINK² times more: one penalty for all (C 0.01, the best of 0.001-0.1) let
# the scalar ones fade, and "What does copper do in the body?" was answered from a magnesium sentence.
ANSWERABLE_C_GRID = (0.1, 0.3)
RESIDUAL_SHRINK = (3.0, 5.0)


@dataclass
class Sample:
    """One tuning question as the product sees it."""

    reader: Any  # the view of the store it was asked of
    top_k: int
    item: dict[str, Any]
    hits: list[Any]
    features: np.ndarray  # candidate features, retrieval order
    labels: np.ndarray  # candidate overlaps a labelled span
    own: str
    vector: np.ndarray
    df: dict[str, int]
    n: int
    tokens: Any = None  # the search's token vectors (`Judgement.tokens`)
    passages: Any = None  # the assistant's `PassageTokens`: token vectors of any candidate

    def alignment(self, order: Sequence[int]) -> np.ndarray:
        """`alignment_features` of the question against its candidates ranked in `order`."""
        chunks = [self.hits[i].chunk for i in list(order)[:ALIGNMENT_PASSAGES]]
        return alignment_features(self.tokens, self.passages.get(chunks) if self.passages is not None else [])


def collect(bot, items: Sequence[dict[str, Any]]) -> list[Sample]:
    """Run the product's pipeline (hand-set policy, no learned model) over `items`."""
    saved, bot.answer_model = bot.answer_model, None
    samples = []
    try:
        view = bot.store.view()
        for item in items:
            turns = item.get("turns") or [item["question"]]
            judged = bot.inspect(turns[-1], turns[:-1])
            pieces = bot.embedder.encode_tokens([judged.aligned])[1][0]  # as the learned policy encodes it
            tokens = sorted(set(tokenize(judged.search)) | set(tokenize(judged.own)))
            df = view.document_frequencies(tokens)
            features = candidate_features(judged.hits, tokenize(judged.search), df, view.count())
            labels = np.array([answers(h.chunk, item) for h in judged.hits], dtype=bool)
            samples.append(Sample(view, bot.settings.top_k, item, judged.hits, features, labels, judged.own, judged.vector,
                                  df, view.count(), pieces, bot.passage_tokens))
    finally:
        bot.answer_model = saved
    return samples


def answers(chunk, item: dict[str, Any]) -> bool:
    """Whether a chunk answers a bank item: it overlaps a labelled span — and, for a whole list or table,
    the labelled spans make up at least half of it (a question about one row is not answered by the table)."""
    if chunk.source != item["source"] or not overlaps(chunk.start, chunk.end, item["spans"]):
        return False
    if chunk.kind not in ("list", "table"):
        return True
    inside = sum(max(0, min(e, chunk.end) - max(s, chunk.start)) for s, e in item["spans"])
    return inside >= 0.5 * (chunk.end - chunk.start)


def _folds(count: int) -> np.ndarray:
    return np.random.default_rng(SEED).permutation(count) % FOLDS


def _fit(rows: np.ndarray, labels: np.ndarray, c: float, names: Sequence[str], *, balanced: bool = False,
         standardize: bool = True, shrink: float = 1.0) -> LinearModel:
    """A logistic regression on standardised `rows`; features named "residual_*" are scaled down by `shrink`
    after standardising, which penalises their weights `shrink`² times more."""
    from sklearn.linear_model import LogisticRegression

    mean = rows.mean(axis=0) if standardize else np.zeros(rows.shape[1])
    scale = rows.std(axis=0) if standardize else np.ones(rows.shape[1])
    scale[scale == 0] = 1.0
    scale[residual_columns(tuple(names))] *= shrink
    fitted = LogisticRegression(C=c, max_iter=5000, class_weight="balanced" if balanced else None)
    fitted.fit((rows - mean) / scale, labels)
    return LinearModel(tuple(names), mean, scale, fitted.coef_[0].copy(), float(fitted.intercept_[0]))


def _out_of_fold(groups: list[np.ndarray], labels: list[np.ndarray], c: float, names: Sequence[str],
                 *, balanced: bool = False, standardize: bool = True, shrink: float = 1.0,
                 score: Callable[[LinearModel, np.ndarray], np.ndarray] = LinearModel.logits) -> list[np.ndarray]:
    """Logits of each group from a model fitted on the other folds."""
    folds = _folds(len(groups))
    out: list[np.ndarray] = [np.zeros(0)] * len(groups)
    for fold in range(FOLDS):
        train = [i for i in range(len(groups)) if folds[i] != fold and len(groups[i])]
        model = _fit(np.vstack([groups[i] for i in train]), np.concatenate([labels[i] for i in train]), c, names,
                     balanced=balanced, standardize=standardize, shrink=shrink)
        for i in range(len(groups)):
            if folds[i] == fold and len(groups[i]):
                out[i] = score(model, groups[i])
    return out


def _ranking_quality(logits: list[np.ndarray], labels: list[np.ndarray]) -> tuple[float, float]:
    hits = reciprocal = 0.0
    for score, label in zip(logits, labels):
        order = np.lexsort((np.arange(len(score)), -score))
        ranks = [r for r, j in enumerate(order) if label[j]]
        hits += bool(ranks and ranks[0] < 3)
        reciprocal += 1.0 / (1 + ranks[0]) if ranks else 0.0
    return hits / len(logits), reciprocal / len(logits)


def train_answer_model(samples: list[Sample], *, embedder: str, source: dict[str, Any]) -> tuple[AnswerModel, dict]:
    """Fit ranking, answerability and quoting on `samples` (see the module docstring)."""
    answerable = [s for s in samples if s.item["spans"] and s.item["kind"] != "emergency" and len(s.hits)]
    groups, labels = [s.features for s in answerable], [s.labels for s in answerable]
    report: dict[str, Any] = {}
    best_c, best = None, (-1.0, -1.0)
    for c in C_GRID:
        quality = _ranking_quality(_out_of_fold(groups, labels, c, CANDIDATE_FEATURES), labels)
        report[f"rank C={c}"] = {"hit@3": round(quality[0], 4), "mrr": round(quality[1], 4)}
        if quality[::-1] > best[::-1]:
            best_c, best = c, quality
    rank = _fit(np.vstack(groups), np.concatenate(labels), best_c, CANDIDATE_FEATURES)
    report["rank"] = {"C": best_c, "hit@3": round(best[0], 4), "mrr": round(best[1], 4)}

    # Answerability, on rank scores each question did not help fit.
    judged = [s for s in samples if s.item["kind"] != "emergency" and len(s.hits)]
    oof = dict(zip(map(id, answerable), _out_of_fold(groups, labels, best_c, CANDIDATE_FEATURES)))
    english = english_words()
    rows, targets = [], []
    for s in judged:
        logits = oof.get(id(s))
        if logits is None:
            logits = rank.logits(s.features)
        order = np.lexsort((np.arange(len(logits)), -logits))
        passages = s.reader.vectors([s.hits[i].key for i in order[:RESIDUAL_PASSAGES]])
        rows.append(answerability_features(s.own, [s.hits[i] for i in order], logits[order], s.df, s.n, english,
                                           s.alignment(order), s.vector, passages))
        targets.append(bool(s.item["spans"]))
    rows_a, targets_a = np.array(rows), np.array(targets)
    documents = np.array([s.item["source"] for s in judged])
    best_c2, best_shrink, best_refused, threshold, chosen = None, 1.0, -1.0, 0.0, np.zeros(0)
    names = QUESTION_FEATURES + residual_names(rows_a.shape[1] - len(QUESTION_FEATURES))
    for c, shrink in itertools.product(ANSWERABLE_C_GRID, RESIDUAL_SHRINK):
        probs = np.concatenate(_out_of_fold([r[None, :] for r in rows_a], [np.array([t]) for t in targets_a], c, names,
                                            shrink=shrink, score=answerable_logits))
        # The cut lets through ANSWERED_TARGET of the answerable tuning questions, all documents pooled. Letting
        # through 95% of *each* document's (the cut of the hardest one) was tried with seven documents: leaving
        # each document out in turn, it answered 0.961 and refused 0.556 of the left-out one on average, the
        # pooled cut 0.956 and 0.621, with the same worst document (0.894 answered).
        cut = float(np.quantile(probs[targets_a], 1.0 - ANSWERED_TARGET))
        refused = float(np.mean(probs[~targets_a] < cut))
        report[f"answerable C={c} shrink={shrink}"] = {"refused at 95% answered": round(refused, 4)}
        if refused > best_refused:
            best_c2, best_shrink, best_refused, threshold, chosen = c, shrink, refused, cut, probs
    scope = _fit(rows_a, targets_a, best_c2, names, shrink=best_shrink)
    probability_cut = float(sigmoid(threshold))
    answer_probs = sigmoid(answerable_logits(scope, rows_a[targets_a]))
    emergency_cut = float(max(probability_cut, np.quantile(answer_probs, 0.5)))
    report["answerable"] = {"C": best_c2, "shrink": best_shrink, "threshold": round(probability_cut, 4), "refused (out of fold)": round(best_refused, 4),
                            "answered by document (out of fold)": {
                                d: round(float(np.mean(chosen[targets_a & (documents == d)] >= threshold)), 4)
                                for d in np.unique(documents[targets_a])}}

    relative, absolute, extend, quoting = _choose_quoting(answerable, [oof[id(s)] for s in answerable])
    report["quoting"] = quoting
    trained = {"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **source, "questions": len(samples),
               "cross_validation": report}
    return AnswerModel(embedder, rank, scope, probability_cut, emergency_cut, relative, absolute, trained, extend), report


#: The least precision (share of quotes on a labelled span, tuning parts, out-of-fold ranking) a quoting setting may
#: have; the target is 0.70. Lowered to 0.72 on thirteen documents it chose (relative 0.1, absolute 0.2): found
#: 0.884 -> 0.897 for precision 0.751 -> 0.721 out of fold, and on the test parts hit@3 +0.004 for precision -0.038
#: (a run with in-sample ranking, which chose alike) — not worth it.
QUOTING_PRECISION_FLOOR = 0.75


def _choose_quoting(samples: list[Sample], logits: list[np.ndarray]) -> tuple[float, float, float, dict]:
    """The (relative, absolute, extend) settings with the best balance of finding the answer and quoting only answers.

    Found: one of the first three quotes overlaps a labelled span; coverage: share of the labelled
    spans some quote overlaps; precision: share of quotes that overlap one. Found + coverage / 2 is
    maximised (then precision) subject to at most 1.8 quotes per answer (the target is 2.0) and a
    precision of at least `QUOTING_PRECISION_FLOOR` (the target is 0.70): the margins leave room for
    questions unlike the tuning ones.
    """
    best, chosen, table = -1.0, (0.6, 0.3, 1.0), {}
    ranked = []
    for s, scores in zip(samples, logits):
        order = np.lexsort((np.arange(len(scores)), -scores))
        ranked.append(list(zip([s.hits[i] for i in order], sigmoid(scores[order]).tolist())))
    grid = [(r, a, e) for r in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
            for a in (0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5) for e in (1.0, 0.6, 0.4, 0.25, 0.15, 0.1)]
    for relative, absolute, extend in grid:
        quotes = on = found = covered = spans = 0
        for s, candidates in zip(samples, ranked):
            passages = select_passages(candidates, s.reader, relative=relative, absolute=absolute, extend=extend,
                                       max_quotes=s.top_k)
            hits = [p.source == s.item["source"] and overlaps(p.start, p.end, s.item["spans"]) for p in passages]
            quotes += len(passages)
            on += sum(hits)
            found += any(hits[:3])
            spans += len(s.item["spans"])
            covered += sum(any(p.source == s.item["source"] and overlaps(p.start, p.end, [span]) for p in passages)
                           for span in s.item["spans"])
        precision, share, per = on / max(quotes, 1), found / len(samples), quotes / len(samples)
        recall = covered / max(spans, 1)
        table[(relative, absolute, extend)] = [round(share, 3), round(recall, 3), round(precision, 3), round(per, 2)]
        score = share + 0.5 * recall + 0.01 * precision if per <= 1.8 and precision >= QUOTING_PRECISION_FLOOR else -1.0
        if score > best:
            best, chosen = score, (relative, absolute, extend)
    return *chosen, {"relative": chosen[0], "absolute": chosen[1], "extend": chosen[2],
                     "found, span coverage, precision, quotes per answer": table[chosen]}


def train_safety_model(samples: list[Sample], *, embedder: str, source: dict[str, Any],
                       messages: Sequence[tuple[str, str, np.ndarray]] = ()):
    """Emergency and personal-advice classifiers over question embeddings (see `assistant.safety`).

    `messages` are further (question, kind, embedding) examples with no document behind them
    (`bank.load_messages`): emergencies, ordinary messages, personal and general questions.
    """
    from assistant.safety import NEIGHBOURS, SafetyModel, emergency_score, is_emergency, is_personal_advice

    vectors = np.array([s.vector for s in samples] + [m[2] for m in messages])
    unit = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)  # what the vote compares
    kinds = np.array([s.item["kind"] for s in samples] + [m[1] for m in messages])
    questions = [(s.item.get("turns") or [s.item.get("question")])[-1] for s in samples] + [m[0] for m in messages]
    first_person = np.array([speaks_of_oneself(q) for q in questions])
    report: dict[str, Any] = {}
    fitted = {}
    for kind, recall_target, pattern in (("emergency", 0.98, is_emergency), ("personal", 0.93, is_personal_advice)):
        target = kinds == kind
        matched = np.array([pattern(q) for q in questions])
        gate = first_person if kind == "personal" else np.ones(len(questions), dtype=bool)
        negatives = ~target & (kinds != "emergency") if kind == "personal" else ~target
        best = None
        votes = _neighbour_votes(unit, target, NEIGHBOURS) if kind == "emergency" else None
        for c in C_GRID:
            logits = np.concatenate(_out_of_fold([v[None, :] for v in vectors], [np.array([t]) for t in target], c,
                                                 tuple(map(str, range(vectors.shape[1]))), balanced=True,
                                                 standardize=False))
            probs = 1.0 / (1.0 + np.exp(-logits))
            if votes is not None:  # as SafetyModel.emergency scores
                probs = emergency_score(probs, votes)
            for cut in np.linspace(0.05, 0.95, 91):
                fire = matched | (gate & (probs >= cut))
                recall, false_alarms = fire[target].mean(), fire[negatives].mean()
                if recall >= recall_target and (best is None or false_alarms < best[0] - 1e-9):
                    best = (false_alarms, c, float(cut), float(recall))
        if best is None:
            best = (1.0, 1.0, 0.5, 0.0)
        false_alarms, c, cut, recall = best
        report[kind] = {"C": c, "threshold": round(cut, 3), "recall (out of fold)": round(recall, 4),
                        "false alarms (out of fold)": round(float(false_alarms), 4)}
        model = _fit(vectors, target, c, tuple(map(str, range(vectors.shape[1]))), balanced=True, standardize=False)
        fitted[kind] = (model.coef, model.intercept, cut)
    trained = {"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **source, "questions": len(samples),
               "cross_validation": report}
    e, p = fitted["emergency"], fitted["personal"]
    return SafetyModel(embedder, e[0], e[1], e[2], p[0], p[1], p[2], trained, unit, kinds == "emergency",
                       NEIGHBOURS), report


def _neighbour_votes(unit: np.ndarray, target: np.ndarray, k: int) -> np.ndarray:
    """Each unit vector's `neighbour_vote` among the vectors of the other folds."""
    from assistant.safety import neighbour_vote

    folds = _folds(len(unit))
    votes = np.zeros(len(unit))
    for fold in range(FOLDS):
        train = folds != fold
        for i in np.flatnonzero(~train):
            votes[i] = neighbour_vote(unit[train], target[train], unit[i], k)
    return votes


def bank_source(paths: Sequence[Path]) -> dict[str, Any]:
    """What a model records about the data it was fitted on."""
    return {"banks": {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}, "split": "tune"}
