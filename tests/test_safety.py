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
