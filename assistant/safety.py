"""Medical-safety triggers: a reviewed list of patterns, a classifier that reads situations, and the notices.

A question that describes an emergency gets `EMERGENCY_NOTICE` before anything else; one that
asks for a personal dose or diagnosis gets `PERSONAL_NOTICE`. Neither replaces the disclaimer.

Two signals, either enough:

* the patterns below, matched on the normalised question (lower-case, NFKC): the words people
  use when they name the emergency ("chest pain", "overdose") — counted when the message speaks of a
  case, not in a general question about the condition — and descriptions that are emergencies in any
  form ("I took 20 pills"); each has a test in tests/test_safety.py;
* `SafetyModel`: classifiers over the question's sentence embedding — the vector the assistant
  computes anyway, so it costs no encoder pass — trained on the question bank's tuning part and
  on training-only messages (tests/bank/safety/), which describe emergencies in everyday words
  ("he is turning blue and gasping") beside greetings, off-topic requests and ordinary questions.
  The emergency score averages a logistic regression and a vote of the nearest training
  messages: a linear boundary alone extrapolates badly to text unlike any health question
  ("good morning!" scored as an emergency), while its nearest neighbours are greetings. The
  personal-advice classifier counts only when the question speaks of the asker or someone close
  ("I", "my", "me", "we"), since "what dose is usual?" is a general question.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from assistant.lexical import normalize
from assistant.scope import sigmoid

logger = logging.getLogger(__name__)

EMERGENCY_NOTICE = (
    "If this may be an emergency, call your local emergency number (for example 911, 112 or 999) "
    "or go to the nearest emergency department now. If you are thinking about harming yourself, "
    "contact a crisis line or emergency services right away."
)

PERSONAL_NOTICE = (
    "The document gives general information only: it gives no personal dosing or diagnosis. "
    "Only a healthcare professional who knows your situation can advise you on that."
)

#: Names of emergencies. A question only about one ("Can magnesium prevent a heart attack?", "What is chest pain
#: a sign of?") is not one happening now: these count when the message speaks of a case (`names_a_case`); the
#: classifier still reads every message.
CONDITION_PATTERNS: tuple[str, ...] = (
    r"\bchest (pain|pressure|tightness)\b",
    r"\b(pain|pressure|tightness) in (my|his|her|their|the|your) chest\b",
    r"\bheart attack\b",
    r"\b(can'?t|cannot|can not|trouble|difficulty|hard to|struggling to) breath(e|ing)?\b",
    r"\bshort(ness)? of breath\b",
    r"\b(stroke|face (is )?droop\w*|slurred speech|sudden (numbness|weakness|confusion))\b",
    r"\bover ?dos(e|ed|ing)\b",
    r"\b(poison(ed|ing)?)\b",
    r"\b(unconscious|passed out|not breathing|unresponsive|seizure|convulsi\w+)\b",
    r"\b(severe|heavy) bleeding\b",
    r"\b(anaphyla\w+|throat (is )?(swelling|closing))\b",
)

#: Descriptions of an emergency happening now, whatever the form of the message.
EMERGENCY_PATTERNS: tuple[str, ...] = (
    r"\b(took|taken|swallowed) (too many|too much|a whole (bottle|pack))\b",
    r"\b(took|taken|swallowed|ate|had) (all|\d{2,}|twenty|thirty|forty|fifty|a (whole |full )?(bottle|handful|pack|box|packet))"
    r"\b[^.?!]{0,40}\b(pills?|tablets?|capsules?|gummies|vitamins|supplements|of (my|his|her|the) \w+)\b",
    r"\bsuicid\w*\b",
    r"\b(kill|hurt|harm) (myself|me)\b",
    r"\bself[- ]harm\w*\b",
    r"\b(end|take) my (own )?life\b",
    r"\bwant to die\b",
    r"\b(never|not) (to )?wake up\b",
    r"\bbetter off without me\b",
    r"\b(no|any) (reason|point) (to live|in living|in being alive)\b",
    r"\bdon'?t want to (live|be alive)\b",
)

#: Requests for a dose, a diagnosis or advice about the asker's own case.
PERSONAL_PATTERNS: tuple[str, ...] = (
    r"\bhow (much|many)\b.*\b(should|can|do|must) (i|my \w+|we)\b.*\b(take|have|give|use|eat|consume)\b",
    r"\b(what|which) (dose|dosage|amount)\b.*\b(i|me|my)\b",
    r"\b(my|personal) (dose|dosage)\b",
    r"\bdosage for me\b",
    r"\bshould i (take|start|stop|use|be taking)\b",
    r"\b(can|may) i (take|use|combine|mix)\b",
    r"\bdo i have\b",
    r"\bam i (deficient|sick|ill|at risk|low)\b",
    r"\bi think i have\b",
    r"\b(diagnose|diagnosis)\b.*\b(me|my|i)\b",
    r"\bis (it|this) (safe|ok|okay) for me\b",
)

_EMERGENCY = [re.compile(p) for p in EMERGENCY_PATTERNS]
_CONDITION = [re.compile(p) for p in CONDITION_PATTERNS]
_PERSONAL = [re.compile(p) for p in PERSONAL_PATTERNS]
_GENERAL_QUESTION = re.compile(
    r"^\W*(what|what's|whats|which|why|how|when|where|who|can|could|does|do|did|is|are|was|were|should|would|will|"
    r"may|might|tell me|explain|define)\b")
# A message that names what it asks about rather than a situation: "potassium stroke risk", "fibre heart disease
# bowel cancer risk" are searches for a subject, however they are worded.
_A_SUBJECT = re.compile(r"\b(risks?|prevent\w*|protect\w*|links?|linked|associat\w+|evidence|stud(y|ies)|research|"
                        r"trials?|facts?|vs|versus|definition|meaning)\b")
_A_CASE = re.compile(
    r"\b(i|i'm|im|i've|ive|me|my|mine|myself|we|we're|our|us|he|he's|hes|she|she's|shes|him|his|her|they're|them|"
    r"someone|somebody|this|these|now|happening|currently|ambulance|911|999|112)\b")


def names_a_case(question: str) -> bool:
    """Whether a message speaks of someone's situation rather than asking about a subject in general.

    >>> names_a_case("Can magnesium prevent a heart attack?"), names_a_case("is this a heart attack?")
    (False, True)
    >>> names_a_case("chest pain and sweating"), names_a_case("What are the signs of a stroke in my dad?")
    (True, True)
    >>> names_a_case("potassium stroke risk"), names_a_case("my stroke risk is high and my face is drooping")
    (False, True)
    """
    text = normalize(question)
    return not (_GENERAL_QUESTION.search(text) or _A_SUBJECT.search(text)) or bool(_A_CASE.search(text))


# A condition named as something long past: "had a stroke 3 years ago", "a heart attack back in 2015",
# "a history of seizures". Hours, days and weeks are not long past.
_LONG_AGO_AFTER = re.compile(
    r"^[^.?!,;]{0,25}?\b(\w+ (years?|months?) ago|(a few|several|many) (years|months) ago|last (year|summer|winter|spring|"
    r"autumn|fall)|back in|in (19|20)\d\d|as a (child|kid|teen(ager)?))\b")
_LONG_AGO_BEFORE = re.compile(r"\b(history of|survived|recovered from|years after|since (his|her|my|their))( (a|an|my|his|her|the))?\s*$")


def _long_past(text: str, match: re.Match[str]) -> bool:
    return bool(_LONG_AGO_AFTER.search(text[match.end():match.end() + 60])
                or _LONG_AGO_BEFORE.search(text[max(0, match.start() - 30):match.start()]))


def is_emergency(question: str) -> bool:
    """The patterns' verdict: an emergency described in so many words, or an emergency named about a case.

    A condition named as long past ("my mum had a heart attack back in 2015") is history, not an emergency.

    >>> is_emergency("I had a stroke 3 years ago, can magnesium help?"), is_emergency("my dad is having a stroke")
    (False, True)
    """
    text = normalize(question)
    if any(p.search(text) for p in _EMERGENCY):
        return True
    named = [m for p in _CONDITION for m in p.finditer(text)]
    return any(not _long_past(text, m) for m in named) and names_a_case(question)


def is_personal_advice(question: str) -> bool:
    text = normalize(question)
    return any(p.search(text) for p in _PERSONAL)


_FIRST_PERSON = re.compile(r"\b(i|i'm|im|i've|ive|i'd|i'll|me|my|mine|myself|we|we're|our|ours|us)\b")


def speaks_of_oneself(question: str) -> bool:
    """Whether the question is about the asker or someone close to them ("I", "my", "we"…)."""
    return bool(_FIRST_PERSON.search(normalize(question)))


#: Training messages whose vote `SafetyModel.emergency` reads.
NEIGHBOURS = 7


@dataclass(frozen=True)
class SafetyModel:
    """Two linear classifiers over a question's embedding: an emergency now, and a request for personal advice."""

    embedder: str
    emergency_coef: np.ndarray
    emergency_intercept: float
    emergency_threshold: float
    personal_coef: np.ndarray
    personal_intercept: float
    personal_threshold: float
    trained: dict[str, Any]
    exemplars: np.ndarray | None = None  # unit vectors of training messages, one row each (float32)
    exemplar_emergency: np.ndarray | None = None  # whether each exemplar is an emergency
    neighbours: int = NEIGHBOURS

    def _emergency_linear(self, vector: np.ndarray) -> float:
        return float(sigmoid(vector @ self.emergency_coef + self.emergency_intercept))

    def emergency(self, vector: np.ndarray) -> float:
        linear = self._emergency_linear(vector)
        if self.exemplars is None or self.exemplar_emergency is None:
            return linear
        return emergency_score(linear, neighbour_vote(self.exemplars, self.exemplar_emergency, vector, self.neighbours))

    def is_emergency(self, vector: np.ndarray) -> bool:
        """`emergency(vector) >= emergency_threshold`, without the neighbour vote when it cannot change the outcome.

        The vote lies in [0, 1] and weighs half: a linear probability under 2 × threshold − 1 cannot reach the
        threshold, one at 2 × threshold or more reaches it anyway. Most questions are far below it, and the vote
        reads every exemplar (megabytes, out of cache after an encode).
        """
        if self.exemplars is None or self.exemplar_emergency is None:
            return self.emergency(vector) >= self.emergency_threshold
        linear = self._emergency_linear(vector)
        if emergency_score(linear, 1.0) < self.emergency_threshold:
            return False
        if emergency_score(linear, 0.0) >= self.emergency_threshold:
            return True
        vote = neighbour_vote(self.exemplars, self.exemplar_emergency, vector, self.neighbours)
        return emergency_score(linear, vote) >= self.emergency_threshold

    def personal(self, vector: np.ndarray) -> float:
        return float(sigmoid(vector @ self.personal_coef + self.personal_intercept))

    def to_json(self) -> dict[str, Any]:
        return {"embedder": self.embedder, "trained": self.trained,
                "emergency": {"coef": self.emergency_coef.tolist(), "intercept": self.emergency_intercept,
                              "threshold": self.emergency_threshold},
                "personal": {"coef": self.personal_coef.tolist(), "intercept": self.personal_intercept,
                             "threshold": self.personal_threshold}}

    @classmethod
    def from_json(cls, data: dict[str, Any], exemplars: tuple[np.ndarray, np.ndarray] | None = None) -> "SafetyModel":
        e, p = data["emergency"], data["personal"]
        vectors, labels = exemplars if exemplars is not None else (None, None)
        return cls(data["embedder"], np.asarray(e["coef"], float), float(e["intercept"]), float(e["threshold"]),
                   np.asarray(p["coef"], float), float(p["intercept"]), float(p["threshold"]), dict(data.get("trained", {})),
                   vectors, labels, int(e.get("neighbours", NEIGHBOURS)))

    def save(self, path: Path) -> None:
        """Write the model as JSON at `path` and its exemplars beside it (`.npz`), checksummed in the JSON."""
        data = self.to_json()
        if self.exemplars is not None and self.exemplar_emergency is not None:
            exemplar_path = path.with_suffix(".npz")
            buffer = io.BytesIO()
            np.savez_compressed(buffer, vectors=self.exemplars.astype(np.float16), emergency=self.exemplar_emergency)
            exemplar_path.write_bytes(buffer.getvalue())
            data["emergency"]["neighbours"] = self.neighbours
            data["emergency"]["exemplars"] = {"file": exemplar_path.name,
                                              "sha256": hashlib.sha256(buffer.getvalue()).hexdigest()}
        path.write_text(json.dumps(data, sort_keys=True, indent=1) + "\n", encoding="utf-8")


