"""Questions about the text itself rather than its subject, answered from the document's own structure.

Some questions name nothing a passage's words or vector could match, yet the document answers them:

* "What is this article about?", "tl;dr", "what are the key points?" (`document_question`): its first
  paragraph, or, asked for a conclusion or summary, the first paragraph of a section headed as one;
* "Where can I read more?" (`more_reading_asked`): its own pointer ("For more information on …");
* "What does ALA stand for?" (`short_form_asked`): the sentence that defines it ("… (ALA)");
* "What is ectopic calcification?" (`term_asked`): the sentence that defines the term ("… a condition known as
  ectopic calcification", "Shingles, also called herpes zoster, is …"), when one does;
* "Does the article mention vitamin D?" (`topic_asked`): not answered here — `Assistant.inspect` searches and
  judges it as "vitamin D", covered when the documents use every word of it.

Each answer is a passage that is an exact span, like any other; when the document has no such part, the
question takes the usual path.
"""

from __future__ import annotations

import re
from typing import AbstractSet, Sequence

from assistant.answer import Passage, chunk_passage
from assistant.features import content_words, has_content
from assistant.lexical import normalize, tokenize
from assistant.query import english_words
from assistant.stores import ChunkStore


# "What is this article about?", "summarize the document", "tl;dr", "what are the key points?": the document as a
# whole is the subject. Closing words ask for its conclusion, the rest for its opening.
_WHOLE = re.compile(r"\b(summar(y|ies|ise|ize|ised|ized)|overview|gist|tl;? ?dr|takeaways?|main (points?|ideas?|messages?)|"
                    r"key (points?|messages?|findings?)|bottom line|conclu(sion|sions|de|des|ded)|sum (it |this |that )?up|about)\b")
_CLOSING_ASK = re.compile(r"\b(summar\w*|tl;? ?dr|takeaways?|main|key|bottom line|conclu\w*)\b")
#: Words that name a document ("what's the article about?" names it; "what's it about?" may mean the last subject).
_DOCUMENT_NOUNS = "article|document|doc|page|post|paper|pdf"
_NAMES_THE_DOCUMENT = re.compile(rf"\b({_DOCUMENT_NOUNS})\b")
_THE_DOCUMENT = re.compile(rf"\b({_DOCUMENT_NOUNS}|text|piece|author|writer|it|this)\b")
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
    if not _WHOLE.search(text) or (follows and not _NAMES_THE_DOCUMENT.search(text)):
        return None
    if has_content(_ASKING.sub(" ", _THE_DOCUMENT.sub(" ", _WHOLE.sub(" ", text)))):
        return None
    return "closing" if _CLOSING_ASK.search(text) else "opening"


_NOT_SHORT = frozenset({"it", "this", "that", "what"})

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


# "Where can I read more?", "any further reading?", "where do I learn more about calcification?": answered by the
# document's own pointer ("For more information on ..., see ...") when it has one.
_MORE_READING = re.compile(
    r"\b(further reading|read(ing)? (up )?more|learn more|find out more|more info(rmation)?|more details|nerd out( more)?|"
    r"dig deeper|go deeper|(any|what|which) (good )?(sources|references|resources)|reading list)\b")
