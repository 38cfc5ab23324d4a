"""The scope policy and the statistics it reads, on hand-worked numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from assistant.scope import ScopePolicy, coverage, names_known


class Frequencies:
    """A reader with only term statistics: 100 chunks, these document frequencies."""

    def __init__(self, df: dict[str, int]) -> None:
        self.df = df

    def count(self) -> int:
        return 100

    def document_frequencies(self, tokens):
        return {t: self.df.get(t, 0) for t in tokens}


def test_the_policy_adds_a_coverage_penalty_to_the_best_cosine():
    policy = ScopePolicy(threshold=0.3, coverage_weight=0.5)
    assert policy.score(0.6, 0.2) == pytest.approx(0.6 + 0.5 * (0.2 - 1.0))  # 0.2
    assert policy.covers(0.6, 1.0) and not policy.covers(0.6, 0.2) and not policy.covers(0.2, 1.0)
    assert policy.covers(0.0, 0.0, names_known=True)


def test_coverage_weighs_unknown_words_by_the_rarest_idf():
    reader = Frequencies({"magnesium": 5})
    # idf(5 of 100) = ln(1 + 95.5/5.5); an unknown word has df 0: ln(1 + 100.5/0.5)
    known, unknown = math.log(1 + 95.5 / 5.5), math.log(1 + 100.5 / 0.5)
    assert coverage(reader, "magnesium iron") == pytest.approx(known / (known + unknown))
    assert coverage(reader, "magnesium") == 1.0 and coverage(reader, "the of and") == 0.0


def test_names_are_known_only_when_the_corpus_uses_every_one():
    reader = Frequencies({"framingham": 1, "2017": 2})
    assert names_known(reader, "What did the Framingham study find in 2017?")
    assert not names_known(reader, "What did the Zorblax study find in 2017?")
    assert not names_known(reader, "what did the study find?")  # names nothing


def test_everyday_words_capitalised_name_nothing_when_english_is_given():
    # A corpus that mentions the World Health Organization and a cup of tea does not cover the World Cup.
    reader = Frequencies({"world": 1, "cup": 2, "framingham": 1})
    english = {"world": 431_934_249, "cup": 45_032_014, "warfarin": 515_790}
    assert names_known(reader, "Who won the last World Cup?")  # without the word list: both names are "known"
    assert not names_known(reader, "Who won the last World Cup?", english)  # no rare name left
    assert names_known(reader, "What did the Framingham study find?", english)  # not an English word: a name
    assert not names_known(reader, "Does Warfarin change the World Cup?", english)  # a rare name the corpus lacks


def test_the_packaged_models_match_the_features_the_code_computes():
    import json

    from assistant.embedding import model_label
    from assistant.features import CANDIDATE_FEATURES, QUESTION_FEATURES, residual_names
    from assistant.safety import DEFAULT_SAFETY_MODEL, load_safety_model
    from assistant.scope import DEFAULT_ANSWER_MODEL, load_answer_model
    from assistant.settings import BUNDLED_MODEL

    label = model_label(BUNDLED_MODEL)
    answer = load_answer_model(DEFAULT_ANSWER_MODEL, label)
    assert answer is not None, "the packaged answer model is missing, unreadable or for another embedder"
    assert answer.rank.features == CANDIDATE_FEATURES
    assert answer.answerable.features == QUESTION_FEATURES + residual_names(384)
    assert 0 < answer.threshold <= answer.emergency_threshold < 1
    assert "tune" == answer.trained["split"] and answer.trained["banks"]
    safety = load_safety_model(DEFAULT_SAFETY_MODEL, label)
    assert safety is not None and safety.emergency_coef.shape == (384,)
    assert json.loads(DEFAULT_ANSWER_MODEL.read_text(encoding="utf-8"))["embedder"] == label


def test_an_answer_model_for_another_embedder_falls_back_to_the_policy(tmp_path):
    from assistant.scope import DEFAULT_ANSWER_MODEL, load_answer_model

    assert load_answer_model(DEFAULT_ANSWER_MODEL, "another-model") is None
    (tmp_path / "broken.json").write_text("{", encoding="utf-8")
    assert load_answer_model(tmp_path / "broken.json", "x") is None


def test_the_residual_is_what_the_passages_leave_out_of_the_question():
    from assistant.features import residual_features

    rng = np.random.default_rng(7)
    passages = rng.normal(size=(3, 16))
    inside = passages.T @ np.array([0.5, -1.0, 2.0])
    assert np.allclose(residual_features(inside, passages), 0.0, atol=1e-9)
    outside = rng.normal(size=16)
    left = residual_features(outside, passages)
    assert np.allclose(passages @ left, 0.0, atol=1e-9)  # orthogonal to every passage
    assert 0 < np.linalg.norm(left) < 1  # of the unit question, what the passages do not account for
    assert np.allclose(residual_features(outside, passages[:0]), outside / np.linalg.norm(outside))


def test_the_residual_adds_at_most_its_cap_and_nothing_for_an_unknown_health_term():
    from assistant.scope import RESIDUAL_CAP, LinearModel, answerable_logits

    names = ("unknown_health_entity", "best_dense", "residual_0", "residual_1")
    model = LinearModel(names, np.zeros(4), np.ones(4), np.array([-1.0, 2.0, 3.0, 0.0]), 0.5)
    small, lowers = np.array([0.0, 0.2, 0.5, 9.0]), np.array([0.0, 0.2, -1.0, 9.0])
    assert answerable_logits(model, small)[0] == pytest.approx(model.logits(small)[0])  # +1.5, under the cap
    assert answerable_logits(model, lowers)[0] == pytest.approx(model.logits(lowers)[0])
    large = np.array([0.0, 0.2, 3.0, 9.0])  # the residual would add 9
    assert answerable_logits(model, large)[0] == pytest.approx(0.4 + RESIDUAL_CAP + 0.5)
    named = np.array([1.0, 0.2, 0.5, 9.0])  # naming a term the corpus never uses: the residual's +1.5 is dropped
    assert answerable_logits(model, named)[0] == pytest.approx(-1.0 + 0.4 + 0.5)
    assert answerable_logits(model, np.array([1.0, 0.2, -1.0, 0.0]))[0] == pytest.approx(-1.0 + 0.4 - 3.0 + 0.5)
