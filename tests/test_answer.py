from __future__ import annotations

from hypothesis import given, settings as hsettings, strategies as st

from assistant import Assistant
from assistant.answer import DISCLAIMER, NOT_COVERED, ScopePolicy, cite, compose_answer, select_quotes
from assistant.models import Chunk
from assistant.retrieval import Hit


def chunk(i: int, start: int, end: int, kind: str = "sentence", block: int = 0) -> Chunk:
    return Chunk(id=i, source="a.txt", section="S", kind=kind, start=start, end=end, text="x" * (end - start), block=block)


def test_disclaimer_names_a_healthcare_professional():
    assert "healthcare professional" in DISCLAIMER


def test_quotes_never_overlap_and_weak_hits_are_dropped():
    hits = [
        Hit(chunk(0, 0, 10), 1.0, 0.8, 1.0),
        Hit(chunk(1, 5, 20), 0.9, 0.79, 1.0),  # overlaps the first
        Hit(chunk(2, 30, 40), 0.8, 0.7, 1.0),
        Hit(chunk(3, 50, 60), 0.7, 0.1, 1.0),  # far below the best cosine
    ]
    chosen = select_quotes(hits, top_k=3, group=lambda chunk: None)
    assert [h.chunk.id for h in chosen] == [0, 2]


def test_rows_of_one_table_close_together_are_quoted_as_the_table():
    table = chunk(9, 0, 100, kind="table", block=4)
    rows = [Hit(chunk(i, i * 20, i * 20 + 10, kind="table_row", block=4), 1 - i / 10, 0.7 - i / 100, 1) for i in range(1, 4)]
    chosen = select_quotes(rows, top_k=3, group=lambda c: table if c.block == 4 else None)
    assert [h.chunk.id for h in chosen] == [9]
    spread = [Hit(chunk(i, i * 20, i * 20 + 10, kind="table_row", block=4), 1 - i / 10, 0.7 - i / 10, 1) for i in range(1, 4)]
    assert [h.chunk.id for h in select_quotes(spread, top_k=3, group=lambda c: table if c.block == 4 else None)][0] == 1


def test_compose_answer_marks_quotes_and_refuses_without_them():
    citations = cite([Hit(chunk(0, 0, 3), 0.5, 0.5, 0.0)])
    answer = compose_answer("q?", citations)
    assert answer.grounded and answer.answer == "xxx [1]" and answer.disclaimer == DISCLAIMER
    refusal = compose_answer("q?", [])
    assert not refusal.grounded and refusal.citations == [] and NOT_COVERED in refusal.answer
    personal = compose_answer("q?", citations, notice="N", lead_with_disclaimer=True)
    assert personal.answer.startswith(DISCLAIMER) and personal.notice == "N"


def test_scope_policy():
    policy = ScopePolicy(threshold=0.3, coverage_weight=0.5)
    assert policy.covers(0.6, 1.0) and not policy.covers(0.6, 0.2) and not policy.covers(0.2, 1.0)


def test_assistant_quotes_exact_spans(settings, fake_embedder):
    bot = Assistant.load(settings, embedder=fake_embedder)
    answer = bot.ask("Do black beans and lentils contain magnesium?")
    assert answer.grounded and answer.disclaimer == DISCLAIMER
    assert "lentils" in answer.citations[0].quote
    for c in answer.citations:
        text = (settings.corpus_dir / c.source).read_bytes().decode("utf-8")
        assert text[c.start : c.end] == c.quote
        assert f"[{c.n}]" in answer.answer
    assert not bot.ask("Who won the football world cup?").grounded


@hsettings(max_examples=60, deadline=None)
@given(question=st.text(min_size=1, max_size=200).filter(lambda s: s.strip()))
def test_any_question_gives_exact_quotes_or_a_clear_error(question, tmp_path_factory):
    from assistant.assistant import InvalidQuestion
    from assistant.settings import Settings
    from conftest import ARTICLE, FakeEmbedder

    global _BOT
    if "_BOT" not in globals():
        folder = tmp_path_factory.mktemp("hyp")
        (folder / "corpus").mkdir()
        (folder / "corpus" / ARTICLE.name).write_bytes(ARTICLE.read_bytes())
        _BOT = Assistant.load(Settings(corpus_dir=folder / "corpus", index_dir=folder / "index"), embedder=FakeEmbedder())
    source = ARTICLE.read_text(encoding="utf-8")
    try:
        answer = _BOT.ask(question)
    except InvalidQuestion as exc:
        assert str(exc) and exc.disclaimer == DISCLAIMER
        return
    assert answer.disclaimer == DISCLAIMER
    for c in answer.citations:
        assert source[c.start : c.end] == c.quote
