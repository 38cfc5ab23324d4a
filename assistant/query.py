"""Rewrite a question for searching: misspelt words corrected, abbreviations spelt out. Never for quoting.

People type "wich magnesium is good for constipaton?" or "Mg and Ca: how does Mg control Ca?".
Before retrieval, each word the corpus does not use is looked at:

* an abbreviation — from a short list of common health ones ("Mg", "vit", "supps") or defined by
  the corpus itself ("chronic kidney disease (CKD)") — gets its long form added after it, and so does
  an everyday word for what documents name clinically ("poop", "tummy");
* a word that is neither in the corpus nor an English word (symspellpy's English frequency list,
  MIT) is taken for a typo and replaced by the nearest corpus word (rapidfuzz, Damerau–Levenshtein
  distance ≤ 1, or ≤ 2 for words of seven letters or more; same first letter preferred, then the
  more frequent word);
* an English word the corpus does not use ("tofu", "migraines"), or a word of the health lexicon
  ("statins", "alendronate"), is left as it is: it is what tells the scope decision that the question
  is about something the corpus does not cover.

Only the search query changes: what is quoted is always the document's own text.

Example:
    >>> from assistant.lexical import Vocabulary, health_words
    >>> vocab = Vocabulary({"magnesium": 9, "constipation": 2, "which": 3}, {"CKD": "chronic kidney disease"})
    >>> rewrite("wich magnesuim helps constipaton", vocab).text
    'which magnesium helps constipation'
    >>> rewrite("Mg and CKD", vocab).text
    'Mg magnesium and CKD chronic kidney disease'
    >>> rewrite("Mg and CKD", vocab).scope
    'magnesium and chronic kidney disease'
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from assistant.lexical import Vocabulary, health_words

#: Abbreviations people use in questions about health, matched case-sensitively first, then lower-cased.
ABBREVIATIONS: dict[str, str] = {
    "Mg": "magnesium", "Ca": "calcium", "Fe": "iron", "Zn": "zinc", "Na": "sodium", "Se": "selenium",
    "K1": "vitamin K1", "K2": "vitamin K2", "D2": "vitamin D2", "D3": "vitamin D3", "B12": "vitamin B12",
    "vit": "vitamin", "vits": "vitamins", "vitd": "vitamin D", "supp": "supplement", "supps": "supplements",
    "suppl": "supplement", "mag": "magnesium", "meds": "medicines", "med": "medicine", "bp": "blood pressure",
    "info": "information", "diff": "difference", "b4": "before", "bc": "because", "w/": "with", "u": "you",
    "ur": "your", "r": "are", "pls": "please", "abt": "about",
    # Common clinical abbreviations, spelt out both ways where British and American documents differ.
    "IV": "intravenous", "FBC": "full blood count", "CBC": "complete blood count", "GP": "general practitioner doctor",
    "ECG": "electrocardiogram", "EKG": "electrocardiogram", "BMI": "body mass index", "OTC": "over the counter",
    "RBC": "red blood cells", "WBC": "white blood cells", "Hb": "haemoglobin hemoglobin", "BP": "blood pressure",
    "HRT": "hormone replacement therapy", "UTI": "urinary tract infection", "IBS": "irritable bowel syndrome",
    "GI": "gastrointestinal", "NSAID": "anti-inflammatory", "PPI": "proton pump inhibitor",
    "IBD": "inflammatory bowel disease", "CKD": "chronic kidney disease", "CVD": "cardiovascular disease",
    "CHD": "coronary heart disease", "COPD": "chronic obstructive pulmonary disease", "T2D": "type 2 diabetes",
    "T1D": "type 1 diabetes", "GERD": "gastroesophageal reflux disease", "GORD": "gastro-oesophageal reflux disease",
    "MI": "myocardial infarction heart attack", "TIA": "transient ischaemic attack mini-stroke",
    "DVT": "deep vein thrombosis", "PCOS": "polycystic ovary syndrome", "OSA": "obstructive sleep apnoea apnea",
    "RLS": "restless legs syndrome", "CAC": "coronary artery calcium", "LDL": "LDL cholesterol",
    "HDL": "HDL cholesterol", "BMD": "bone mineral density", "PTH": "parathyroid hormone",
    "RDA": "recommended dietary allowance", "IU": "international units", "TSH": "thyroid stimulating hormone",
    "ER": "emergency room", "ICU": "intensive care unit",
    "CBT": "cognitive behavioural therapy", "HBP": "high blood pressure", "BG": "blood glucose sugar",
    # Everyday words for what documents name clinically.
    "poop": "bowel stool", "poo": "bowel stool", "pooping": "bowel stool", "pee": "urine", "peeing": "urine",
    "wee": "urine", "tummy": "stomach", "belly": "stomach abdomen", "puke": "vomit", "puking": "vomiting",
    "barf": "vomit", "boozing": "alcohol", "booze": "alcohol", "preggo": "pregnant", "preggers": "pregnant",
}

_WORD = re.compile(r"[A-Za-z][A-Za-z0-9']*|\d+[A-Za-z]+[A-Za-z0-9]*")


@dataclass(frozen=True)
class Rewritten:
    """The search query and what changed to make it."""

    text: str
    corrections: dict[str, str] = field(default_factory=dict)
    expansions: dict[str, str] = field(default_factory=dict)
    #: The same with each abbreviation replaced by its long form rather than followed by it: what scope is
    #: judged on, so that "FBC", spelt out as a term the corpus uses, is not taken for an unknown subject.
    scope: str = ""

    @property
    def changed(self) -> bool:
        return bool(self.corrections or self.expansions)


@lru_cache(maxsize=1)
def english_words() -> dict[str, int]:
    """English words with their counts (symspellpy's 82,765-word frequency list, MIT)."""
    import importlib.resources

    path = importlib.resources.files("symspellpy") / "frequency_dictionary_en_82_765.txt"
    tokens = path.read_text(encoding="utf-8").split()  # "word count" lines: one split is 5x faster than a loop
    words = dict(zip(tokens[0::2], map(int, tokens[1::2])))
    return words


def _singular(acronym: str) -> str:
    """"VSMCs" and "VSMC" alike: an acronym's plural s dropped."""
    return acronym[:-1] if len(acronym) > 2 and acronym.endswith("s") and acronym[:-1].isupper() else acronym


def _limit(word: str) -> int:
    return 2 if len(word) >= 7 else 1


def _health_word(lower: str) -> bool:
    """Whether `lower`, or its singular, is a word of the health lexicon: a name of medicine, not a typo."""
    known = health_words()
    return lower in known or (lower.endswith("s") and (lower[:-1] in known or (lower.endswith("es") and lower[:-2] in known)))


def correct_word(word: str, vocabulary: Vocabulary) -> str | None:
    """The corpus word `word` is most likely a misspelling of, or None."""
    from rapidfuzz import process
    from rapidfuzz.distance import DamerauLevenshtein

    lower = word.lower()
    if len(lower) < 4 or not lower.isalpha():
        return None
    found = process.extract(lower, vocabulary.words.keys(), scorer=DamerauLevenshtein.distance,
                            score_cutoff=_limit(lower), limit=10)
    if not found:
        return None
    best = min(found, key=lambda m: (m[0][0] != lower[0], m[1], -vocabulary.words[m[0]], m[0]))
    return best[0]


def rewrite(text: str, vocabulary: Vocabulary) -> Rewritten:
    """`text` with typos corrected and abbreviations expanded, for searching (see the module docstring)."""
    english = english_words()
    acronyms = {_singular(short): long for short, long in vocabulary.acronyms.items()}
    corrections: dict[str, str] = {}
    expansions: dict[str, str] = {}
    out: list[str] = []
    replaced: dict[int, str] = {}  # position in `out` -> the long form alone
    cursor = 0
    for match in _WORD.finditer(text):
        word = match.group(0)
        out.append(text[cursor : match.start()])
        cursor = match.end()
        lower = word.lower()
        long_form = acronyms.get(_singular(word))
        if long_form is None and lower not in vocabulary.words:
            long_form = ABBREVIATIONS.get(word) or ABBREVIATIONS.get(lower)
        if long_form is not None and long_form.lower() != lower:
            expansions[word] = long_form
            replaced[len(out)] = long_form
            out.append(f"{word} {long_form}")
            continue
        if lower in vocabulary.words or lower in english or "'" in lower or _health_word(lower):
            out.append(word)
            continue
        fixed = correct_word(word, vocabulary)
        if fixed is not None:
            corrections[word] = fixed
            out.append(fixed)
        else:
            out.append(word)
    out.append(text[cursor:])
    scope = "".join(replaced.get(i, part) for i, part in enumerate(out))
    return Rewritten("".join(out), corrections, expansions, scope)
