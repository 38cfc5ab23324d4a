"""Follow-up questions: turn "How bioavailable is it?" into a question retrieval can answer.

No model rewrites the question (nothing may be invented); the earlier user turn is put in
front of the new one when the new one leans on it: it refers back with a pronoun ("it",
"they", "that one"), opens with a continuation ("and", "what about"), or is too short to
stand alone. `Assistant.ask` also falls back to the joined form when the question alone is
out of scope but reads as in scope with the turn before it ("Which organs improved?").
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Sequence

from assistant.features import content_words, has_content
from assistant.lexical import normalize

_REFERS_BACK = re.compile(
    r"\b(it|its|it's|they|them|their|theirs|this|these|those|one|ones|he|she|his|her|former|latter|same)\b",
    re.IGNORECASE,
)
# A question that opens with a preposition before its question word ("by how much?", "for how long?", "at what
# age?") continues the one before: on its own it asks about nothing.
_CONTINUES = re.compile(r"^\s*(and|also|but|or|so|then|what about|how about|what else|"
                        r"(by|for|in|at|from|to|until|since|with) (how|what|which|when|whom)\b)\b", re.I)
# "that" refers back when it is what the question is about ("was that…", "is that true"), not when it joins clauses.
_THAT = re.compile(r"(^\s*that\b|\b(is|was|does|did|do|are|were|why|how|about|of|in|from) that\b|\bthat (one|study|form|row|table|list|part|kind|type)\b)", re.I)


def user_turns(history: Iterable[Any] | None) -> list[str]:
    """The user's earlier questions, oldest first, from any common history shape.

    Accepted items: plain strings (user questions), `{"role": "user", "content": ...}` messages
    (Gradio's "messages" format, OpenAI style), and `(user, assistant)` pairs.
    """
    turns: list[str] = []
    for item in history or []:
        if isinstance(item, str):
            text = item
        elif isinstance(item, dict):
            if item.get("role") != "user":
                continue
            text = item.get("content")
            if isinstance(text, list):  # multimodal content parts
                text = " ".join(p.get("text", "") for p in text if isinstance(p, dict))
        elif isinstance(item, (list, tuple)) and item:
            text = item[0]
        else:
            continue
        if isinstance(text, str) and text.strip():
            turns.append(text.strip())
    return turns


def is_follow_up(question: str) -> bool:
    """Whether `question` refers back to an earlier turn rather than standing alone."""
    return bool(_REFERS_BACK.search(question) or _THAT.search(question) or _CONTINUES.match(question)
                or len(question.split()) <= 2)


def join_turns(previous: str, question: str) -> str:
    return f"{previous} {question}"


def contextualize(question: str, history: Sequence[Any] | None) -> tuple[str, str | None]:
    """(retrieval query, the earlier turn it leans on or None).

    Earlier follow-ups are resolved first, so a chain of follow-ups keeps its subject.
    """
    turns = user_turns(history)
    if not turns:
        return question, None
    previous = turns[0]
    for turn in turns[1:]:
        previous = join_turns(previous, turn) if is_follow_up(turn) else turn
    if is_follow_up(question):
        return join_turns(previous, question), previous
    return question, previous


# "What is this article about?", "summarize the document", "tl;dr", "what are the key points?": the document as a
# whole is the subject. Closing words ask for its conclusion, the rest for its opening.
_WHOLE = re.compile(r"\b(summar(y|ies|ise|ize|ised|ized)|overview|gist|tl;? ?dr|takeaways?|main (points?|ideas?|messages?)|"
                    r"key (points?|messages?|findings?)|bottom line|conclu(sion|sions|de|des|ded)|sum (it |this |that )?up|about)\b")
_CLOSING_ASK = re.compile(r"\b(summar\w*|tl;? ?dr|takeaways?|main|key|bottom line|conclu\w*)\b")
_THE_DOCUMENT = re.compile(r"\b(article|document|doc|page|text|post|paper|piece|pdf|author|writer|it|this)\b")
_ABOUT_ME = re.compile(r"\b(yourself|yourselves|who are you|what are you)\b")
_ASKING = re.compile(r"\b(pls|plz|please|quick|quickly|briefly|short|give|gimme|sum|up|overall|whole|so|ok|okay|main|key)\b")


def document_question(question: str, *, follows: bool = False) -> str | None:
    """"closing" or "opening" when `question` asks about the document as a whole and names nothing else, or None.

    After earlier turns, "what's it about?" is about the earlier subject: only a question naming the
    document ("the article") counts then.

    >>> document_question("What is this article about?"), document_question("tl;dr of the conclusion pls")
    ('opening', 'closing')
    >>> document_question("What is magnesium about?"), document_question("Summarize the plot of Hamlet")
    (None, None)
    >>> document_question("tell me about yourself")
    >>> document_question("what's it about?", follows=True), document_question("what's the article about?", follows=True)
    (None, 'opening')
    """
    text = normalize(question)
    if _ABOUT_ME.search(text):
        return None
    if not _WHOLE.search(text) or (follows and not re.search(r"\b(article|document|doc|page|post|paper|pdf)\b", text)):
        return None
    if has_content(_ASKING.sub(" ", _THE_DOCUMENT.sub(" ", _WHOLE.sub(" ", text)))):
        return None
    return "closing" if _CLOSING_ASK.search(text) else "opening"


# "What does ALA stand for?", "what is CKD short for", "what does VSMC mean?", "mmHg meaning": the letters asked
# about, answered by the sentence that defines them ("... alpha-linolenic acid (ALA).").
_SHORT_FORM = r"([A-Za-z][A-Za-z0-9-]{1,11})"
_ASKS_SHORT_FORM = [
    re.compile(r"\bwhat(?: does| do| is|'s|’s| s)? (?:the )?(?:abbreviation |acronym |letters |term )?" + _SHORT_FORM
               + r" (?:stand|stands|short) for\b", re.I),
    re.compile(r"\bwhat (?:does|do) " + _SHORT_FORM + r" mean\b"),
    re.compile(r"\b" + _SHORT_FORM + r" (?:stands for|meaning|abbreviation|acronym)\b"),
]


def short_form_asked(question: str) -> str | None:
    """The abbreviation `question` asks the long form of, or None.

    >>> short_form_asked("What does ALA stand for?"), short_form_asked("what does VSMC mean"), short_form_asked("CKD meaning")
    ('ALA', 'VSMC', 'CKD')
    >>> short_form_asked("what does mmHg stand for in a BP reading"), short_form_asked("what does it stand for?")
    ('mmHg', None)
    >>> short_form_asked("what does magnesium do?"), short_form_asked("What does calcification mean?")
    (None, None)
    """
    for n, pattern in enumerate(_ASKS_SHORT_FORM):
        match = pattern.search(question)
        # "stand for" says it is an abbreviation ("mmHg", "ala"); "mean" only of a word in capitals
        if match and match.group(1).lower() not in _NOT_SHORT and (n == 0 or sum(c.isupper() for c in match.group(1)) >= 2):
            return match.group(1)
    return None


_NOT_SHORT = frozenset({"it", "this", "that", "what"})


# "Where can I read more?", "any further reading?", "where do I learn more about calcification?": answered by the
# document's own pointer ("For more information on ..., see ...") when it has one.
_MORE_READING = re.compile(
    r"\b(further reading|read(ing)? (up )?more|learn more|find out more|more info(rmation)?|more details|nerd out( more)?|"
    r"dig deeper|go deeper|(any|what|which) (good )?(sources|references|resources)|reading list)\b")
POINTER = re.compile(r"\b(for more information|further reading|to learn more|read more|find out more|for more details|"
                     r"see also|useful resources)\b", re.I)


def more_reading_asked(question: str) -> str | None:
    """What is left of `question` besides asking where to read more ("" for nothing), or None when it does not ask.

    >>> more_reading_asked("any further reading suggested on this stuff?"), more_reading_asked("Where can I learn more about zinc?")
    ('', 'zinc')
    >>> more_reading_asked("How much should I read about magnesium?") is None
    True
    """
    text = normalize(question)
    if not _MORE_READING.search(text):
        return None
    rest = _ASKING.sub(" ", _THE_DOCUMENT.sub(" ", _MORE_READING.sub(" ", text)))
    return " ".join(w for w in content_words(rest) if w not in _READING_WORDS)


_READING_WORDS = frozenset("suggest suggested suggestions recommend recommended go read reading find look topic "
                           "subject any anywhere somewhere online books book".split())


# "Does the article mention vitamin D?", "is potassium discussed?": a question about what the document contains,
# searched and judged on its topic alone, so "does the article talk about zinc?" is refused as "zinc" would be.
_DOCUMENT = r"(the|this|that|your) (article|document|doc|text|page|post|paper|pdf|piece|source|guide|leaflet)"
_TOPIC_ASKED = [
    re.compile(r"^\W*(does|do|did|will|can) " + _DOCUMENT + r" (\w+ )?(mention|mentions|talk about|discuss|cover|"
               r"say anything about|say something about|say much about|touch on|bring up|refer to|include|list|name)"
               r" (?P<topic>.+?)[\W_]*$", re.I),
    re.compile(r"^\W*(is|are|was|were) (?P<topic>.+?) (ever |even |at all )?(mentioned|discussed|covered|talked about|"
               r"brought up|referred to|listed|named)( at all)?( (in|by) " + _DOCUMENT + r")?[\W_]*$", re.I),
]


def topic_asked(question: str) -> str | None:
    """The topic of a question asking whether the document speaks of it, or None.

    >>> topic_asked("Does the article mention vitamin D?"), topic_asked("is potassium mentioned at all?")
    ('vitamin D', 'potassium')
    >>> topic_asked("Does magnesium mention anything?") is None, topic_asked("Is magnesium good for sleep?") is None
    (True, True)
    """
    for pattern in _TOPIC_ASKED:
        match = pattern.match(question)
        if match and has_content(match.group("topic")):
            return match.group("topic")
    return None