_POINTER = re.compile(r"\b(for more information|further reading|to learn more|read more|find out more|for more details|"
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
_DOCUMENT = rf"(the|this|that|your) ({_DOCUMENT_NOUNS}|text|piece|source|guide|leaflet)"
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


# "What is tinnitus?", "what are hydroxyapatite crystals", "define remodelling", "what does hypokalaemia mean?": a
# question that is nothing but a term, answered by the sentence defining it when the documents have one.
_TERM = r"(?:an?\s+|the\s+)?(?P<term>[^\W\d_][\w'’ -]{1,60}?)"
_ASKS_TERM = [
    # Another name for it ("What is the medical name for hay fever?", "What is X also known as?"), read before
    # "what is X", which would take "X also known as" for the term.
    re.compile(r"^\W*(?:what|wat)(?:'s|’s|s| is| are)\s+(?:the\s+|an?\s+)?(?:medical|scientific|technical|proper|"
               r"official|formal|clinical|full|other|another)\s+(?:name|term|word)s?\s+(?:for|of)\s+" + _TERM + r"\W*$", re.I),
    re.compile(r"^\W*(?:what|wat)(?:'s|’s|s| is| are)\s+" + _TERM + r"\s+(?:also\s+)?(?:known as|called)\W*$", re.I),
    re.compile(r"^\W*what else (?:is|are)\s+" + _TERM + r"\s+called\W*$", re.I),
    re.compile(r"^\W*(?:so|and|ok|okay|um|lol|hey|sorry)?\W*(?:what|wat|wht)(?:'s|’s|s| is| are|"
               r"\s+(?:even|exactly|actually|really)\s+(?:is|are))\s+" + _TERM
               + r"(?:\s+(?:exactly|actually|again|anyway|then))?\W*$", re.I),
    re.compile(r"^\W*(?:define|definition of|meaning of)\s+" + _TERM + r"\W*$", re.I),
    re.compile(r"^\W*what (?:does|do)\s+" + _TERM + r"\s+mean\W*$", re.I),
    re.compile(r"^\W*" + _TERM + r"\s+(?:meaning|definition)\W*$", re.I),
]
#: Words that make the rest a question about something other than a term: "what is the best form", "what is it".
_NOT_A_TERM = frozenset("""it this that they them these those best difference role point deal link relationship cause
causes reason main most least first next last same other way ways one ones thing things something anything it's there
here""".split())


def term_asked(question: str) -> str | None:
    """The term a question asks the meaning of, or None.

    >>> term_asked("What is ectopic calcification?"), term_asked("wat is tinitus exactly"), term_asked("define remodelling")
    ('ectopic calcification', 'tinitus', 'remodelling')
    >>> term_asked("What is the best form of magnesium?"), term_asked("what is magnesium glycinate good for?")
    (None, None)
    >>> term_asked("What does uremic mean?"), term_asked("what is it?"), term_asked("What does the article say about diet?")
    ('uremic', None, None)
    >>> term_asked("lol what even is whitlockite"), term_asked("What exactly is remodelling?")
    ('whitlockite', 'remodelling')
    >>> term_asked("What is the medical name for hay fever?"), term_asked("What's a good name for a puppy?")
    ('hay fever', None)
    >>> term_asked("What is hay fever also known as?"), term_asked("what is hay fever called?")
    ('hay fever', 'hay fever')
    """
    for pattern in _ASKS_TERM:
        match = pattern.match(question.strip())
        if match:
            words = tokenize(match.group("term"))
            raw = match.group("term").lower().split()
            if words and len(raw) <= 5 and not set(raw) & _NOT_A_TERM and not _FOR_WHAT.search(match.group("term")):
                return match.group("term").strip()
    return None


_FOR_WHAT = re.compile(r"\b(good|used|best|for|of|and|or|in|on|with|to|from|about|than|vs|versus|like|do|does|mean)\s*$|"
                       r"\b(and|or|vs|versus|of|for|than)\b", re.I)


def _term_pattern(term: str) -> str:
    """A regular expression for `term` in running text: any spacing or hyphen between its words, any plural."""
    words = [re.escape(w.rstrip("s") if len(w) > 3 and w.lower().endswith("s") and not w.lower().endswith("ss") else w)
             for w in re.findall(r"[\w']+", term)]
    return r"\b" + r"[\s-]+".join(words) + r"(?:e?s)?\b"


#: A word seen this many times in symspellpy's English frequency list (doctor 40M, symptoms 20M; tinnitus 0.6M,
#: migraine 1.9M, asthma 7.8M) is everyday English: a sentence opening with it is not taken for its definition.
COMMON_WORD_COUNT = 10_000_000


def term_definition(store: ChunkStore, term: str, ranked: Sequence[str] = (),
                    sources: AbstractSet[str] | None = None) -> list[Passage] | None:
    """The sentence that defines `term`, or None; in the documents of `ranked` (the search's) first.

    In order: a sentence that names it "… known as / called / termed TERM"; the sentence of its first mention in
    a document, when that sentence opens with it ("Soluble fibre dissolves in water…", "Tinnitus means…", not
    a later "Soluble fibre is the type most closely linked…") — for a term of several words or a word not
    common in English ("Doctors usually start with…" defines nothing); one giving another name, "TERM, also
    called …" (not first: "high blood pressure, also called hypertension" does not define blood pressure); a
    sentence saying "TERM, which is …".
    """
    words = re.findall(r"[\w']+", term.lower())
    if not words:
        return None
    name = _term_pattern(term)
    named = re.compile(r"\b(?:known as|called|termed|referred to as|defined as)\s+(?:an?\s+|the\s+)?" + name, re.I)
    alias = re.compile(name + r"\s*[,(]\s*(?:also|sometimes|often)?\s*(?:known as|called|termed)\b", re.I)
    opens = re.compile(r"^\W*(?:the\s+)?" + name + r"(?!-)", re.I)
    which = re.compile(name + r"\s*,\s*(?:which|that)\s+(?:is|are)\b", re.I)
    view = store.view()
    records = view.records([key for key, _ in view.lexical(term, 200, sources)])
    order = {source: n for n, source in enumerate(ranked)}
    mentions = sorted((r.chunk for r in records.values() if r.chunk.kind == "sentence" and re.search(name, r.chunk.text, re.I)),
                      key=lambda c: (order.get(c.source, len(order)), c.source, c.start))
    specific = len(words) > 1 or english_words().get(words[0], 0) < COMMON_WORD_COUNT
    first = [c for n, c in enumerate(mentions) if specific and (n == 0 or mentions[n - 1].source != c.source)]
    for found in ([c for c in mentions if named.search(c.text)], [c for c in first if opens.search(c.text)],
                  [c for c in mentions if alias.search(c.text)], [c for c in mentions if which.search(c.text)]):
        if found:
            return [chunk_passage(found[0])]
    return None


# "What's the overall conclusion about magnesium and calcification?": the conclusion, on a subject.
_CONCLUSION_ASK = re.compile(r"\b(conclu(sion|sions|de|des|ded)|bottom line|summar(y|ise|ize)|tl;? ?dr|takeaways?|overall message)\b")


def conclusion_asked(question: str) -> str | None:
    """What a question asking for the document's conclusion asks it about ("" for nothing), or None.

    >>> conclusion_asked("What's the overall conclusion about magnesium and calcification?")
    'magnesium calcification'
    >>> conclusion_asked("What did the 2017 study conclude?"), conclusion_asked("What are the main sources?")
    ('2017 study', None)
    """
    text = normalize(question)
    if not _CONCLUSION_ASK.search(text):
        return None
    rest = _ASKING.sub(" ", _THE_DOCUMENT.sub(" ", _WHOLE.sub(" ", _CONCLUSION_ASK.sub(" ", text))))
    return " ".join(w for w in content_words(rest) if w not in _SUBJECT_WORDS)


_SUBJECT_WORDS = frozenset("whats what's did does do say says said overall general".split())


def conclusion_about(store: ChunkStore, source: str, about: str) -> list[Passage] | None:
    """The paragraph opening `source`'s concluding section, when it speaks of two thirds of the words of `about`
    or more ("What does the article conclude about managing calcification risk?" where it says "manage your
    body's calcification propensity"); else None."""
    sentences = [r.chunk for r in store.chunks_of(source) if r.chunk.kind == "sentence"]
    closing = next((c for c in sentences if _CLOSING_SECTION.search(c.section)), None)
    if closing is None:
        return None
    paragraph = " ".join(c.text for c in sentences if c.block == closing.block)
    asked, said = set(tokenize(about)), set(tokenize(f"{closing.section} {paragraph}"))
    if 3 * len(asked & said) < 2 * len(asked):
        return None
    return whole_document(store, source, "closing")


#: Section headings that close a document with its conclusion, and how many sentences of a paragraph a question
#: about the whole document is answered with.
_CLOSING_SECTION = re.compile(r"\b(conclusions?|summary|in (short|brief)|takeaways?|bottom line|key (points|messages))\b", re.I)
WHOLE_DOCUMENT_SENTENCES = 4


def answer_about_the_text(store: ChunkStore, question: str, ranked: Sequence[str], *, follows: bool = False,
                          sources: Sequence[str] | None = None, searched: str | None = None) -> list[Passage] | None:
    """Passages for a question about the text itself (`ranked`: the documents of the search's first hits, best
    first), or None for any other question, or when no document has a part that answers it.

    "What is it about?" is about the document the search put first; "where can I read more?" is answered by
    the first of them that points to further reading (in a folder of pages, the first may not). `searched` is the
    question as searched (typos fixed): a term asked about is looked for as asked, then as searched.
    """
    whole = document_question(question, follows=follows)
    if whole is not None:
        return whole_document(store, ranked[0], whole)
    about = conclusion_asked(question)
    if about:
        found = conclusion_about(store, ranked[0], about)
        if found is not None:
            return found
    rest = more_reading_asked(question)
    if rest is not None:
        return next((found for source in ranked if (found := pointer(store, source, rest)) is not None), None)
    among = frozenset(sources) if sources is not None else None
    short = short_form_asked(question)
    if short:
        return definition(store, short, among)
    for text in dict.fromkeys([question, searched or question]):
        term = term_asked(text)
        found = term_definition(store, term, ranked, among) if term else None
        if found is not None:
            return found
    return None


def whole_document(store: ChunkStore, source: str, part: str) -> list[Passage]:
    """The paragraph that answers a question about `source` as a whole: for "closing", the first of a section
    headed as a conclusion or summary, else (or without one) the document's first."""
    text = store.view().document_text(source)
    sentences = [r.chunk for r in store.chunks_of(source) if r.chunk.kind == "sentence"]
    if text is None or not sentences:
        return []
    block = sentences[0].block
    closing = next((c for c in sentences if _CLOSING_SECTION.search(c.section)), None) if part == "closing" else None
    if closing is not None:
        block = closing.block
    chosen = [c for c in sentences if c.block == block][:WHOLE_DOCUMENT_SENTENCES]
    start, end = chosen[0].start, chosen[-1].end
    return [Passage(source, chosen[0].section, start, end, text[start:end], 1.0, (start, end))]


def pointer(store: ChunkStore, source: str, rest: str) -> list[Passage] | None:
    """The sentence of `source` that points to further reading, when it speaks of every word of `rest` (what the
    question asks to read more about); else None."""
    for record in store.chunks_of(source):
        chunk = record.chunk
        if chunk.kind == "sentence" and _POINTER.search(chunk.text):
            if set(tokenize(rest)) <= set(tokenize(f"{chunk.section} {chunk.text}")):
                return [chunk_passage(chunk)]
            return None
    return None


def definition(store: ChunkStore, short: str, sources: AbstractSet[str] | None = None) -> list[Passage] | None:
    """The first chunk, in document order among the BM25 matches of `short`, that defines it as "long form
    (SHORT)", or None."""
    view = store.view()
    records = view.records([key for key, _ in view.lexical(short, 200, sources)])
    defines = re.compile(rf"\(\s*{re.escape(short)}s?\s*\)", re.I)
    found = sorted((r.chunk for r in records.values() if r.chunk.kind not in ("list", "table") and defines.search(r.chunk.text)),
                   key=lambda c: (c.source, c.start))
    return [chunk_passage(found[0])] if found else None
