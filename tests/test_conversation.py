from __future__ import annotations

import pytest

from assistant.conversation import contextualize, is_follow_up, user_turns


def test_history_shapes():
    assert user_turns(["a", " ", "b"]) == ["a", "b"]
    messages = [{"role": "user", "content": "q1"}, {"role": "assistant", "content": "a1"}, {"role": "user", "content": "q2"}]
    assert user_turns(messages) == ["q1", "q2"]
    assert user_turns([("q1", "a1"), ["q2", "a2"]]) == ["q1", "q2"]
    assert user_turns(None) == []


def test_follow_up_detection():
    assert is_follow_up("How bioavailable is it?")
    assert is_follow_up("What about nuts?")
    assert is_follow_up("And legumes?")
    assert not is_follow_up("Which magnesium form is best for sleep?")
    assert not is_follow_up("What forms of magnesium supplements are there?")


def test_a_question_word_after_a_preposition_continues_the_turn_before():
    assert is_follow_up("by how much?") and is_follow_up("For how long should you keep going?")
    assert is_follow_up("at what age?")
    assert not is_follow_up("How much magnesium is in spinach?")


def test_a_question_naming_only_an_aspect_asks_about_the_subject_before():
    assert is_follow_up("what are the symptoms?") and is_follow_up("Are there any side effects?")
    assert not is_follow_up("What are the symptoms of low potassium?")
    assert contextualize("what are the symptoms?", ["What causes low potassium?"]) == (
        "What causes low potassium? what are the symptoms?", "What causes low potassium?")


def test_a_question_that_says_it_is_new_leaves_the_earlier_turns_behind():
    earlier = ["Which magnesium is best for sleep?"]
    assert contextualize("Separate question - what's ectopic calcification?", earlier) == (
        "Separate question - what's ectopic calcification?", None)
    assert not is_follow_up("new question: which form is the most common one?")  # "one" would have joined it
    assert is_follow_up("which form is the most common one?")


def test_contextualize_joins_the_turn_it_leans_on():
    assert contextualize("Is it safe?", None) == ("Is it safe?", None)
    query, previous = contextualize("How bioavailable is it?", ["Which magnesium form is best for sleep?"])
    assert query == "Which magnesium form is best for sleep? How bioavailable is it?"
    assert previous == "Which magnesium form is best for sleep?"
    standalone, previous = contextualize("What is whitlockite?", ["What foods contain magnesium?"])
    assert standalone == "What is whitlockite?" and previous == "What foods contain magnesium?"
    chained, _ = contextualize("And its dose?", ["Which form helps sleep?", "Is it well absorbed?"])
    assert chained.startswith("Which form helps sleep? Is it well absorbed?")


@pytest.mark.parametrize("question, leans", [
    ("was that an experiment?", True),
    ("Is that true for humans too?", True),
    ("so why does it matter?", True),
    ("I read that magnesium helps sleep, is magnesium good for sleep?", False),
    ("Which foods contain magnesium?", False),
])
def test_that_refers_back_only_when_it_is_the_subject(question, leans):
    assert is_follow_up(question) is leans
