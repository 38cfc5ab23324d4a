"""The benchmark code runs and returns figures of the right shape; no timing is asserted."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES, FakeEmbedder

from assistant import Assistant, bench
from assistant.bench import cold, indexing, latency, report, scale, synthetic, timing
from assistant.cli import main

SUMMARY_KEYS = {"n", "p50_ms", "p95_ms", "mean_ms"}


def test_summarize_reports_milliseconds() -> None:
    summary = timing.summarize([0.001, 0.002, 0.003])
    assert set(summary) == SUMMARY_KEYS
    assert summary["n"] == 3 and summary["p50_ms"] == pytest.approx(2.0)
    assert timing.summarize([])["n"] == 0


def test_interleaved_alternates_which_runs_first() -> None:
    pairs = list(timing.interleaved(2, 2))
    assert [i for i, _ in pairs] == [0, 1, 0, 1]
    assert [first for _, first in pairs] == [True, False, False, True]


def test_latency_splits_answer_time_and_restores_the_embedder(settings) -> None:
    embedder = FakeEmbedder()
    bot = Assistant.load(settings, embedder=embedder)
    items = latency.latency_items(FIXTURES / "questions.jsonl")[:4]
    result = latency.bench_latency(bot, items, lambda q: embedder.encode([q]), rounds=2, warmup=1)
    assert result["answer"]["n"] == result["bare_encode"]["n"] == 8
    assert set(result["non_encoder"]) == SUMMARY_KEYS
    assert result["encodes_per_answer"] >= 1
    assert result["ratio_p50"] > 0
    assert bot.embedder is embedder and bot.retriever.embedder is embedder


def test_latency_items_ask_the_last_turn_with_its_history(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text('{"question": "a?", "expect": null}\n{"turns": ["b?", "c?"], "expect": "x"}\n', encoding="utf-8")
    assert latency.latency_items(path) == [("a?", []), ("c?", ["b?"])]


def test_time_processes_interleaves_and_reports_failures() -> None:
    quick = [sys.executable, "-c", "pass"]
    samples = cold.time_processes({"a": quick, "b": quick}, runs=2)
    assert {name: len(values) for name, values in samples.items()} == {"a": 2, "b": 2}
    with pytest.raises(RuntimeError, match="bad exited with status 3"):
        cold.time_processes({"bad": [sys.executable, "-c", "raise SystemExit(3)"]}, runs=1)


def test_cold_commands_run_the_cli_against_the_given_index(settings) -> None:
    commands = cold.cold_commands(settings, "What is magnesium?")
    assert commands["assistant"][1:4] == ["-m", "assistant", "ask"]
    assert str(settings.index_dir) in commands["assistant"]
    assert commands["bare_encode"][-1] == "What is magnesium?"


def test_indexing_compares_a_build_with_encoding_the_same_texts(settings) -> None:
    embedder = FakeEmbedder()
    encoded: list[int] = []
    result = indexing.bench_indexing(settings, embedder, lambda texts: encoded.append(len(texts)), rounds=1)
    assert result["chunks"] == len(indexing.chunk_texts(settings)) == encoded[-1]
    assert result["build_chunks_per_s"] > 0 and result["bare_chunks_per_s"] > 0
    assert (settings.index_dir / "manifest.json").exists()


def test_write_beir_corpus_writes_one_file_per_document(tmp_path: Path) -> None:
    from assistant.evaluation.beir_data import document_text, load_beir

    dataset = load_beir(FIXTURES / "beir_tiny")
    folder = indexing.write_beir_corpus(dataset, tmp_path / "docs", limit=2)
    files = sorted(folder.iterdir())
    assert [f.name for f in files] == ["d1.md", "d2.md"]
    assert files[0].read_text(encoding="utf-8") == document_text(dataset.titles[0], dataset.texts[0])


@pytest.mark.parametrize("distribution", synthetic.DISTRIBUTIONS)
def test_synthetic_vectors_are_unit_rows_and_deterministic(distribution: str) -> None:
    first = synthetic.SyntheticVectors(distribution, n=100, seed=3).corpus()
    again = synthetic.SyntheticVectors(distribution, n=100, seed=3).corpus()
    assert first.shape == (100, synthetic.DIMENSION) and first.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(first, again)
    with pytest.raises(ValueError, match="distribution must be one of"):
        synthetic.SyntheticVectors("gaussian", n=10)


def test_synthetic_texts_use_the_vocabulary() -> None:
    vocabulary = synthetic.word_distribution(["magnesium calcium magnesium bone", "vitamin bone"])
    texts = synthetic.synthetic_texts(20, *vocabulary, min_words=3, max_words=5)
    assert len(texts) == 20 and all(3 <= len(t.split()) <= 5 for t in texts)
    assert {w for t in texts for w in t.split()} <= set(vocabulary[0])
    assert len(synthetic.synthetic_queries(texts, 4, words_per_query=2)) == 4


def test_synthetic_files_load_back_from_a_committed_store(tmp_path: Path) -> None:
    """The stores check every chunk against its document's text on load: synthetic files must pass."""
    from assistant.settings import Settings
    from assistant.stores.faiss import FaissChunkStore

    vocabulary = synthetic.word_distribution(["magnesium calcium bone vitamin heart iron zinc"])
    corpus = synthetic.SyntheticCorpus.make(25, 2, vocabulary, file_chunks=10)
    settings = Settings(index_dir=tmp_path / "index")
    store = FaissChunkStore.create(settings, model="synthetic", dimension=synthetic.DIMENSION)
    for document, chunks, vectors in corpus.files():
        assert all(document.text[c.start : c.end] == c.text for c in chunks)
        store.add(document, chunks, vectors)
    store.commit()
    again = FaissChunkStore.open(settings, model="synthetic", dimension=synthetic.DIMENSION)
    assert again.count() == 25 and len(again.sources()) == 3
    assert [c.id for c in again.view().chunks] == list(range(25))  # chunk ids are rows, as recall needs


