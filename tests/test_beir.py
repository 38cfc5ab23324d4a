from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES, FakeEmbedder

import assistant.embedding as embedding_module
from assistant.cli import main
from assistant.evaluation.beir import (
    METRICS,
    BeirFormatError,
    SearchContext,
    build_store,
    evaluate_beir,
    hybrid_runs,
    load_beir,
    make_variants,
    rank_documents,
    score_run,
)
from assistant.evaluation.beir_data import BeirDataset, document_text, write_corpus
from assistant.evaluation.embedding_cache import CachedEmbedder
from assistant.models import Chunk
from assistant.settings import Settings

TINY = FIXTURES / "beir_tiny"


@pytest.fixture
def tiny():
    return load_beir(TINY, "test")


@pytest.fixture
def abstracts() -> BeirDataset:
    """Documents of several sentences, so that a document has chunks of its own to rank by."""
    texts = {
        "a": ("Magnesium and sleep", "Magnesium is a mineral. Older adults given magnesium slept longer. The effect was small."),
        "b": ("Iron in plants", "Beans hold iron. Vitamin C raises how much iron the gut absorbs. Tea lowers it."),
        "c": ("Salt", "Less salt lowers blood pressure. The effect is larger in people with hypertension."),
        "d": ("Walking", "Brisk walking lifts mood. It also helps sleep in older adults."),
    }
    queries = {"q1": "does magnesium help older adults sleep", "q2": "vitamin C and iron absorption",
               "q3": "salt and blood pressure"}
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}, "q3": {"c": 1}}
    return BeirDataset(list(texts), [t for t, _ in texts.values()], [x for _, x in texts.values()], queries, qrels)


def test_load_reads_crlf_qrels_and_keeps_only_judged_queries(tiny):
    assert tiny.doc_ids[:2] == ["d1", "d2"] and len(tiny.doc_ids) == 8
    assert sorted(tiny.queries) == ["q1", "q2", "q3", "q4"]
    assert tiny.qrels["q1"] == {"d1": 1}
    assert tiny.documents()[0] == "# Vitamin D and bone density\n\nAdults who took vitamin D supplements for two years " \
        "kept more bone mineral density in the hip than adults on placebo.\n"
    assert tiny.documents()[6].startswith("Hand washing")  # no title: no heading
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


def test_write_corpus_writes_one_markdown_file_per_document_with_safe_unique_names(tmp_path):
    dataset = BeirDataset(["a/1", "A_1", "x"], ["T", "", "Long\ntitle"], ["one.", "two.", "three."], {}, {})
    owner = write_corpus(dataset, tmp_path)
    assert owner == {"a_1.md": "a/1", "A_1-1.md": "A_1", "x.md": "x"}
    assert (tmp_path / "x.md").read_text(encoding="utf-8") == "# Long title\n\nthree.\n" == document_text("Long\ntitle", "three.")


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


def _chunk(source: str, i: int) -> Chunk:
    return Chunk(id=i, source=source, section="", kind="sentence", start=0, end=1, text="x", block=0)


def test_a_document_ranks_where_its_best_chunk_ranks_and_the_search_deepens_until_enough_documents():
    ranking = [_chunk(s, i) for i, s in enumerate(["b.md", "b.md", "a.md", "b.md", "c.md", "a.md", "d.md"])]
    asked: list[int] = []

    def search(k: int) -> list[Chunk]:
        asked.append(k)
        return ranking[:k]

    owner = {"a.md": "A", "b.md": "B", "c.md": "C", "d.md": "D"}
    assert rank_documents(search, owner, depth=3, start=2, limit=7) == ["B", "A", "C"]
    assert asked == [2, 4, 7]  # 2 chunks name one document, 4 name two, 7 name four
    asked.clear()
    assert rank_documents(search, owner, depth=10, start=5, limit=100) == ["B", "A", "C", "D"]
    assert asked == [5, 10]  # the search ran out before 10 documents: no deeper search


def test_embedding_cache_is_keyed_by_model_and_text(tmp_path):
    inner = FakeEmbedder()
    texts = ["magnesium and sleep", "iron and vitamin C"]
    with CachedEmbedder(inner, tmp_path) as cached:
        first = cached.encode(texts)
    np.testing.assert_array_equal(first, FakeEmbedder().encode(texts))
    again = CachedEmbedder(inner, tmp_path)  # a new process: reads the shard
    np.testing.assert_array_equal(again.encode(texts[::-1]), first[::-1])
    assert inner.calls == 1 and again.embedded == 0 and again.hits == 2
    again.encode(["a new text", "magnesium and sleep", "a new text"])  # only the new text, once
    assert again.embedded == 1
    other = FakeEmbedder()
    other.name = "another-model"
    assert CachedEmbedder(other, tmp_path).folder != again.folder
    assert CachedEmbedder(other, tmp_path).encode(texts[:1]).shape == (1, other.dimension) and other.calls == 1


def test_a_damaged_cache_shard_is_removed_and_embedded_again(tmp_path, caplog):
    inner = FakeEmbedder()
    with CachedEmbedder(inner, tmp_path) as cached:
        first = cached.encode(["a", "b"])
    (shard,) = cached.folder.glob("shard-*.npz")
    shard.write_bytes(b"damaged")
    fresh = CachedEmbedder(inner, tmp_path)
    np.testing.assert_array_equal(fresh.encode(["a", "b"]), first)
    assert fresh.embedded == 2 and not shard.exists() and "damaged" in caplog.text
    fresh.flush()
    assert [p.name.startswith("shard-") for p in fresh.folder.iterdir()] == [True]  # no temporary files left


