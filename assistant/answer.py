"""Extractive answers: choose quotes, number them, refuse when the corpus does not cover it.

Nothing here writes prose about the topic. An answer is the chosen quotes, each followed by
its marker `[n]`, the best one first; the only other words are the fixed strings of this
module (the refusal, the safety notices of `assistant.safety`) and `DISCLAIMER`, the one
disclaimer every answer, refusal and error carries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from assistant.models import Answer, Chunk, Citation
from assistant.retrieval import Hit

DISCLAIMER = (
    "This assistant only quotes its documents and does not give medical advice. "
    "Consult a healthcare professional about your own health."
)

NOT_COVERED = (
    "The document does not cover this question, so there is nothing to quote for it. "
    "Try asking about what the document discusses."
)


@dataclass(frozen=True)
class ScopePolicy:
    """When a question counts as covered: best cosine + weight·(coverage − 1) ≥ threshold,
    or the question names things (proper names, acronyms, "K2") that the corpus names too.

    `coverage` is the IDF-weighted share of the question's words the corpus uses at all
    (`LexicalIndex.coverage`), so a question about something the document never names
    ("sources of iron") needs a much closer passage than one whose words all occur. Names are
    the second route because a small embedding model knows little about rare names: "What did
    the Framingham study find?" is far from every passage in cosine, yet plainly about one.
    Calibrated on the development questions; see README "Quality".
    """

    threshold: float = 0.24
    coverage_weight: float = 0.35

    def score(self, best_dense: float, coverage: float) -> float:
        return best_dense + self.coverage_weight * (coverage - 1.0)

    def covers(self, best_dense: float, coverage: float, names_known: bool = False) -> bool:
        return names_known or self.score(best_dense, coverage) >= self.threshold


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


def cite(hits: Sequence[Hit]) -> list[Citation]:
    return [
        Citation(
            n=n,
            quote=hit.chunk.text,
            source=hit.chunk.source,
            section=hit.chunk.section,
            start=hit.chunk.start,
            end=hit.chunk.end,
            score=round(hit.score, 4),
        )
        for n, hit in enumerate(hits, start=1)
    ]


def compose_answer(question: str, citations: list[Citation], *, notice: str | None = None, lead_with_disclaimer: bool = False) -> Answer:
    """An `Answer` whose text is the notice (if any) and the quotes with their markers."""
    parts: list[str] = []
    if lead_with_disclaimer:
        parts.append(DISCLAIMER)
    if notice:
        parts.append(notice)
    if citations:
        parts.extend(f"{c.quote} [{c.n}]" for c in citations)
    else:
        parts.append(NOT_COVERED)
    return Answer(
        question=question,
        answer="\n\n".join(parts),
        grounded=bool(citations),
        citations=citations,
        disclaimer=DISCLAIMER,
        notice=notice,
    )