def emergency_score(linear: float | np.ndarray, vote: float | np.ndarray) -> float | np.ndarray:
    """`SafetyModel.emergency`: the logistic regression's probability and the neighbours' vote, weighed alike."""
    return 0.5 * linear + 0.5 * vote


def neighbour_vote(exemplars: np.ndarray, labels: np.ndarray, vector: np.ndarray, k: int) -> float:
    """Similarity-weighted share of emergencies among the `k` exemplars nearest to `vector` (cosine)."""
    similarities = exemplars @ vector
    k = min(k, len(similarities))
    nearest = np.argpartition(-similarities, k - 1)[:k]
    weights = np.clip(similarities[nearest], 1e-6, None)
    return float((weights * labels[nearest]).sum() / weights.sum())


def _read_exemplars(path: Path, data: dict[str, Any]) -> tuple[np.ndarray, np.ndarray] | None:
    """The exemplars the JSON at `path` names, checked against its checksum; None when it names none."""
    named = data.get("emergency", {}).get("exemplars")
    if not named:
        return None
    exemplar_path = path.parent / named["file"]
    raw = exemplar_path.read_bytes()
    if hashlib.sha256(raw).hexdigest() != named["sha256"]:
        raise ValueError(f"{exemplar_path.name} does not match the checksum in {path.name}")
    with np.load(io.BytesIO(raw)) as arrays:
        return arrays["vectors"].astype(np.float32), arrays["emergency"].astype(bool)


