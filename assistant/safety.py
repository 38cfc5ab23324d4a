"""Medical-safety triggers: the one reviewed list of patterns and the fixed notices they add.

A question that describes an emergency gets `EMERGENCY_NOTICE` before anything else; one that
asks for a personal dose or diagnosis gets `PERSONAL_NOTICE`. Neither replaces the disclaimer,
and neither changes what is quoted. Patterns are matched on the normalised question
(lower-case, NFKC). Each pattern has a test in tests/test_safety.py; add new ones there too.
"""

from __future__ import annotations

import re

from assistant.lexical import normalize

EMERGENCY_NOTICE = (
    "If this may be an emergency, call your local emergency number (for example 911, 112 or 999) "
    "or go to the nearest emergency department now. If you are thinking about harming yourself, "
    "contact a crisis line or emergency services right away."
)

PERSONAL_NOTICE = (
    "The document gives general information only: it gives no personal dosing or diagnosis. "
    "Only a healthcare professional who knows your situation can advise you on that."
)

#: Descriptions of an emergency happening now.
EMERGENCY_PATTERNS: tuple[str, ...] = (
    r"\bchest (pain|pressure|tightness)\b",
    r"\b(pain|pressure|tightness) in (my|his|her|their|the|your) chest\b",
    r"\bheart attack\b",
    r"\b(can'?t|cannot|can not|trouble|difficulty|hard to|struggling to) breath(e|ing)?\b",
    r"\bshort(ness)? of breath\b",
    r"\b(stroke|face (is )?droop\w*|slurred speech|sudden (numbness|weakness|confusion))\b",
    r"\bover ?dos(e|ed|ing)\b",
    r"\b(took|taken|swallowed) (too many|too much|a whole (bottle|pack))\b",
    r"\b(poison(ed|ing)?)\b",
    r"\bsuicid\w*\b",
    r"\b(kill|hurt|harm) (myself|me)\b",
    r"\bself[- ]harm\w*\b",
    r"\b(end|take) my (own )?life\b",
    r"\bwant to die\b",
    r"\b(unconscious|passed out|not breathing|unresponsive|seizure|convulsi\w+)\b",
    r"\b(severe|heavy) bleeding\b",
    r"\b(anaphyla\w+|throat (is )?(swelling|closing))\b",
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
_PERSONAL = [re.compile(p) for p in PERSONAL_PATTERNS]


def is_emergency(question: str) -> bool:
    text = normalize(question)
    return any(p.search(text) for p in _EMERGENCY)


def is_personal_advice(question: str) -> bool:
    text = normalize(question)
    return any(p.search(text) for p in _PERSONAL)


def safety_notice(question: str) -> tuple[str | None, str | None]:
    """(kind, notice) for the first rule that applies: "emergency", then "personal"; else (None, None)."""
    if is_emergency(question):
        return "emergency", EMERGENCY_NOTICE
    if is_personal_advice(question):
        return "personal", PERSONAL_NOTICE
    return None, None
