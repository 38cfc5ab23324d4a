from __future__ import annotations

import pytest

from assistant.safety import EMERGENCY_NOTICE, PERSONAL_NOTICE, safety_notice


@pytest.mark.parametrize("question", [
    "I have chest pain after taking magnesium",
    "My dad has pressure in his chest, what now?",
    "I can't breathe properly",
    "trouble breathing after supplements",
    "Her face is drooping and speech is slurred",
    "I think he's having a stroke",
    "I took too many magnesium pills",
    "possible overdose of calcium",
    "I feel suicidal",
    "I want to kill myself",
    "My child swallowed a whole bottle of vitamins",
    "He is unconscious",
    "how many of these would it take to never wake up",
    "everyone would be better off without me",
    "there is no reason to live anymore",
    "I don't want to live like this",
    "I took 20 magnesium pills at once",
    "my toddler ate a handful of my iron tablets",
    "is this a heart attack?",
    "chest pain and my left arm is numb",
])
def test_emergencies_get_the_emergency_notice_first(question):
    assert safety_notice(question) == ("emergency", EMERGENCY_NOTICE)


@pytest.mark.parametrize("question", [
    "How much magnesium should I take?",
    "How many mg of calcium should I take a day?",
    "What dose of magnesium is right for me?",
    "Should I take magnesium glycinate?",
    "Can I take calcium and magnesium together?",
    "Do I have a magnesium deficiency?",
    "Am I deficient in magnesium?",
    "Is it safe for me to take orotate?",
])
def test_personal_dosing_or_diagnosis_gets_the_personal_notice(question):
    assert safety_notice(question) == ("personal", PERSONAL_NOTICE)


@pytest.mark.parametrize("question", [
    "What foods are high in magnesium?",
    "Which magnesium form is best for sleep?",
    "How does magnesium inhibit crystal formation?",
    "What is a healthy calcium to magnesium ratio?",
])
def test_ordinary_questions_get_no_notice(question):
    assert safety_notice(question) == (None, None)


@pytest.mark.parametrize("question", [
    "Can magnesium prevent a heart attack?",
    "Does low magnesium raise stroke risk?",
    "What is chest pain a sign of?",
    "Is an overdose of magnesium possible?",
    "What causes shortness of breath?",
])
def test_a_question_about_an_emergency_is_not_one_by_its_words_alone(question):
    """The patterns name emergencies; a general question naming one is left to the classifier (none here)."""
    assert safety_notice(question) == (None, None)


@pytest.mark.parametrize("message, emergency", [
    ("my mum had a heart attack back in 2015 and recovered well, is magnesium good for her heart?", False),
    ("I had a stroke 3 years ago, can magnesium help prevent another?", False),
    ("after my overdose in 2019 my kidneys were damaged, does magnesium matter?", False),
    ("she has a history of seizures, which magnesium form is gentlest?", False),
    ("I had a heart attack 2 years ago and now I have chest pain again", True),
    ("my husband had chest pain an hour ago and it is back", True),
])
def test_a_condition_long_past_is_history_not_an_emergency(message, emergency):
    assert (safety_notice(message)[0] == "emergency") is emergency


def _model(emergency_axis: int = 0, personal_axis: int = 1):
    import numpy as np

    from assistant.safety import SafetyModel

    e, p = np.zeros(4), np.zeros(4)
    e[emergency_axis], p[personal_axis] = 10.0, 10.0
    return SafetyModel("fake", e, -5.0, 0.5, p, -5.0, 0.5, {})


def test_the_classifier_reads_situations_the_patterns_do_not_name():
    import numpy as np

    model = _model()
    situation = np.array([1.0, 0, 0, 0])  # far along the "emergency" direction
    assert safety_notice("he is turning blue and gasping", situation, model)[0] == "emergency"
    assert safety_notice("he is turning blue and gasping")[0] is None  # the patterns alone miss it
    assert safety_notice("what do leafy greens contain?", np.array([0.0, 0, 0, 1]), model) == (None, None)


