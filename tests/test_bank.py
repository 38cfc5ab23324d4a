"""The question bank: its split is the seeded one made before tuning, its spans are exact, and the bank
figures are computed right (checked with hand-made answers)."""

from __future__ import annotations

import json
import random
from collections import defaultdict
from pathlib import Path

import pytest

from assistant.answer import DISCLAIMER
from assistant.evaluation.bank import evaluate_bank, load_bank
from assistant.models import Answer, Citation
from assistant.safety import EMERGENCY_NOTICE, PERSONAL_NOTICE
from conftest import ROOT

BANK = ROOT / "tests" / "bank"
FILES = sorted(BANK.glob("*.jsonl"))


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_the_split_is_the_seeded_shuffle_made_before_tuning(path):
    by_kind = defaultdict(list)
    for row in _rows(path):
        by_kind[row["kind"]].append(row)
    for kind, rows in by_kind.items():
        ids = sorted(r["id"] for r in rows)
        random.Random(f"20261202:{kind}").shuffle(ids)
        tune = set(ids[: round(len(ids) * 0.6)])
        assert {r["id"] for r in rows if r["split"] == "tune"} == tune, kind


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_every_span_is_a_whole_unit_of_its_document(path):
    for row in _rows(path):
        folder = ROOT / "corpus" if (ROOT / "corpus" / row["source"]).exists() else BANK / "documents"
        text = (folder / row["source"]).read_text(encoding="utf-8")
        for start, end in row["spans"]:
            span = text[start:end]
            assert span and span == span.strip(), (row["id"], span)
            assert start == 0 or text[start - 1] in " \n", (row["id"], span)


def _answer(question: str, quotes: list[tuple[int, int]] = (), notice: str | None = None) -> Answer:
    citations = [Citation(n=i + 1, quote="x" * (e - s), source="a.txt", section="", start=s, end=e, score=1.0)
                 for i, (s, e) in enumerate(quotes)]
    return Answer(question=question, answer="", grounded=bool(citations), citations=citations, disclaimer=DISCLAIMER,
                  notice=notice)


def test_figures_on_hand_made_answers(tmp_path):
    (tmp_path / "a.txt").write_text("x" * 100, encoding="utf-8")
    items = [
        {"id": "1", "kind": "in_scope", "question": "q1", "spans": [[0, 10]], "source": "a.txt", "split": "test"},
        {"id": "2", "kind": "in_scope", "question": "q2", "spans": [[20, 30]], "source": "a.txt", "split": "test"},
        {"id": "3", "kind": "near_topic", "question": "q3", "spans": [], "source": "a.txt", "split": "test"},
        {"id": "4", "kind": "emergency", "question": "q4", "spans": [], "source": "a.txt", "split": "test"},
        {"id": "5", "kind": "personal", "question": "q5", "spans": [], "source": "a.txt", "split": "test"},
        {"id": "6", "kind": "general_dose", "question": "q6", "spans": [], "source": "a.txt", "split": "test"},
    ]
    answers = {
        "q1": _answer("q1", [(0, 10), (50, 60)]),  # hit at 1, one of two quotes on target
        "q2": _answer("q2", [(40, 45), (25, 28)]),  # hit at 2
        "q3": _answer("q3"),  # refused
        "q4": _answer("q4", notice=EMERGENCY_NOTICE),
        "q5": _answer("q5"),  # no personal notice
        "q6": _answer("q6", notice=PERSONAL_NOTICE),  # a false alarm
    }
    report = evaluate_bank(lambda q, h: answers[q], items, corpus_dir=tmp_path)
    f = report.figures
    assert f["hit@3"] == 1.0 and f["mrr"] == pytest.approx((1 + 0.5) / 2) and f["answered"] == 1.0
    assert f["quote_precision"] == 0.5 and f["quotes_per_answer"] == 2.0 and f["refused"] == 1.0
    assert f["emergency_recall"] == 1.0 and f["emergency_false_alarms"] == 0.0
    assert f["personal_recall"] == 0.0 and f["personal_false_alarms"] == pytest.approx(1 / 4) and f["verbatim"] == 1.0


def test_load_bank_picks_one_split():
    items = load_bank(BANK / "calcium-and-magnesium.jsonl", split="test")
    assert items and all(i["split"] == "test" for i in items)
    assert len(load_bank(BANK / "calcium-and-magnesium.jsonl", split="all")) == 925


def test_safety_messages_are_training_only_examples_of_known_kinds(tmp_path):
    from assistant.evaluation.bank import MESSAGE_KINDS, load_messages

    messages = load_messages(BANK / "safety")
    assert len(messages) >= 700 and {m["kind"] for m in messages} == set(MESSAGE_KINDS)
    assert len({m["id"] for m in messages}) == len(messages)
    assert "split" not in messages[0]  # no test part: the bank's test parts judge the classifiers
    (tmp_path / "bad.jsonl").write_text('{"id": "x", "kind": "urgent", "question": "?"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match="bad.jsonl:1"):
        load_messages(tmp_path)
