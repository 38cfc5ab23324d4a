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