def test_variants_are_settings_named_by_what_differs():
    product = Settings(alpha=0.8, neighbour_weight=0.3)
    rows = make_variants(product, [{"alpha": 0.7}, {"alpha": 0.8}, {"alpha": 0.7, "neighbour_weight": 0.0},
                                   {"max_chunk_chars": 300}, {"alpha": 0.7, "neighbour_weight": 0.3}])
    assert [r.name for r in rows] == ["product", "alpha=0.7", "alpha=0.7, neighbour_weight=0", "max_chunk_chars=300"]
    assert rows[2].settings.alpha == 0.7 and rows[2].settings.neighbour_weight == 0.0 and rows[2].settings.top_k == product.top_k
    assert rows[1].store_key() == rows[0].store_key() != rows[3].store_key()
    with pytest.raises(ValueError, match="may change"):
        make_variants(product, [{"top_k": 5}])
    with pytest.raises(ValueError):
        make_variants(product, [{"alpha": 1.5}])  # validated as Settings validates it


def test_the_product_row_is_what_the_assistants_own_retriever_returns(abstracts, tmp_path):
    """Oracle: the assistant loaded the ordinary way over the same corpus folder, its retriever asked directly."""
    from assistant import Assistant

    settings = Settings(alpha=0.6, neighbour_weight=0.3)
    embedder = FakeEmbedder()
    store, owner = build_store(abstracts, settings, embedder, tmp_path / "eval")
    vectors = embedder.encode(list(abstracts.queries.values()))
    context = SearchContext(store.view(), owner, depth=4, start=3)
    runs = hybrid_runs(context, settings, abstracts.queries, vectors)
    bot = Assistant.load(settings.model_copy(update={"corpus_dir": tmp_path / "eval" / "corpus",
                                                     "index_dir": tmp_path / "own-index"}), embedder=embedder)
    for qid, query in abstracts.queries.items():
        hits = bot.retriever.search(query, k=store.count())
        expected = list(dict.fromkeys(owner[h.chunk.source] for h in hits))
        assert list(runs[qid]) == expected, qid
    assert store.count() > len(abstracts.doc_ids)  # documents of several chunks each


def test_evaluate_reports_product_variants_dense_and_lexical(abstracts, tmp_path):
    report = evaluate_beir(abstracts, FakeEmbedder(), Settings(), variants=[{"alpha": 0.5}, {"fusion": "rrf"},
                                                                           {"max_chunk_chars": 60}], cache_dir=tmp_path)
    assert list(report.rows) == ["product", "alpha=0.5", "fusion=rrf", "max_chunk_chars=60", "dense", "lexical"]
    for figures in report.rows.values():
        assert set(figures) == set(METRICS) and all(0.0 <= v <= 1.0 for v in figures.values())
    assert report.rows["lexical"]["recall@10"] == 1.0
    assert report.changes["alpha=0.5"] == {"alpha": 0.5} and report.changes["product"] == {}
    assert report.product["alpha"] == 0.8 and report.product["index_kind"] == "flat"
    assert report.queries == 3 and report.documents == 4 and report.chunks > 4
    assert report.embedded > 0
    again = evaluate_beir(abstracts, FakeEmbedder(), Settings(), variants=[{"alpha": 0.5}, {"fusion": "rrf"},
                                                                          {"max_chunk_chars": 60}], cache_dir=tmp_path)
    assert again.embedded == 0 and again.rows == report.rows  # a re-run embeds nothing and changes nothing


@pytest.fixture
def fake_model(monkeypatch):
    monkeypatch.setattr(embedding_module, "get_embedder", lambda *a, **k: FakeEmbedder())


def test_cli_eval_beir_json(capsys, fake_model, tmp_path):
    code = main(["eval", "--beir", str(TINY), "--json", "--cache", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0
    data = json.loads(out)
    assert data["order"][0] == "product" and data["order"][-2:] == ["dense", "lexical"]
    assert set(data["order"]) == set(data["rows"]) and "alpha=0.7" in data["rows"]
    for figures in data["rows"].values():
        assert set(figures) == set(METRICS)
    assert data["split"] == "test" and data["product"]["fusion"] == "convex"
    assert list(tmp_path.rglob("shard-*.npz"))


def test_cli_eval_beir_table_and_errors(capsys, fake_model, tmp_path):
    code = main(["eval", "--beir", str(TINY), "--cache", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0
    lines = out.splitlines()
    assert "split test: 4 queries" in lines[0] and lines[1].split()[:2] == ["retrieval", "nDCG@10"]
    assert lines[2].startswith("product ") and "alpha 0.8" in out
    code = main(["eval", "--beir", str(tmp_path / "nowhere")])
    err = capsys.readouterr().err
    assert code != 0 and "not found" in err and "Traceback" not in err


def test_cli_eval_beir_takes_any_qrels_split(capsys, fake_model, tmp_path):
    """BEIR splits are named by the data set (SciFact: train, test), not by the question bank."""
    code = main(["eval", "--beir", str(TINY), "--split", "train", "--cache", str(tmp_path)])
    assert code == 0 and "split train: 2 queries" in capsys.readouterr().out


@pytest.mark.slow
def test_real_model_ranks_the_judged_abstract_first(tiny, tmp_path):
    embedder = embedding_module.get_embedder()
    report = evaluate_beir(tiny, embedder, Settings(), cache_dir=tmp_path)
    assert report.rows["dense"]["mrr@10"] >= 0.75
    assert report.rows["product"]["recall@10"] == 1.0
    assert Path(next(tmp_path.rglob("shard-*.npz"))).stat().st_size > 8 * 384 * 4
