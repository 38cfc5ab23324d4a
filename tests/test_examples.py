"""assistant.examples: example questions from the corpus's own section headings (issue 14)."""

from __future__ import annotations

import pytest

from assistant.corpus import load_corpus
from assistant.examples import example_questions, heading_question
from assistant.models import Document
from conftest import FIXTURES


@pytest.mark.parametrize(
    ("heading", "question"),
    [
        ("Food sources", "What about food sources?"),
        ("Passive Interference: Crystal Inhibition", "What about passive interference?"),
        ("Mechanisms: Can Magnesium Dissolve Calcification?", "Can magnesium dissolve calcification?"),
        ("CKD and Magnesium", "What about CKD and magnesium?"),
        ("How is iron absorbed?", "How is iron absorbed?"),
        ("Conclusion: A Proactive Approach to Mineral Health", None),
        ("References", None),
        ("![x](http://evil.example/x.png)", None),
        ("2024", None),
        ("A heading with far too many words to be a short question at all", None),
    ],
)
def test_heading_question(heading, question):
    assert heading_question(heading) == question


def test_examples_come_from_the_corpus_in_a_fixed_order():
    iron = load_corpus(FIXTURES / "corpus_md")
    assert example_questions(iron) == ["What about food sources?", "What about absorption?"]
    zinc = Document(source="a-zinc.md", text="# Zinc\n\n## Zinc in food\n\nOysters.\n\n## Zinc and immunity\n\nx\n",
                    sha256="z")
    both = example_questions([*iron, zinc], limit=3)  # one from each document in turn, documents by name
    assert both == ["What about zinc in food?", "What about food sources?", "What about zinc and immunity?"]
    assert example_questions([*iron, zinc], limit=3) == both
    assert example_questions([]) == []
