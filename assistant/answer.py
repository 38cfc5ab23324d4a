"""Extractive answers: choose quotes, number them, refuse when the corpus does not cover it.

Nothing here writes prose about the topic. An answer is the chosen quotes, each followed by
its marker `[n]`, the best one first; the only other words are the fixed strings of this
module (the refusal, the safety notices of `assistant.safety`) and `DISCLAIMER`, the one
disclaimer every answer, refusal and error carries.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Sequence

from assistant.chunking import refers_back
from assistant.models import Answer, Chunk, Citation
from assistant.retrieval import Hit
from assistant.stores.base import ChunkReader

DISCLAIMER = (
    "This assistant only quotes its documents and does not give medical advice. "
    "Consult a healthcare professional about your own health."
)

NOT_COVERED = (
    "The document does not cover this question, so there is nothing to quote for it. "
    "Try asking about what the document discusses."
)


SMALL_TALK_REPLY = (
    "Hello! I answer questions about the documents by quoting them word for word, with the place each quote "
    "comes from. Ask about something they discuss."
)


def _overlaps(a: Chunk, b: Chunk) -> bool:
    return a.source == b.source and a.start < b.end and b.start < a.end


def select_quotes(
    hits: Sequence[Hit],
    *,
    top_k: int,
    group: Callable[[Chunk], Chunk | None],
    group_size: int = 3,
    group_margin: float = 0.03,
    min_relative: float = 0.75,
) -> list[Hit]:
    """The hits to quote, best first, with no two quotes overlapping.

    When the best hits are `group_size` or more rows of one table (or items of one list) whose
    cosines lie within `group_margin` of each other, the question is about the group rather
    than one member ("What forms are there?"), and the whole table or list is quoted instead.
    Hits whose cosine falls below `min_relative` of the best one's are not quoted: a short
    answer beats one padded with loosely related sentences.
    """
    if not hits:
        return []
    floor = hits[0].dense * min_relative
    window = hits[: max(top_k * 2, group_size)]
    chosen: list[Hit] = []
    for hit in hits:
        if len(chosen) >= top_k:
            break
        if hit.dense < floor:
            continue
        chunk = hit.chunk
        if chunk.kind in ("list_item", "table_row"):
            siblings = [h for h in window if h.chunk.kind == chunk.kind and (h.chunk.source, h.chunk.block) == (chunk.source, chunk.block)]
            whole = None
            if len(siblings) >= group_size and siblings[0].dense - siblings[group_size - 1].dense <= group_margin:
                whole = group(chunk)  # the list or table, when it is short enough to be a chunk itself
            if whole is not None:
                hit = Hit(whole, hit.score, hit.dense, hit.lexical)
                chunk = whole
        if any(_overlaps(chunk, c.chunk) for c in chosen):
            continue
        chosen.append(hit)
    return chosen


@dataclass(frozen=True)
class Passage:
    """A contiguous span of one document to quote: one chunk, or adjacent chunks that answer together.

    `text == source_text[start:end]`; `highlight` is the span of its best chunk, inside it.
    """

    source: str
    section: str
    start: int
    end: int
    text: str
    score: float
    highlight: tuple[int, int]


def chunk_passage(chunk: Chunk, score: float = 1.0) -> Passage:
    """One chunk as a passage of its own."""
    return Passage(chunk.source, chunk.section, chunk.start, chunk.end, chunk.text, score, (chunk.start, chunk.end))


def passages_of(hits: Sequence[Hit]) -> list[Passage]:
    """Each hit as a passage of its own (the hand-set policy's quotes)."""
    return [chunk_passage(h.chunk, h.score) for h in hits]


_SENTENCE_ENDS = re.compile(r"[.!?](\s|$)")
_LIST_MARKER = re.compile(r"(\n\s*([-*+•]|\d{1,3}[.)]|\|))+$")


def _joinable(gap: str, kind: str) -> bool:
    """Whether two chunks with `gap` between them read as one passage: nothing between, or (sentences) one sentence."""
    if not gap.strip():
        return True
    return kind == "sentence" and len(gap) <= 400 and len(_SENTENCE_ENDS.findall(gap.strip())) <= 1


def select_passages(
    ranked: Sequence[tuple[Hit, float]],
    reader: ChunkReader,
    *,
    relative: float,
    absolute: float,
    max_quotes: int,
    extend: float = 1.0,
    group_size: int = 3,
) -> list[Passage]:
    """The passages to quote, best first, from candidates ranked with their probability of answering.

    The best candidate is always quoted; another only with at least `absolute` probability and
    `relative` × the best one's, so an answer is not padded with loosely related sentences.
    Then, within one document:

    * a lead-in sentence that ends with ":" brings the list or table it introduces, and a question the
      document asks ("So, can magnesium truly dissolve existing calcium deposits?") the sentence after it;
    * `group_size` or more items of one list (rows of one table) become the whole list (table);
    * a sentence next to a quoted one in the same paragraph joins it when its own probability is
      at least `extend` × the quoted one's (a sentence that opens a topic, "other nutrients play
      a role…", is quoted with the one that names them), or when one of the two opens by pointing
      back at the other ("Magnesium helps prevent this transdifferentiation…", "They form when…");
    * chunks of one paragraph, list or table that are adjacent — or, for sentences, one
      sentence apart — become one passage, so "Magnesium helps prevent this…" comes with the
      sentence it continues, in document order, still an exact span;
    * a sentence and the list or table its paragraph leads into (through nothing but a lead-in ending
      with ":") become one passage too.
    """
    if not ranked:
        return []
    best = ranked[0][1]
    kept = [(hit, p) for i, (hit, p) in enumerate(ranked) if i == 0 or (p >= absolute and p >= relative * best)]
    kept = kept[: max_quotes * 3]
    chosen = {id(h) for h, _ in kept}
    place = {(h.chunk.source, h.chunk.block, h.chunk.id): (h, p) for h, p in ranked}
    for hit, p in list(kept):
        if hit.chunk.kind != "sentence":
            continue
        asks = hit.chunk.text.rstrip().endswith("?")  # a question the document asks is answered by what follows
        for step in (-1, 1):
            near = place.get((hit.chunk.source, hit.chunk.block, hit.chunk.id + step))
            if near is None or id(near[0]) in chosen:
                continue
            # A sentence that points back ("Magnesium helps prevent this transdifferentiation…") is read with the one
            # it points at, whichever of the two was chosen.
            carried = refers_back(near[0].chunk.text if step == 1 else hit.chunk.text)
            # A lead-in ("Common examples include the following:") continues the sentence before it, and brings its list.
            carried = carried or (step == 1 and near[0].chunk.text.rstrip().endswith(":"))
            if near[1] >= extend * p or (asks and step == 1) or carried:
                kept.append(near)
                chosen.add(id(near[0]))
    pieces: list[tuple[Chunk, float, Chunk]] = []  # (span chunk, probability, the chunk that earned it)
    by_block: dict[tuple[str, int], list[tuple[Hit, float]]] = {}
    for hit, p in kept:
        by_block.setdefault((hit.chunk.source, hit.chunk.block), []).append((hit, p))
    for hit, p in kept:
        chunk = hit.chunk
        span = chunk
        text = reader.document_text(chunk.source)
        if chunk.kind == "sentence" and chunk.text.rstrip().endswith(":"):
            following = reader.group(chunk.model_copy(update={"block": chunk.block + 1}))
            if following is not None and following.section == chunk.section:
                span = _stretch(chunk, following, text)
        elif chunk.kind in ("list_item", "table_row"):
            siblings = [h for h, _ in by_block[(chunk.source, chunk.block)] if h.chunk.kind == chunk.kind]
            whole = reader.group(chunk) if len(siblings) >= group_size else None
            if whole is not None:
                span = whole
        pieces.append((span, p, chunk))
    return _merge(pieces, reader)[:max_quotes]


def _stretch(first: Chunk, last: Chunk, text: str | None) -> Chunk:
    """One chunk covering `first` through `last` (same document), its text cut from the document."""
    if text is None:
        return first
    return first.model_copy(update={"end": last.end, "text": text[first.start : last.end], "kind": last.kind})


def _introduces(sentence: Chunk, following: Chunk, gap: str) -> bool:
    """Whether `following` (a list or table, or its first member) is what `sentence`'s paragraph leads into.

    "A balanced diet … is the best first step. Here are some excellent dietary sources:" then the list:
    with the sentence and the list both quoted, they are one passage, lead-in included.
    """
    if sentence.kind != "sentence" or following.kind == "sentence" or following.block != sentence.block + 1:
        return False
    lead = _LIST_MARKER.sub("", gap.strip()).strip()
    return not lead or (lead.endswith(":") and len(lead) <= 400 and not _SENTENCE_ENDS.search(lead))


def _merge(pieces: list[tuple[Chunk, float, Chunk]], reader: ChunkReader) -> list[Passage]:
    ordered = sorted(pieces, key=lambda item: (item[0].source, item[0].start, -item[1]))
    groups: list[list[tuple[Chunk, float, Chunk]]] = []
    for piece in ordered:
        span = piece[0]
        if groups:
            last = groups[-1][-1][0]
            end = max(c.end for c, _, _ in groups[-1])
            text = reader.document_text(span.source)
            same_place = last.source == span.source and (last.block == span.block or span.start < end)
            if same_place and (span.start < end or (text is not None and _joinable(text[end : span.start], span.kind))):
                groups[-1].append(piece)
                continue
            if last.source == span.source and text is not None and _introduces(last, span, text[end : span.start]):
                groups[-1].append(piece)
                continue
        groups.append([piece])
    passages = []
    for group in groups:
        start = min(c.start for c, _, _ in group)
        end = max(c.end for c, _, _ in group)
        source = group[0][0].source
        text = reader.document_text(source)
        best = max(group, key=lambda item: item[1])
        quote = text[start:end] if text is not None else best[0].text
        if text is None:
            start, end = best[0].start, best[0].end
        passages.append(Passage(source, best[2].section, start, end, quote, best[1], (best[2].start, best[2].end)))
    return sorted(passages, key=lambda p: (-p.score, p.source, p.start))


def cite(passages: Sequence[Passage], reader: ChunkReader | None = None) -> list[Citation]:
    """Number the passages as citations; with `reader`, a PDF's are placed on their pages (page and boxes)."""
    return [
        Citation(
            n=n,
            quote=passage.text,
            source=passage.source,
            section=passage.section,
            start=passage.start,
            end=passage.end,
            score=round(passage.score, 4),
            highlight=list(passage.highlight) if passage.highlight != (passage.start, passage.end) else None,
            **_placed(passage, reader),
        )
        for n, passage in enumerate(passages, start=1)
    ]


def _placed(passage: Passage, reader: ChunkReader | None) -> dict:
    """`page` and `boxes` of a passage of a PDF (one box per line fragment, on every page it runs over)."""
    geometry = reader.geometry(passage.source) if reader is not None else None
    if geometry is None or passage.end > len(geometry):
        return {}
    boxes = geometry.boxes(passage.start, passage.end)
    return {"page": boxes[0][0] if boxes else geometry.page_of(passage.start), "boxes": boxes}


def compose_answer(question: str, citations: list[Citation], *, notice: str | None = None, lead_with_disclaimer: bool = False,
                   reply: str = NOT_COVERED) -> Answer:
    """An `Answer` whose text is the notice (if any) and the quotes with their markers, or `reply` without quotes."""
    parts: list[str] = []
    if lead_with_disclaimer:
        parts.append(DISCLAIMER)
    if notice:
        parts.append(notice)
    if citations:
        parts.extend(f"{c.quote} [{c.n}]" for c in citations)
    else:
        parts.append(reply)
    return Answer(
        question=question,
        answer="\n\n".join(parts),
        grounded=bool(citations),
        citations=citations,
        disclaimer=DISCLAIMER,
        notice=notice,
    )
