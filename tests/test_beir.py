from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES, FakeEmbedder

import assistant.embedding as embedding_module
from assistant.beir import (
    METRICS,
    BeirFormatError,
    BeirRetriever,
    HybridConfig,
    cache_key,
    embed_cached,
    evaluate_beir,
    load_beir,
    score_run,
    split_long_documents,
    top_k,
)
from assistant.cli import main

TINY = FIXTURES / "beir_tiny"


@pytest.fixture
def tiny():
    return load_beir(TINY, "test")


def test_load_reads_crlf_qrels_and_keeps_only_judged_queries(tiny):
    assert tiny.doc_ids[:2] == ["d1", "d2"] and len(tiny.doc_ids) == 8
    assert sorted(tiny.queries) == ["q1", "q2", "q3", "q4"]
    assert tiny.qrels["q1"] == {"d1": 1}
    assert tiny.documents()[0] == "Vitamin D and bone density Adults who took vitamin D supplements for two years " \
        "kept more bone mineral density in the hip than adults on placebo."
    assert tiny.documents()[6].startswith("Hand washing")  # no title: no leading space
    train = load_beir(TINY, "train")
    assert train.qrels["q6"] == {"d8": 2, "d2": 0}


def test_load_names_the_problem_and_the_fix(tmp_path):
    with pytest.raises(BeirFormatError, match="splits in .*: test, train"):
        load_beir(TINY, "dev")
    (tmp_path / "qrels").mkdir()
    (tmp_path / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    with pytest.raises(BeirFormatError, match="corpus.jsonl not found"):
        load_beir(tmp_path)
    (tmp_path / "corpus.jsonl").write_text('{"_id": "d1", "text": "a"}\n{"_id": "d1", "text": "b"}\n')
    (tmp_path / "queries.jsonl").write_text('{"_id": "q1", "text": "a"}\n')
    with pytest.raises(BeirFormatError, match=r"corpus.jsonl:2: document id 'd1' appears twice"):
        load_beir(tmp_path)
    (tmp_path / "corpus.jsonl").write_text('{"_id": "d1", "text": "a"}\nnot json\n')
    with pytest.raises(BeirFormatError, match=r"corpus.jsonl:2: not valid JSON"):
        load_beir(tmp_path)
    (tmp_path / "corpus.jsonl").write_text('{"_id": "d1", "text": "a"}\n')
    (tmp_path / "qrels" / "test.tsv").write_text("q1\td1\n")
    with pytest.raises(BeirFormatError, match=r"test.tsv:1: expected"):
        load_beir(tmp_path)


def test_top_k_is_best_first_with_ties_on_the_smaller_index():
    assert top_k(np.array([0.1, 0.5, 0.5, 0.9]), 3).tolist() == [3, 1, 2]
    assert top_k(np.array([0.2, 0.1]), 5).tolist() == [0, 1]
    assert top_k(np.array([0.2]), 0).tolist() == []


def test_metrics_come_from_ranx_with_linear_gains():
    qrels = {"q": {"a": 2, "b": 1, "z": 0}}
    figures = score_run(qrels, {"q": {"x": 3.0, "b": 2.0, "a": 1.0}})
    dcg = 1 / math.log2(3) + 2 / math.log2(4)
    ideal = 2 / math.log2(2) + 1 / math.log2(3)
    assert figures["ndcg@10"] == pytest.approx(dcg / ideal)
    assert figures["mrr@10"] == pytest.approx(0.5)
    assert figures["recall@10"] == pytest.approx(1.0)  # judged-irrelevant "z" is not counted
    # a judged query with no results counts as 0
    both = score_run({"q": {"a": 1}, "r": {"b": 1}}, {"q": {"a": 1.0}, "r": {}})
    assert both["ndcg@10"] == pytest.approx(0.5)


def test_embedding_cache_is_keyed_by_model_and_texts(tmp_path):
    embedder = FakeEmbedder()
    texts = ["magnesium and sleep", "iron and vitamin C"]
    first = embed_cached(texts, embedder, cache_dir=tmp_path)
    again = embed_cached(texts, embedder, cache_dir=tmp_path)
    assert embedder.calls == 1 and np.array_equal(first, again)
    embed_cached(texts[:1], embedder, cache_dir=tmp_path)
    assert embedder.calls == 2
    assert cache_key("m", texts) != cache_key("other", texts) != cache_key("m", texts[::-1])
    assert cache_key("m", texts, max_seq_length=128) != cache_key("m", texts, max_seq_length=256)
    for path in tmp_path.glob("*.npy"):
        path.write_bytes(b"damaged")
    assert np.array_equal(embed_cached(texts, embedder, cache_dir=tmp_path), first)
    assert embedder.calls == 3
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind


def test_evaluate_reports_every_method_and_metric(tiny, tmp_path):
    report = evaluate_beir(tiny, FakeEmbedder(), cache_dir=tmp_path)
    assert set(report.figures) >= {"dense", "lexical", "hybrid"}
    for figures in report.figures.values():
        assert set(figures) == set(METRICS)
        assert all(0.0 <= v <= 1.0 for v in figures.values())
    assert report.figures["lexical"]["recall@100"] == 1.0
    assert report.queries == 4 and report.documents == 8
    assert report.hybrid == "convex alpha=0.7" and "hybrid rrf k=60 weights=1/1" in report.variants
    rrf = evaluate_beir(tiny, FakeEmbedder(), cache_dir=tmp_path, hybrid=HybridConfig(fusion="rrf"))
    assert rrf.hybrid == "rrf k=60 weights=1/1" and set(rrf.variants) == {"hybrid rrf k=5 weights=1/1"}
    windows = evaluate_beir(tiny, FakeEmbedder(), cache_dir=tmp_path, hybrid=HybridConfig(passages=(8, 6)))
    assert {"dense + passages", "hybrid convex alpha=0.7"} <= set(windows.variants)
    assert HybridConfig(alpha=0.3, passages=(8, 6)).label() == "convex alpha=0.3 + passages 8/6 words"
    with pytest.raises(ValueError, match="fusion must be"):
        HybridConfig(fusion="max")
    with pytest.raises(ValueError, match="alpha must be"):
        HybridConfig(alpha=1.5)


def test_long_documents_get_title_prefixed_windows_of_their_tails(tiny):
    passages, owners = split_long_documents(tiny, words=8, stride=6)
    d1 = tiny.texts[0].split()  # 21 words: windows start at 6, 12 and 18
    title = tiny.titles[0]
    windows = [d1[6:14], d1[12:20], d1[18:]]
    assert passages[:3] == [f"{title} {' '.join(w)}" for w in windows]
    assert owners.tolist() == sorted(owners.tolist()) and set(owners.tolist()) == set(range(8))
    assert passages[owners.tolist().index(6)] == "seconds removes most bacteria picked up from door"  # no title
    assert split_long_documents(tiny, words=30, stride=10)[0] == []  # no body is longer than 30 words
    with pytest.raises(ValueError, match="stride"):
        split_long_documents(tiny, words=8, stride=9)


def test_pooled_dense_score_is_the_best_of_document_and_windows(tiny, tmp_path):
    retriever = BeirRetriever(tiny, FakeEmbedder(), cache_dir=tmp_path, passages=(8, 6))
    query = FakeEmbedder().encode(["placebo hip bone mineral density"])
    whole, pooled = retriever.dense_scores(query), retriever.dense_scores(query, pooled=True)
    assert (pooled >= whole - 1e-6).all() and pooled[0, 0] > whole[0, 0]
    runs = retriever.retrieve({"q": "placebo hip"}, pooled=True)
    assert next(iter(runs.dense_run()["q"])) == "d1"


@pytest.fixture
def fake_model(monkeypatch):
    monkeypatch.setattr(embedding_module, "get_embedder", lambda *a, **k: FakeEmbedder())


def test_cli_eval_beir_json(capsys, fake_model, tmp_path):
    code = main(["eval", "--beir", str(TINY), "--json", "--cache", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0
    data = json.loads(out)
    for method in ("dense", "lexical", "hybrid"):
        assert set(data[method]) >= set(METRICS)
    assert list(tmp_path.glob("embeddings-*.npy"))


def test_cli_eval_beir_table_and_errors(capsys, fake_model, tmp_path):
    code = main(["eval", "--beir", str(TINY), "--split", "train", "--cache", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0
    assert "nDCG@10" in out and "hybrid" in out and "2 queries" in out
    code = main(["eval", "--beir", str(tmp_path / "nowhere")])
    err = capsys.readouterr().err
    assert code != 0 and "not found" in err and "Traceback" not in err


@pytest.mark.slow
def test_real_model_ranks_the_judged_abstract_first(tiny, tmp_path):
    embedder = embedding_module.get_embedder()
    report = evaluate_beir(tiny, embedder, cache_dir=tmp_path)
    assert report.figures["dense"]["mrr@10"] >= 0.75
    assert report.figures["hybrid"]["recall@10"] == 1.0
    assert Path(next(tmp_path.glob("embeddings-*.npy"))).stat().st_size > 8 * 384 * 4