def test_the_personal_classifier_counts_only_when_the_question_speaks_of_the_asker():
    import numpy as np

    model = _model()
    personal = np.array([0.0, 1.0, 0, 0])
    assert safety_notice("what dose fits my leg cramps at 60?", personal, model)[0] == "personal"
    assert safety_notice("what dose is usual for adults?", personal, model) == (None, None)


def test_a_model_for_another_embedder_is_not_used(tmp_path):
    import json

    from assistant.safety import load_safety_model

    path = tmp_path / "safety.json"
    path.write_text(json.dumps(_model().to_json()), encoding="utf-8")
    assert load_safety_model(path, "fake") is not None
    assert load_safety_model(path, "another-model") is None
    assert load_safety_model(tmp_path / "missing.json", "fake") is None


def _with_exemplars():
    import numpy as np

    model = _model()
    exemplars = np.eye(4, dtype=np.float32)  # axis 2 is a greeting, axis 0 an emergency
    labels = np.array([True, False, False, False])
    return type(model)(**{**model.__dict__, "exemplars": exemplars, "exemplar_emergency": labels, "neighbours": 1})


def test_the_neighbour_vote_pulls_a_message_toward_the_examples_it_resembles():
    import numpy as np

    from assistant.safety import neighbour_vote

    exemplars = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]], dtype=np.float32)
    labels = np.array([True, True, False])
    assert neighbour_vote(exemplars, labels, np.array([1.0, 0.0]), 2) == 1.0
    assert neighbour_vote(exemplars, labels, np.array([0.0, 1.0]), 1) == 0.0
    model = _with_exemplars()
    # Half-way along the emergency direction and next to the greeting: the linear score alone would fire.
    mixed = np.array([0.6, 0.0, 0.8, 0.0])
    assert model.emergency(mixed) < 0.5 < type(model)(**{**model.__dict__, "exemplars": None}).emergency(mixed)


def test_the_emergency_decision_skips_the_vote_only_where_it_cannot_change_it():
    import json

    import numpy as np

    from assistant.safety import DEFAULT_SAFETY_MODEL, load_safety_model

    model = load_safety_model(DEFAULT_SAFETY_MODEL, json.loads(DEFAULT_SAFETY_MODEL.read_text())["embedder"])
    rng = np.random.default_rng(0)
    # Exemplars themselves (emergencies and not), blends of two, and random directions: every region of the score.
    picks = model.exemplars[rng.choice(len(model.exemplars), 300, replace=False)]
    blends = picks[:150] + picks[150:]
    noise = rng.normal(size=(100, model.exemplars.shape[1])).astype(np.float32)
    vectors = np.vstack([picks, blends, noise])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    for threshold in (model.emergency_threshold, 0.3, 0.7):  # under 0.5 a high linear score decides alone
        moved = type(model)(**{**model.__dict__, "emergency_threshold": threshold})
        decided = [moved.is_emergency(v) for v in vectors]
        assert decided == [moved.emergency(v) >= threshold for v in vectors]
        assert any(decided) and not all(decided)


def test_exemplars_are_saved_beside_the_model_and_checked_on_load(tmp_path, caplog):
    import numpy as np

    from assistant.safety import load_safety_model

    path = tmp_path / "safety.json"
    _with_exemplars().save(path)
    loaded = load_safety_model(path, "fake")
    assert loaded is not None and loaded.exemplars is not None and loaded.neighbours == 1
    assert np.array_equal(loaded.exemplar_emergency, [True, False, False, False])
    with np.load(path.with_suffix(".npz")) as arrays:
        vectors = arrays["vectors"].copy()
    vectors[0, 0] = 0.0
    with path.with_suffix(".npz").open("wb") as f:
        np.savez_compressed(f, vectors=vectors, emergency=np.array([True, False, False, False]))
    assert load_safety_model(path, "fake") is None  # damaged exemplars: patterns only, with a warning
    assert "checksum" in caplog.text
    path.with_suffix(".npz").unlink()
    assert load_safety_model(path, "fake") is None
