from __future__ import annotations

from hypothesis import given, settings as hsettings, strategies as st

from assistant import Assistant
from assistant.answer import DISCLAIMER, NOT_COVERED, cite, compose_answer, passages_of, select_passages, select_quotes
from assistant.models import Chunk
from assistant.retrieval import Hit
from assertions import assert_quotes_exact


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
    citations = cite(passages_of([Hit(chunk(0, 0, 3), 0.5, 0.5, 0.0)]))
    answer = compose_answer("q?", citations)
    assert answer.grounded and answer.answer == "xxx [1]" and answer.disclaimer == DISCLAIMER
    refusal = compose_answer("q?", [])
    assert not refusal.grounded and refusal.citations == [] and NOT_COVERED in refusal.answer
    personal = compose_answer("q?", citations, notice="N", lead_with_disclaimer=True)
    assert personal.answer.startswith(DISCLAIMER) and personal.notice == "N"


def test_assistant_quotes_exact_spans(settings, fake_embedder):
    bot = Assistant.load(settings, embedder=fake_embedder)
    answer = bot.ask("Do black beans and lentils contain magnesium?")
    assert answer.grounded and answer.disclaimer == DISCLAIMER
    assert "lentils" in answer.citations[0].quote
    assert_quotes_exact(answer, settings.corpus_dir)
    assert all(f"[{c.n}]" in answer.answer for c in answer.citations)
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
    try:
        answer = _BOT.ask(question)
    except InvalidQuestion as exc:
        assert str(exc) and exc.disclaimer == DISCLAIMER
        return
    assert_quotes_exact(answer, ARTICLE.parent)


class _Reader:
    """A reader of one document's chunks: what select_passages needs (texts and whole lists)."""

    def __init__(self, text: str, chunks: list[Chunk]) -> None:
        self.text, self.chunks = text, chunks

    def document_text(self, source):
        return self.text if source == "a.txt" else None

    def group(self, chunk):
        return next((c for c in self.chunks if c.block == chunk.block and c.kind in ("list", "table")), None)


DOC = "Intro one. Magnesium guards calcium. It keeps it in bone. Off topic here.\nFoods:\n- Nuts\n- Beans\n- Greens\n"


def _chunks() -> list[Chunk]:
    spans = [(0, 10, "sentence", 0), (11, 36, "sentence", 0), (37, 57, "sentence", 0), (58, 73, "sentence", 0),
             (74, 80, "sentence", 1)]
    out = [Chunk(id=i, source="a.txt", section="S", kind=k, start=s, end=e, text=DOC[s:e], block=b)
           for i, (s, e, k, b) in enumerate(spans)]
    items = [(DOC.index("Nuts"), DOC.index("Nuts") + 4), (DOC.index("Beans"), DOC.index("Beans") + 5),
             (DOC.index("Greens"), DOC.index("Greens") + 6)]
    whole = Chunk(id=5, source="a.txt", section="S", kind="list", start=items[0][0], end=items[-1][1],
                  text=DOC[items[0][0]:items[-1][1]], block=2)
    out.append(whole)
    out += [Chunk(id=6 + i, source="a.txt", section="S", kind="list_item", start=s, end=e, text=DOC[s:e], block=2)
            for i, (s, e) in enumerate(items)]
    return out


def _ranked(chunks, picks):
    return [(Hit(chunks[i], p, p, 0.0), p) for i, p in picks]


def test_adjacent_sentences_become_one_exact_passage_with_the_best_highlighted():
    chunks = _chunks()
    reader = _Reader(DOC, chunks)
    passages = select_passages(_ranked(chunks, [(2, 0.9), (1, 0.8)]), reader, relative=0.5, absolute=0.2, max_quotes=3)
    assert len(passages) == 1
    p = passages[0]
    assert (p.start, p.end) == (11, 57) and p.text == DOC[11:57] and p.highlight == (37, 57)
    citation = cite(passages)[0]
    assert citation.quote == DOC[citation.start : citation.end] and citation.highlight == [37, 57]


def test_weak_candidates_are_not_quoted():
    chunks = _chunks()
    passages = select_passages(_ranked(chunks, [(1, 0.9), (3, 0.3)]), _Reader(DOC, chunks), relative=0.5,
                               absolute=0.2, max_quotes=3)
    assert [p.text for p in passages] == ["Magnesium guards calcium."]


def test_a_sentence_that_points_back_is_quoted_with_the_one_it_points_at():
    chunks = _chunks()
    reader = _Reader(DOC, chunks)
    # "It keeps it in bone." scores far under the extension bar, yet continues "Magnesium guards calcium.", and the
    # other way round; "Off topic here." after it does not point back and stays out.
    forward = select_passages(_ranked(chunks, [(1, 0.9), (2, 0.02), (3, 0.02)]), reader, relative=0.5, absolute=0.2,
                              max_quotes=3, extend=0.5)
    backward = select_passages(_ranked(chunks, [(2, 0.9), (1, 0.02), (3, 0.02)]), reader, relative=0.5, absolute=0.2,
                               max_quotes=3, extend=0.5)
    assert [p.text for p in forward] == [p.text for p in backward] == ["Magnesium guards calcium. It keeps it in bone."]
    assert forward[0].highlight == (11, 36) and backward[0].highlight == (37, 57)


