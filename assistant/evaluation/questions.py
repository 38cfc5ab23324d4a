"""Quality figures on a question set: hit@3, MRR, scope decisions, follow-ups, verbatim quotes.

A question set is JSON Lines, one object a line, in three shapes:

* `{"question": ..., "expect": "phrase"}` — covered; a good answer cites a passage containing
  `phrase` (case-insensitive) among its first three citations;
* `{"question": ..., "expect": null}` — not covered; a good answer is `grounded: false`;
* `{"turns": [q1, ..., qn], "expect": "phrase"}` — a conversation whose last turn is a follow-up.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from assistant.corpus import read_document
from assistant.models import Answer

#: Each figure's bar: `eval` fails when a figure is under it.
BARS: dict[str, float] = {
    "hit@3": 0.95,
    "mrr": 0.85,
    "in_scope_answered": 0.95,
    "out_of_scope_refused": 0.90,
    "follow_ups": 0.75,
    "quotes_verbatim": 1.0,
}


@dataclass
class Report:
    figures: dict[str, float]
    counts: dict[str, int]
    failures: list[dict[str, Any]] = field(default_factory=list)

    def below_bar(self) -> list[str]:
        return [name for name, bar in BARS.items() if self.figures.get(name, 0.0) < bar - 1e-9]


def load_questions(path: Path) -> list[dict[str, Any]]:
    items = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        item = json.loads(line)
        if "expect" not in item or ("question" not in item and "turns" not in item):
            raise ValueError(f"{path}:{number}: each line needs 'expect' and 'question' or 'turns', got {sorted(item)}")
        items.append(item)
    return items


def rank_of_phrase(answer: Answer, phrase: str, *, depth: int = 3) -> int | None:
    """1-based position of the first of the first `depth` citations whose quote contains `phrase`."""
    needle = phrase.lower()
    for citation in answer.citations[:depth]:
        if needle in citation.quote.lower():
            return citation.n
    return None


def quotes_are_verbatim(answer: Answer, corpus_dir: Path, cache: dict[str, str | None]) -> bool:
    """Every quote equals source_text[start:end] of its file, read afresh from disk."""
    for c in answer.citations:
        if c.source not in cache:
            doc = read_document(corpus_dir / c.source, corpus_dir, max_bytes=1 << 40)
            cache[c.source] = doc.text if doc else None
        text = cache[c.source]
        if text is None or text[c.start : c.end] != c.quote:
            return False
    return True


def evaluate(
    ask: Callable[[str, Sequence[str]], Answer],
    items: Sequence[dict[str, Any]],
    *,
    corpus_dir: Path,
) -> Report:
    """Run every item through `ask(question, history)` and compute the figures of `BARS`."""
    hits = reciprocal = answered = covered = refused = uncovered = follow_hits = follow_total = 0
    verbatim = quoted_answers = 0
    failures: list[dict[str, Any]] = []
    cache: dict[str, str | None] = {}
    for item in items:
        turns = item.get("turns") or [item["question"]]
        history: list[str] = []
        answer = None
        for turn in turns:
            answer = ask(turn, history)
            history.append(turn)
            if answer.citations:
                quoted_answers += 1
                verbatim += quotes_are_verbatim(answer, corpus_dir, cache)
        assert answer is not None
        expect = item["expect"]
        rank = rank_of_phrase(answer, expect) if expect else None
        if "turns" in item:
            follow_total += 1
            follow_hits += rank is not None
        elif expect is None:
            uncovered += 1
            refused += not answer.grounded
        else:
            covered += 1
            answered += answer.grounded
            hits += rank is not None
            reciprocal += 1.0 / rank if rank else 0.0
        ok = (not answer.grounded) if expect is None else rank is not None
        if not ok or (expect and rank != 1):
            failures.append(
                {"question": turns[-1], "expect": expect, "rank": rank, "grounded": answer.grounded,
                 "first": answer.citations[0].quote[:100] if answer.citations else None}
            )
    figures = {
        "hit@3": hits / covered if covered else 0.0,
        "mrr": reciprocal / covered if covered else 0.0,
        "in_scope_answered": answered / covered if covered else 0.0,
        "out_of_scope_refused": refused / uncovered if uncovered else 0.0,
        "follow_ups": follow_hits / follow_total if follow_total else 0.0,
        "quotes_verbatim": verbatim / quoted_answers if quoted_answers else 1.0,
    }
    counts = {"in_scope": covered, "out_of_scope": uncovered, "follow_ups": follow_total,
              "follow_ups_hit": follow_hits, "answers_with_quotes": quoted_answers}
    return Report(figures=figures, counts=counts, failures=failures)
