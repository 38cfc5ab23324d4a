"""Query rewriting: typos fixed against the corpus, abbreviations spelt out, English words left alone."""

from __future__ import annotations

from assistant.lexical import Vocabulary, build_vocabulary
from assistant.query import correct_word, rewrite

VOCAB = build_vocabulary([
    "Magnesium helps with constipation.", "Hydroxyapatite crystals form deposits.",
    "Vascular smooth muscle cells (VSMCs) can change.", "chronic kidney disease (CKD) matters.",
])


def test_misspelt_corpus_words_are_corrected():
    assert rewrite("how does magnesuim stop hydroxyappatite cristals", VOCAB).text == (
        "how does magnesium stop hydroxyapatite crystals")
    fixed = rewrite("constipaton relief", VOCAB)
    assert fixed.corrections == {"constipaton": "constipation"} and fixed.changed


def test_english_words_the_corpus_does_not_use_are_kept_they_signal_scope():
    for question in ("Does tofu contain magnesium?", "Can magnesium help migraines?", "What dose is usual?"):
        assert rewrite(question, VOCAB).text == question


def test_abbreviations_from_the_list_and_from_the_corpus_are_spelt_out():
    out = rewrite("Mg for VSMC and CKD, vit D", VOCAB)
    assert out.text == "Mg magnesium for VSMC Vascular smooth muscle cells and CKD chronic kidney disease, vit vitamin D"
    assert rewrite("mg per day", VOCAB).text == "mg per day"  # milligrams, not magnesium: only "Mg" is
    assert rewrite("Does IBD affect iron?", VOCAB).scope == "Does inflammatory bowel disease affect iron?"
    # everyday words get the clinical ones documents use, unless the corpus uses the everyday word itself
    assert rewrite("which magnesium makes you poop", VOCAB).text == "which magnesium makes you poop bowel stool"
    assert rewrite("sore tummy", Vocabulary({"tummy": 2})).text == "sore tummy"


def test_short_or_distant_words_are_not_forced_onto_the_corpus():
    assert correct_word("zzzzzzzz", VOCAB) is None
    assert correct_word("ab", VOCAB) is None
    assert correct_word("crystal", Vocabulary({"crystals": 1, "brystal": 5})) == "crystals"  # same first letter first


def test_words_of_the_health_lexicon_are_names_not_typos():
    vocab = Vocabulary({"starting": 4, "magnesium": 9, "interact": 1, "calendar": 1})
    for question in ("Does magnesium interact with statins?", "magnesium and alendronate"):
        assert rewrite(question, vocab).text == question  # "statins" is two edits from "starting"
    assert rewrite("magnesuim and statins", vocab).text == "magnesium and statins"