def test_scale_retrieval_searches_what_the_store_would_hold(tmp_path: Path) -> None:
    """The scale part's in-memory view gives the hits a committed FAISS store of the same files gives."""
    from assistant.lexical import LexicalIndex
    from assistant.retrieval import hybrid_search
    from assistant.settings import Settings
    from assistant.stores.faiss import FaissChunkStore, FaissView

    vocabulary = synthetic.word_distribution([(FIXTURES / "corpus_md" / "iron.md").read_text(encoding="utf-8")])
    corpus = synthetic.SyntheticCorpus.make(60, 5, vocabulary, file_chunks=20)
    chunks = [c for file in synthetic.synthetic_files(corpus.texts, file_chunks=20) for c in file]
    index, _ = scale.build_vectors("flat", corpus.vectors)
    view = FaissView(chunks, index, LexicalIndex.build([c.embedding_text() for c in chunks]))
    store = FaissChunkStore.create(Settings(index_dir=tmp_path / "index"), model="synthetic", dimension=synthetic.DIMENSION)
    for document, file_chunks, vectors in corpus.files():
        store.add(document, file_chunks, vectors)
    store.commit()
    for text, vector in zip(corpus.query_texts, corpus.query_vectors):
        ours = [(h.chunk.id, round(h.score, 5)) for h in hybrid_search(view, text, vector, 10, neighbour_weight=0.3)]
        theirs = [(h.chunk.id, round(h.score, 5)) for h in hybrid_search(store.view(), text, vector, 10, neighbour_weight=0.3)]
        assert ours == theirs