def test_a_lead_in_brings_its_list_and_three_items_become_the_list():
    chunks = _chunks()
    reader = _Reader(DOC, chunks)
    lead = select_passages(_ranked(chunks, [(4, 0.9)]), reader, relative=0.5, absolute=0.2, max_quotes=3)
    assert lead[0].text == "Foods:\n- Nuts\n- Beans\n- Greens"
    items = select_passages(_ranked(chunks, [(6, 0.9), (8, 0.85), (7, 0.8)]), reader, relative=0.5, absolute=0.2,
                            max_quotes=3)
    assert [p.text for p in items] == ["Nuts\n- Beans\n- Greens"]


def test_a_question_the_document_asks_brings_the_sentence_that_answers_it():
    def answer(text: str) -> list[str]:
        first = text.index("? " if "?" in text else ". ") + 1
        second = text.index(". ", first + 1) + 1
        spans = [(0, first), (first + 1, second), (second + 1, len(text))]
        chunks = [Chunk(id=i, source="a.txt", section="S", kind="sentence", start=s, end=e, text=text[s:e], block=0)
                  for i, (s, e) in enumerate(spans)]
        ranked = _ranked(chunks, [(0, 0.9), (1, 0.01), (2, 0.01)])  # the answer scores low: it shares no words
        return [p.text for p in select_passages(ranked, _Reader(text, chunks), relative=0.5, absolute=0.2, max_quotes=3)]

    assert answer("Can it dissolve deposits? Not quite, it slows them. Unrelated.") == [
        "Can it dissolve deposits? Not quite, it slows them."]
    assert answer("It dissolves deposits. Not quite, it slows them. Unrelated.") == ["It dissolves deposits."]


def test_a_sentence_and_the_list_its_paragraph_leads_into_are_one_passage():
    text = "Diet matters. Eat well first. Good sources:\n- Nuts\n- Beans\n\nOther text."
    spans = [(0, 13, "sentence", 0), (14, 29, "sentence", 0), (30, 43, "sentence", 0)]
    chunks = [Chunk(id=i, source="a.txt", section="S", kind=k, start=s, end=e, text=text[s:e], block=b)
              for i, (s, e, k, b) in enumerate(spans)]
    nuts, beans = text.index("Nuts"), text.index("Beans") + 5
    chunks.append(Chunk(id=3, source="a.txt", section="S", kind="list", start=nuts, end=beans, text=text[nuts:beans],
                        block=1))
    reader = _Reader(text, chunks)
    both = select_passages(_ranked(chunks, [(1, 0.9), (3, 0.8)]), reader, relative=0.5, absolute=0.2, max_quotes=3)
    assert [(p.text, p.highlight) for p in both] == [(text[14:beans], (14, 29))]
    # the sentence a lead-in continues brings it, and the list, though the lead-in itself scores low
    led = select_passages(_ranked(chunks, [(1, 0.9), (2, 0.01)]), reader, relative=0.5, absolute=0.2, max_quotes=3)
    assert [(p.text, p.highlight) for p in led] == [(text[14:beans], (14, 29))]
    # a sentence two sentences before the lead-in is another passage
    apart = select_passages(_ranked(chunks, [(0, 0.9), (3, 0.8)]), reader, relative=0.5, absolute=0.2, max_quotes=3)
    assert [p.text for p in apart] == ["Diet matters.", "Nuts\n- Beans"]


def test_a_question_about_the_whole_document_quotes_its_opening_or_its_conclusion(tmp_path, fake_embedder):
    from assistant.settings import Settings

    def bot_for(text: str, name: str) -> Assistant:
        folder = tmp_path / name
        folder.mkdir()
        (folder / "guide.md").write_text(text, encoding="utf-8")
        return Assistant.load(Settings(corpus_dir=folder, index_dir=tmp_path / f"{name}-index"), embedder=fake_embedder)

    body = "# Water\nAdults need about two litres a day. Food gives some.\n\n## Thirst\nThirst is a late sign of need.\n"
    bot = bot_for(body + "\n## In summary\nDrink regularly. Check the colour of urine.\n", "summary")
    opening = bot.ask("What is this article about?")
    assert [c.quote for c in opening.citations] == ["Adults need about two litres a day. Food gives some."]
    assert opening.disclaimer == DISCLAIMER
    assert [c.quote for c in bot.ask("tl;dr?").citations] == ["Drink regularly. Check the colour of urine."]
    assert [c.quote for c in bot_for(body, "plain").ask("tl;dr?").citations] == [
        "Adults need about two litres a day. Food gives some."]  # no conclusion: the opening
    # A conclusion asked about a subject its paragraph speaks of; not about one it does not.
    assert [c.quote for c in bot.ask("What's the bottom line on drinking and urine colour?").citations] == [
        "Drink regularly. Check the colour of urine."]
    assert "Drink regularly" not in " ".join(c.quote for c in bot.ask("What is the conclusion about thirst?").citations)
    # most of the subject's words are enough: "daily" is not in it
    assert [c.quote for c in bot.ask("What does it conclude about checking urine colour daily?").citations] == [
        "Drink regularly. Check the colour of urine."]


