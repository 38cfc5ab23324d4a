"""Example questions for the chat, made from the section headings of the documents it answers from.

Examples must be about what the corpus holds, or the first thing a reader tries is refused. A
heading names what a section answers, so each sensible heading becomes a question: one that is
a question already stays one ("Mechanisms: Can Magnesium Dissolve Calcification?" gives "Can
magnesium dissolve calcification?"); any other gives "What about <heading>?", label part only
("Passive Interference: Crystal Inhibition" gives "What about passive interference?").
Document titles, boilerplate sections ("Conclusion", "References"…) and headings with markup,
digits only or too few or too many words are left out. Deterministic: documents in name order,
headings in document order, taken in turn from each document.

Example:
    >>> from assistant.models import Document
    >>> doc = Document(source="iron.md", text="# Iron\\n\\n## Food sources\\n\\nMeat.\\n\\n## Summary\\n", sha256="x")
    >>> example_questions([doc])
    ['What about food sources?']
"""

from __future__ import annotations

import re
from itertools import chain, zip_longest
from typing import Sequence

from assistant.chunking import layout_lines
from assistant.models import Document

#: Sections that every kind of document has and that no reader asks about by name.
BOILERPLATE = frozenset(
    "abstract acknowledgements acknowledgments appendix bibliography conclusion conclusions contents contact "
    "disclaimer further reading introduction notes overview references see also sources summary table of contents"
    .split()
)
#: Only this much of each document is read for headings: start-up stays bounded whatever the corpus.
SCAN_CHARS = 200_000
_PLAIN = re.compile(r"[A-Za-z][\w ,'’&/\-()]*\??")


def heading_question(heading: str, *, min_words: int = 1, max_words: int = 9) -> str | None:
    """The question a section heading suggests, or None when it suggests none worth showing."""
    label, _, rest = heading.strip().partition(":")
    rest = rest.strip()
    phrase = rest if rest.endswith("?") else label.strip()
    first_word = phrase.split(" ", 1)[0].lower().strip("?")
    if not _PLAIN.fullmatch(phrase) or first_word in BOILERPLATE or phrase.lower().rstrip("?") in BOILERPLATE:
        return None
    if not min_words <= len(phrase.split()) <= max_words:
        return None
    words = phrase.split()
    if sum(w[:1].isupper() for w in words) > len(words) / 2:  # Title Case: read as a sentence
        words = [words[0], *(_lower(w) for w in words[1:])]
    if phrase.endswith("?"):
        return " ".join(words)
    return f"What about {' '.join([_lower(words[0]), *words[1:]])}?"


def _lower(word: str) -> str:
    """`word` in lower case unless it is an acronym or a name with capitals inside ("CKD", "McArdle")."""
    return word if any(c.isupper() for c in word[1:]) else word.lower()


def document_questions(doc: Document) -> list[str]:
    """The questions of one document's headings, in order, its title left out when it has sections."""
    text = doc.text[:SCAN_CHARS]
    headings = [text[line.body_start : line.body_end] for line in layout_lines(text) if line.kind == "heading"]
    if len(headings) > 1:
        headings = headings[1:]  # the title: the whole document, too broad to quote an answer for
    questions = (heading_question(h) for h in headings)
    return list(dict.fromkeys(q for q in questions if q))


def example_questions(documents: Sequence[Document], *, limit: int = 4) -> list[str]:
    """Up to `limit` example questions, taken in turn from each document (by name), none twice."""
    per_document = [document_questions(doc) for doc in sorted(documents, key=lambda d: d.source)]
    taken = (q for q in chain.from_iterable(zip_longest(*per_document)) if q)
    return list(dict.fromkeys(taken))[:limit]
