"""Question-to-passage word alignment: the answerability features that tell a passage about the question's
subject from one about its point, and the cache of passage token vectors behind them."""

from __future__ import annotations

import numpy as np
import pytest

from assistant.assistant import PassageTokens
from assistant.features import ALIGNMENT_FEATURES, alignment_features, content_pieces
from assistant.models import Chunk

AXES = {"spinach": 0, "magnesium": 1, "cooking": 2, "kale": 3, "green": 4, "##s": 5}


def pieces(*words: str) -> tuple[tuple[str, ...], np.ndarray]:
    """Word pieces with one-hot vectors: a piece matches only itself (or its axis)."""
    vectors = np.zeros((len(words), 8), dtype=np.float32)
    for i, word in enumerate(words):
        vectors[i, AXES.get(word, 7)] = 1.0
    return tuple(words), vectors


def test_content_pieces_skip_stop_words_punctuation_and_question_words_but_keep_word_parts():
    tokens = ("does", "cooking", "spinach", "reduce", "its", "magnesium", "?", "is", "##s")
    kept = [tokens[i] for i in content_pieces(tokens)]
    assert kept == ["cooking", "spinach", "reduce", "magnesium", "is", "##s"]  # "is" + "##s" is one word


def test_a_question_word_with_no_counterpart_pulls_the_alignment_down():
    question = pieces("does", "cooking", "spinach", "reduce", "magnesium")
    about_it = pieces("cooking", "spinach", "magnesium", "reduce")
    subject_only = pieces("spinach", "kale", "magnesium")
    full = alignment_features(question, [about_it])
    partial = alignment_features(question, [subject_only])
    names = dict(zip(ALIGNMENT_FEATURES, zip(full, partial)))
    assert names["align_min"] == (1.0, 0.0)
    assert names["align_weak"][0] == 0.0 and names["align_weak"][1] == pytest.approx(2 / 4)
    # over the first three passages the best one counts, whatever its rank
    assert alignment_features(question, [subject_only, about_it])[ALIGNMENT_FEATURES.index("align_best_min")] == 1.0


def test_nothing_to_compare_aligns_with_nothing():
    nothing = dict(zip(ALIGNMENT_FEATURES, [0.0, 1.0, 0.0, 0.0, 1.0]))
    for question, passages in ((None, [pieces("spinach")]), (pieces("spinach"), []), (pieces("what", "?"), [pieces("spinach")])):
        assert dict(zip(ALIGNMENT_FEATURES, alignment_features(question, passages))) == nothing


class CountingTokens:
    name, dimension = "counting", 8

    def __init__(self) -> None:
        self.texts: list[str] = []

    def encode_tokens(self, texts, *, batch_size: int = 64):
        self.texts += list(texts)
        return np.zeros((len(texts), 8), np.float32), [pieces(*t.lower().split()) for t in texts]


def chunk(i: int, text: str) -> Chunk:
    return Chunk(id=i, source="a.txt", section="", start=0, end=len(text), text=text, kind="sentence", block=0)


def test_passage_tokens_are_encoded_once_and_the_cache_stays_bounded():
    encoder = CountingTokens()
    cache = PassageTokens(encoder, size=2)
    first = cache.get([chunk(0, "Spinach kale"), chunk(1, "Magnesium")])
    assert first[0][0] == ("spinach", "kale") and len(encoder.texts) == 2
    cache.get([chunk(1, "Magnesium"), chunk(0, "Spinach kale")])
    assert len(encoder.texts) == 2  # both kept
    cache.get([chunk(2, "Cooking")])  # the least recently used ("Magnesium") goes
    cache.get([chunk(0, "Spinach kale")])
    assert len(encoder.texts) == 3
    cache.get([chunk(1, "Magnesium")])
    assert encoder.texts == ["Spinach kale", "Magnesium", "Cooking", "Magnesium"]


def test_the_chunk_holding_the_rarest_known_query_word_is_marked():
    """"is rhubarb bad for kidney stones": the one item naming rhubarb, not the many about kidney stones."""
    from assistant.features import CANDIDATE_FEATURES, candidate_features
    from assistant.retrieval import Hit

    hits = [Hit(chunk(0, "Kidney stones pass in the urine"), 0.5, 0.5, 2.0),
            Hit(chunk(1, "Rhubarb, in pies and jams"), 0.3, 0.3, 3.0),
            Hit(chunk(2, "Kidney stones and rhubarb"), 0.4, 0.4, 4.0)]
    df = {"rhubarb": 2, "kidney": 40, "stone": 40, "bad": 0}  # "bad": a word the corpus does not use
    rows = candidate_features(hits, ["rhubarb", "bad", "kidney", "stone"], df, 100)
    has_rarest = rows[:, CANDIDATE_FEATURES.index("has_rarest")]
    rare = rows[:, CANDIDATE_FEATURES.index("rare_match")]
    assert has_rarest.tolist() == [0.0, 1.0, 1.0]
    assert 0 < rare[0] < 1 and rare[1] == rare[2] == 1.0