def test_measure_scale_reports_every_kind(tmp_path: Path) -> None:
    vocabulary = synthetic.word_distribution([(FIXTURES / "corpus_md" / "iron.md").read_text(encoding="utf-8")])
    case = scale.measure_scale(300, "topical", ["flat", "hnsw"], queries=5, vocabulary=vocabulary)
    assert case["n"] == 300 and set(case["kinds"]) == {"flat", "hnsw"}
    flat = case["kinds"]["flat"]
    assert flat["recall_at_k"] == 1.0  # exact search finds the exact neighbours
    assert set(flat["search"]) == set(flat["retrieval"]) == SUMMARY_KEYS
    assert 0.0 <= case["kinds"]["hnsw"]["retrieval_recall_at_k"] <= 1.0
    assert flat["file_mb"] > 0 and case["peak_rss_mb"] > 0


def test_report_renders_and_plots(tmp_path: Path) -> None:
    result = scale.bench_scale([200, 400], kinds=["flat"], queries=3, isolate=False)
    assert [c["auto_kind"] for c in result["cases"]] == ["flat", "flat"]
    text = report.render_markdown({"scale": result})
    assert "| topical | 400 | flat (auto) |" in text
    pytest.importorskip("matplotlib")
    assert report.plot_scale(result, tmp_path / "plot.png").stat().st_size > 0


def test_kinds_take_hnsw_parameters() -> None:
    assert scale.parse_kind("hnsw:m=16:efc=40:ef=256") == ("hnsw", {"m": 16, "efc": 40, "ef": 256})
    for bad in ("flat:m=16", "hnsw:m=0", "hnsw:x=3", "hnsw:m=8,ef=3", "ivf"):
        with pytest.raises(ValueError):
            scale.parse_kind(bad)
    vectors = synthetic.SyntheticVectors("random", n=200).corpus()
    index, _ = scale.build_vectors("hnsw:m=8:efc=16:ef=32", vectors)
    assert index.kind == "hnsw" and index.count() == 200 and index.search(vectors[:1], 1)[1][0][0] == 0


def test_options_reject_unknown_parts() -> None:
    with pytest.raises(ValueError, match="unknown part"):
        bench.BenchOptions(parts=["speed"])
    with pytest.raises(ValueError, match="unknown index kind"):
        bench.BenchOptions(kinds=["annoy"])


def test_cli_bench_scale_prints_json(capsys) -> None:
    assert main(["bench", "--only", "scale", "--sizes", "300", "--queries", "3", "--kinds", "flat", "--json", "-q",
                 "--beir", str(FIXTURES / "beir_tiny")]) == 0
    results = json.loads(capsys.readouterr().out)
    assert results["scale"]["cases"][0]["n"] == 300 and "machine" in results


def test_cli_bench_rejects_bad_options(capsys) -> None:
    assert main(["bench", "--only", "speed"]) == 2
    assert "unknown part" in capsys.readouterr().err
    assert main(["bench", "--sizes", "ten"]) == 2


def test_cli_bench_renders_saved_results(tmp_path: Path, capsys) -> None:
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    first.write_text(json.dumps({"scale": scale.bench_scale([200, 300], kinds=["flat"], queries=2, isolate=False)}))
    second.write_text(json.dumps({"scale": scale.bench_scale([300], kinds=["flat", "hnsw"], queries=2, isolate=False)}))
    assert main(["bench", "--from-json", str(first), str(second), "--plot", str(tmp_path / "p.png")]) == 0
    out = capsys.readouterr().out
    assert "| topical | 200 | flat (auto) |" in out and "| topical | 300 | hnsw |" in out
    assert out.count("| topical | 300 | flat (auto) |") == 1  # the later run's case replaces the earlier one's
    assert (tmp_path / "p.png").exists()
    assert main(["bench", "--from-json", str(tmp_path / "missing.json")]) == 2


def test_the_bare_floor_encodes_one_question_as_one_row(settings) -> None:
    """The latency floor is called with a question, not a list: it must encode the question, not its letters."""
    from assistant.bench.session import BareRuntime

    class Rows:
        def encode_batch(self, texts):
            return np.ones((len(texts), 2), dtype=np.float32)

    bare = BareRuntime(Rows())
    assert bare.encode("What is magnesium?").shape == (1, 2)
    assert bare.encode(["a", "b", "c"], batch_size=2).shape == (3, 2)
