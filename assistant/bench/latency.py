"""Warm answer latency: `Assistant.ask` against one bare encode of the same question (target ≤ 1.15×)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from assistant.bench.timing import TimedEmbedder, interleaved, ratio, summarize


def latency_items(path: Path) -> list[tuple[str, list[str]]]:
    """(question, earlier turns) for every item of a question set; a conversation asks its last turn."""
    from assistant.evaluation.questions import load_questions

    items = []
    for item in load_questions(path):
        turns = item.get("turns") or [item["question"]]
        items.append((turns[-1], list(turns[:-1])))
    return items


def bench_latency(
    bot: Any, items: Sequence[tuple[str, Sequence[str]]], floor: Callable[[str], object], *, rounds: int = 3, warmup: int | None = None
) -> dict[str, Any]:
    """Warm `bot.ask` against `floor` (one bare encode of the same question), interleaved.

    The assistant's embedder (and its retriever's, the same object) is wrapped for the run, so
    the answer time also splits into the encoder's share and the rest (retrieval, BM25, fusion,
    quoting), which should be near zero. Warm means every cache warm: the first `warmup` items (all by
    default) are asked once, untimed, so that their passages' token vectors are encoded before timing.
    """
    if not items:
        raise ValueError("the question set is empty: pass a JSONL file with at least one question")
    inner = bot.embedder
    holders = [bot, *([bot.retriever] if getattr(bot.retriever, "embedder", None) is inner else [])]
    timed = TimedEmbedder(inner)
    for holder in holders:
        holder.embedder = timed
    answer, bare, inside, rest, encodes = [], [], [], [], []
    try:
        for question, history in list(items)[:warmup]:
            bot.ask(question, history=list(history))
            floor(question)
        for i, answer_first in interleaved(len(items), rounds):
            question, history = items[i]
            for run_answer in (answer_first, not answer_first):
                if run_answer:
                    encoder_before, calls_before = timed.seconds, timed.calls
                    started = time.perf_counter()
                    bot.ask(question, history=list(history))
                    elapsed = time.perf_counter() - started
                    answer.append(elapsed)
                    inside.append(timed.seconds - encoder_before)
                    rest.append(elapsed - inside[-1])
                    encodes.append(timed.calls - calls_before)
                else:
                    started = time.perf_counter()
                    floor(question)
                    bare.append(time.perf_counter() - started)
    finally:
        for holder in holders:
            holder.embedder = inner
    answer_s, bare_s = summarize(answer), summarize(bare)
    return {
        "questions": len(items),
        "rounds": rounds,
        "answer": answer_s,
        "bare_encode": bare_s,
        "encoder_in_answer": summarize(inside),
        "non_encoder": summarize(rest),
        "encodes_per_answer": round(float(np.mean(encodes)), 3),
        "ratio_p50": ratio(answer_s["p50_ms"], bare_s["p50_ms"]),
        "ratio_p95": ratio(answer_s["p95_ms"], bare_s["p95_ms"]),
        "target_ratio_p50": 1.15,
    }