def test_what_an_abbreviation_stands_for_is_answered_by_the_sentence_defining_it(tmp_path, fake_embedder):
    from assistant.settings import Settings

    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "fats.md").write_text(
        "# Fats\nALA is found in flaxseed. Walnuts have ALA too.\n\n"
        "## Names\nThe plant form is alpha-linolenic acid (ALA). Fish give other forms.\n", encoding="utf-8")
    bot = Assistant.load(Settings(corpus_dir=folder, index_dir=tmp_path / "index"), embedder=fake_embedder)
    for question in ("What does ALA stand for?", "what is ala short for"):
        answer = bot.ask(question)
        assert [c.quote for c in answer.citations] == ["The plant form is alpha-linolenic acid (ALA)."]
        assert_quotes_exact(answer, folder)
    assert not any("(XYZ)" in c.quote for c in bot.ask("what does XYZ stand for?").citations)


def test_what_a_term_means_is_answered_by_the_sentence_defining_it(tmp_path, fake_embedder):
    from assistant.settings import Settings

    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "bones.md").write_text(
        "# Bones\nSoft bones bend. Low vitamin D leads to a condition known as rickets in children.\n\n"
        "Rickets is more common where sunlight is scarce. Bone is rebuilt in a process called remodelling.\n\n"
        "## Fibre\nSoluble fibre dissolves in water to form a gel. Soluble fibre is the type linked with blood fats.\n\n"
        "Doctors check fibre intake.\n\n## Joints\nSwollen toes can mean gout. Gout, also called gouty arthritis, hurts.\n\n"
        "## Pressure\nBlood pressure is the push of blood on artery walls. High blood pressure, also called "
        "hypertension, is common.\n",
        encoding="utf-8")
    bot = Assistant.load(Settings(corpus_dir=folder, index_dir=tmp_path / "index"), embedder=fake_embedder)
    expected = {
        "What is rickets?": "Low vitamin D leads to a condition known as rickets in children.",  # named, not "Rickets is…"
        "define remodelling": "Bone is rebuilt in a process called remodelling.",
        "what is soluble fibre exactly": "Soluble fibre dissolves in water to form a gel.",  # its first mention
        "What is the medical name for gout?": "Gout, also called gouty arthritis, hurts.",  # another name it goes by
        "What is blood pressure?": "Blood pressure is the push of blood on artery walls.",  # not "High blood pressure…"
    }
    for question, quote in expected.items():
        answer = bot.ask(question)
        assert answer.citations[0].quote == quote, question
        assert len(answer.citations) == 1
        assert_quotes_exact(answer, folder)
    from assistant.meta_questions import term_definition

    assert term_definition(bot.store, "doctors") is None  # an everyday word opening a sentence defines nothing


def test_where_to_read_more_is_answered_by_the_documents_own_pointer(tmp_path, fake_embedder):
    from assistant.settings import Settings

    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "water.md").write_text("# Water\nAdults need two litres a day. Thirst is a late sign.\n\n"
                                     "For more information on hydration, see your national health service.\n",
                                     encoding="utf-8")
    bot = Assistant.load(Settings(corpus_dir=folder, index_dir=tmp_path / "index"), embedder=fake_embedder)
    pointer = "For more information on hydration, see your national health service."
    for question in ("Where can I read more?", "any further reading on hydration?"):
        assert [c.quote for c in bot.ask(question).citations] == [pointer]
    assert pointer not in [c.quote for c in bot.ask("Where can I learn more about zinc?").citations]


def test_where_to_read_more_looks_past_a_document_with_no_pointer(tmp_path, fake_embedder):
    from assistant.settings import Settings

    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "a-water.md").write_text("# Water\nAdults need two litres a day. Read labels for more salt.\n",
                                       encoding="utf-8")
    (folder / "b-salt.md").write_text("# Salt\nMost salt comes from bread.\n\nFor more information, see a dietitian.\n",
                                      encoding="utf-8")
    bot = Assistant.load(Settings(corpus_dir=folder, index_dir=tmp_path / "index"), embedder=fake_embedder)
    answer = bot.ask("Where can I read more?")
    assert [(c.source, c.quote) for c in answer.citations] == [("b-salt.md", "For more information, see a dietitian.")]


def test_whether_the_document_mentions_something_is_judged_on_its_words(tmp_path, fake_embedder):
    from assistant.settings import Settings

    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "bones.md").write_text("# Bones\nVitamin D helps the gut absorb calcium. Walking keeps bones strong.\n",
                                     encoding="utf-8")
    bot = Assistant.load(Settings(corpus_dir=folder, index_dir=tmp_path / "index"), embedder=fake_embedder)
    mentioned = bot.ask("Does the article mention vitamin D?")
    assert mentioned.grounded and "Vitamin D" in mentioned.citations[0].quote
    for question in ("is potassium mentioned?", "Does the article discuss vitamin D and potassium?"):
        assert not bot.ask(question).grounded, question
