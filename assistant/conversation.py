"""Follow-up questions: turn "How bioavailable is it?" into a question retrieval can answer.

No model rewrites the question (nothing may be invented); the earlier user turn is put in
front of the new one when the new one leans on it: it refers back with a pronoun ("it",
"they", "that one"), opens with a continuation ("and", "what about"), or is too short to
stand alone. `Assistant.ask` also falls back to the joined form when the question alone is
out of scope but reads as in scope with the turn before it ("Which organs improved?").

Greetings, thanks and "what can you do?" (`small_talk`) ask nothing of the documents: they get a fixed
reply saying what the assistant does, not a search that may quote "ideally in the morning" for "good morning".
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Sequence

from assistant.features import content_words

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


# One piece of a message that is only small talk: a greeting, thanks, a goodbye, an acknowledgement, or a question
# about the assistant itself. A message is small talk when every piece between punctuation is one of these.
_SMALL_TALK = re.compile(
    r"(hi|hello|hey|hiya|howdy|yo|greetings|good (morning|afternoon|evening|day|night)|"
    r"thanks?( you)?( (so|very) much)?|thank u|thx|ty|cheers|many thanks|much appreciated|"
    r"bye|goodbye|bye bye|see (you|ya)( later| soon)?|take care|"
    r"ok|okay|ok thanks|cool|great|nice|awesome|perfect|got it|sure|alright|all right|"
    r"that (helps|helped|was helpful|makes sense)|makes sense|"
    r"how are (you|u)( doing)?( today)?|what'?s up|sup|who are (you|u)|what are (you|u)|what can (you|u) do|"
    r"what do (you|u) do|how does this work|quick question|i have a question)"
    r"( there| all| everyone| folks| again| guys| mate| assistant| bot)?( again)?"
)


def small_talk(message: str) -> bool:
    """Whether `message` is only greetings, thanks, goodbyes or questions about the assistant.

    >>> small_talk("hi there, good morning!"), small_talk("Thanks so much :)"), small_talk("what can you do?")
    (True, True, True)
    >>> small_talk("hi, is magnesium safe?"), small_talk("good morning, my chest hurts"), small_talk("ok so why?")
    (False, False, False)
    """
    pieces = [p.strip() for p in re.split(r"[^\w\s']+", message.lower().replace("\u2019", "'"))]
    pieces = [p for p in pieces if p]
    return bool(pieces) and all(_SMALL_TALK.fullmatch(re.sub(r"\s+", " ", p)) for p in pieces)


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


# "what are the symptoms?", "how is it diagnosed?": a question naming nothing but an aspect of a subject asks
# about the subject of the turn before, not about every document's symptoms.
_ASPECTS = frozenset("""symptom symptoms sign signs cause causes caused treatment treatments treated treat cure cured
risk risks side effect effects dose doses dosage diagnosis diagnosed test tests tested prevention prevent prevented
outlook complication complications recovery prognosis benefit benefits""".split())


def asks_only_an_aspect(question: str) -> bool:
    """Whether every content word of `question` names an aspect (symptoms, causes, treatment…) of a subject it
    does not name.

    >>> asks_only_an_aspect("what are the symptoms?"), asks_only_an_aspect("What are the symptoms of low potassium?")
    (True, False)
    """
    named = content_words(question)
    return bool(named) and all(word in _ASPECTS for word in named)


# "New question - what's ectopic calcification?": the asker says the turn before is behind them.
_STARTS_ANEW = re.compile(r"^\W*(?:(?:ok|okay|also|and|so)\W+)?(?:(?:a|an|one|my)\s+)?(?:new|separate|different|unrelated|"
                          r"another|other|random|totally different|completely different)\s+(?:question|q|topic|subject|thing)\b|"
                          r"^\W*(?:changing|change of|to change)\s+(?:the\s+)?(?:subject|topic)\b|"
                          r"^\W*(?:on\s+)?(?:a\s+)?(?:different|another|unrelated|separate)\s+note\b", re.I)


def starts_anew(question: str) -> bool:
    """Whether `question` says it leaves the earlier turns behind ("New question - …", "Changing the subject, …").

    >>> starts_anew("Separate question - what's ectopic calcification?"), starts_anew("new q: is it safe?")
    (True, True)
    >>> starts_anew("Is there another question I should ask?"), starts_anew("What about a different form?")
    (False, False)
    """
    return bool(_STARTS_ANEW.search(question))


def is_follow_up(question: str) -> bool:
    """Whether `question` refers back to an earlier turn rather than standing alone."""
    if starts_anew(question):
        return False
    return bool(_REFERS_BACK.search(question) or _THAT.search(question) or _CONTINUES.match(question)
                or len(question.split()) <= 2 or asks_only_an_aspect(question))


def join_turns(previous: str, question: str) -> str:
    return f"{previous} {question}"


def contextualize(question: str, history: Sequence[Any] | None) -> tuple[str, str | None]:
    """(retrieval query, the earlier turn it leans on or None).

    Earlier follow-ups are resolved first, so a chain of follow-ups keeps its subject.
    """
    turns = user_turns(history)
    if not turns or starts_anew(question):
        return question, None
    previous = turns[0]
    for turn in turns[1:]:
        previous = join_turns(previous, turn) if is_follow_up(turn) else turn
    if is_follow_up(question):
        return join_turns(previous, question), previous
    return question, previous

