"""BM25 and the text normaliser: hand-worked values, and bm25s itself as the oracle for the formula
the Milvus backend computes (`bm25_scores`)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings as hsettings, strategies as st

from assistant.lexical import LexicalIndex, bm25_scores, idf, named_terms, tokenize, top_positive, words


def test_tokenize_lowercases_stems_and_drops_stop_words():
    assert tokenize("The Bones and Vitamin K2!") == ["bone", "vitamin", "k2"]
    assert words("Magnesium's ROLE") == ["magnesium", "s", "role"]
    assert tokenize("") == [] and tokenize("the of and") == []


def test_idf_is_lucenes():
    assert idf(1, 3) == pytest.approx(math.log(1 + (3 - 1 + 0.5) / (1 + 0.5)))
    assert idf(0, 10) > idf(5, 10) > 0


def test_lexical_index_scores_a_hand_worked_example():
    # Two chunks: "magnesium nuts" (2 tokens) and "iron meat iron" (3 tokens); avgdl 2.5, k1 1.2, b 0.75.
    lex = LexicalIndex.build(["magnesium nuts", "iron meat iron"])
    tf, dl, avgdl = 2, 3, 2.5
    expected = idf(1, 2) * tf / (tf + 1.2 * (1 - 0.75 + 0.75 * dl / avgdl))
    scores = lex.scores("iron")
    assert scores[0] == 0 and scores[1] == pytest.approx(expected, rel=1e-5)
    assert lex.document_frequencies(["iron", "nut", "zinc"]) == {"iron": 1, "nut": 1, "zinc": 0}
    assert lex.count() == 2


def test_scores_survive_save_and_load(tmp_path):
    lex = LexicalIndex.build(["magnesium in nuts", "iron in meat", "zinc in oysters"])
    lex.save(str(tmp_path))
    assert np.array_equal(LexicalIndex.load(str(tmp_path)).scores("iron zinc"), lex.scores("iron zinc"))


_token = st.sampled_from(["alpha", "beta", "gamma", "delta", "epsilon", "zeta"])


@hsettings(max_examples=50, deadline=None)
@given(docs=st.lists(st.lists(_token, min_size=1, max_size=8), min_size=1, max_size=12),
       query=st.lists(_token, min_size=1, max_size=4))
def test_bm25_scores_equal_bm25s_for_any_corpus(docs, query):
    """The formula Milvus's store computes from stored tokens gives bm25s's numbers exactly."""
    import bm25s

    oracle = bm25s.BM25(k1=1.2, b=0.75, method="lucene")
    oracle.index(docs, show_progress=False)
    known = [t for t in query if t in oracle.vocab_dict]
    expected = oracle.get_scores(known) if known else np.zeros(len(docs))
    df = {t: sum(t in d for d in docs) for t in set(query)}
    avgdl = sum(len(d) for d in docs) / len(docs)
    assert np.allclose(bm25_scores(query, docs, df, len(docs), avgdl), expected, rtol=1e-5, atol=1e-6)


def test_top_positive_breaks_ties_by_position_and_drops_zeros():
    scores, order = top_positive(np.array([0.0, 2.0, 1.0, 2.0, 0.0]), 10)
    assert order.tolist() == [1, 3, 2] and scores.tolist() == [2.0, 2.0, 1.0]


def test_named_terms_skip_the_first_word():
    assert named_terms("Which study, Framingham or MESA, found CKD in 2017?") == ["framingham", "mesa", "ckd", "2017"]