DEFAULT_SAFETY_MODEL = Path(__file__).resolve().parent / "data" / "safety_model.json"


def load_safety_model(path: Path | None, embedder: str) -> SafetyModel | None:
    """The safety classifiers at `path` (the packaged ones by default), or None (patterns only) when unusable."""
    path = path or DEFAULT_SAFETY_MODEL
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        model = SafetyModel.from_json(data, _read_exemplars(path, data))
    except FileNotFoundError as exc:
        logger.warning("no safety model at %s (%s): emergency and personal-advice notices rely on patterns only",
                       path, exc.filename)
        return None
    except (ValueError, KeyError, TypeError, OSError) as exc:
        logger.warning("the safety model %s cannot be read (%s): patterns only", path, exc)
        return None
    if model.embedder != embedder:
        logger.warning("the safety model %s was trained for %s, not %s: patterns only", path, model.embedder, embedder)
        return None
    return model


def safety_notice(
    question: str, vector: np.ndarray | None = None, model: SafetyModel | None = None
) -> tuple[str | None, str | None]:
    """(kind, notice) for the first rule that applies: "emergency", then "personal"; else (None, None).

    `vector` is the question's own embedding; without it (or a model) only the patterns apply.
    """
    learned = model is not None and vector is not None
    if is_emergency(question) or (learned and model.is_emergency(vector)):
        return "emergency", EMERGENCY_NOTICE
    if is_personal_advice(question) or (
        learned and speaks_of_oneself(question) and model.personal(vector) >= model.personal_threshold
    ):
        return "personal", PERSONAL_NOTICE
    return None, None
