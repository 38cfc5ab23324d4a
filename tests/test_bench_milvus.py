"""The `milvus` bench part (Milvus Lite against FAISS) runs at a tiny size and reports every figure, sane."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from conftest import FIXTURES

from assistant import bench
from assistant.bench import machine, report, synthetic
from assistant.bench import milvus as milvus_part
from assistant.cli import main

pytest.importorskip("pymilvus", reason="the milvus extra is not installed: pip install -e '.[milvus]'")

SUMMARY_KEYS = {"n", "p50_ms", "p95_ms", "mean_ms"}
ROW_KEYS = {
    "engine", "setup_s", "inputs_rss_mb", "build_s", "steps_s", "disk_mb", "chunks_per_s", "dense", "hybrid",
    "first_dense_ms", "first_hybrid_ms", "recall_at_k", "engine_rss_mb", "threads", "peak_rss_mb",
    "child_processes", "children_peak_mb", "engine_peak_mb", "wall_s",
}


@pytest.fixture(scope="module")
def milvus(tmp_path_factory) -> dict:
    vocabulary = synthetic.word_distribution([(FIXTURES / "corpus_md" / "iron.md").read_text(encoding="utf-8")])
    workdir = tmp_path_factory.mktemp("bench-milvus")
    result = milvus_part.bench_milvus([2000], queries=20, vocabulary=vocabulary, isolate=False, workdir=workdir)
    assert list(workdir.iterdir()) == []  # the Milvus Lite file and the FAISS index are gone
    return result


def test_every_engine_reports_every_figure(milvus: dict) -> None:
    (case,) = milvus["cases"]
    assert case["n"] == 2000 and case["queries"] == 20 and len(case["inputs_sha256"]) == 64
    assert set(case["engines"]) == set(milvus_part.MILVUS_ENGINES)
    for name, row in case["engines"].items():
        assert ROW_KEYS <= set(row), name
        assert "hybrid_top" not in row  # the raw top-k lists stay out of the JSON
        for search in ("dense", "hybrid"):
            assert set(row[search]) == SUMMARY_KEYS and row[search]["n"] == 20
            assert 0 < row[search]["p50_ms"] <= row[search]["p95_ms"], (name, search)
        assert 0.0 <= row["recall_at_k"] <= 1.0
        assert row["build_s"] > 0 and row["chunks_per_s"] > 0 and row["disk_mb"] > 0
        assert row["peak_rss_mb"] >= row["inputs_rss_mb"] > 0 and row["child_processes"] == []
        if name != "faiss-flat":
            assert 0.0 <= row["hybrid_overlap_at_k"] <= 1.0
    assert case["engines"]["faiss-flat"]["recall_at_k"] == 1.0  # exact search finds the exact neighbours
    lite = case["engines"]["milvus-lite"]
    assert lite["files"] == 2 and lite["unindexed_segments"] == 0  # every segment has its HNSW index
    assert set(lite["steps_s"]) == {"open", "add", "commit", "index_wait"}
    for name in ("faiss-flat", "faiss-hnsw"):  # a FAISS commit splits into building the next state and saving it
        assert set(case["engines"][name]["steps_s"]) == {"add", "commit"} and case["engines"][name]["save_s"] > 0
    assert lite["client_s"] and all(c["calls"] > 0 and c["s"] >= 0 for c in lite["client_s"].values())
    assert milvus["hnsw"] == milvus["faiss_hnsw"] == {"m": 32, "ef_construction": 80, "ef_search": 128}


def test_report_merges_renders_and_plots(milvus: dict, tmp_path: Path, capsys) -> None:
    text = report.render_markdown({"milvus": milvus})
    assert "Milvus Lite vs FAISS" in text and "| 2,000 | Milvus Lite HNSW |" in text and "| 2,000 | FAISS HNSW |" in text
    saved = tmp_path / "milvus.json"
    saved.write_text(json.dumps({"milvus": milvus}), encoding="utf-8")
    smaller = {**milvus, "cases": [{**milvus["cases"][0], "n": 1000}]}
    (tmp_path / "smaller.json").write_text(json.dumps({"milvus": smaller}), encoding="utf-8")
    merged = bench.merge_results([json.loads(saved.read_text()), {"milvus": smaller}])
    assert [case["n"] for case in merged["milvus"]["cases"]] == [1000, 2000]  # cases add up, by size
    pytest.importorskip("matplotlib")
    plot = tmp_path / "bench.png"
    assert main(["bench", "--from-json", str(saved), str(tmp_path / "smaller.json"), "--plot", str(plot)]) == 0
    assert "| 1,000 | Milvus Lite HNSW |" in capsys.readouterr().out
    assert plot.stat().st_size > 0


def test_cli_takes_the_milvus_part_only_when_asked(capsys) -> None:
    assert "milvus" not in bench.BenchOptions().parts
    assert bench.BenchOptions(parts=["milvus"], file_chunks=9).file_chunks == 9
    assert main(["bench", "--only", "milvus", "--file-chunks", "0"]) == 2
    assert "file_chunks must be > 0" in capsys.readouterr().err


def test_a_failed_engine_keeps_the_other_rows(monkeypatch) -> None:
    measure = milvus_part.measure_engine

    def crash_milvus(n, engine, **kwargs):
        if engine == "milvus-lite":
            raise RuntimeError("killed")
        return measure(n, engine, **kwargs)

    monkeypatch.setattr(milvus_part, "measure_engine", crash_milvus)
    vocabulary = synthetic.word_distribution(["magnesium calcium bone vitamin heart"])
    result = milvus_part.bench_milvus([300], engines=["faiss-flat", "milvus-lite"], queries=3, vocabulary=vocabulary, isolate=False)
    rows = result["cases"][0]["engines"]
    assert rows["milvus-lite"]["error"] == "RuntimeError: killed" and rows["faiss-flat"]["recall_at_k"] == 1.0
    assert "| 300 | Milvus Lite HNSW | failed after" in report.render_markdown({"milvus": result})


def test_memory_watch_counts_new_child_processes_only() -> None:
    import subprocess

    earlier = subprocess.Popen(["sleep", "5"])  # running before the watch starts: not the engine's
    try:
        watch = machine.MemoryWatch(interval=0.02).start()
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.5)"])
        child.wait()
        memory = watch.stop()
    finally:
        earlier.kill()
        earlier.wait()
    assert memory["child_processes"] and "sleep" not in memory["child_processes"] and memory["children_peak_mb"] > 0
    assert memory["peak_rss_mb"] >= machine.rss_mb() * 0.5
