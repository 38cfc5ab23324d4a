"""pytest-benchmark suite: each measured operation beside its floor, in the same group.

Run it on purpose (the default `pytest` run only collects `tests/`):

    python -m pytest benchmarks/ --benchmark-only --benchmark-group-by=group
    python -m pytest benchmarks/ --benchmark-only --benchmark-autosave      # then --benchmark-compare

pytest-benchmark runs one test at a time, so it cannot interleave an operation with its floor
the way `python -m assistant bench` does; on a busy machine prefer the CLI's figures, and use
this suite to track regressions between commits. Nothing here fails on a timing.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pytest_benchmark")

from assistant import Assistant, bench
from assistant.index import open_index
from assistant.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = next(p for p in (ROOT.parent / "shared" / "eval" / "dev.jsonl", ROOT / "tests" / "fixtures" / "questions.jsonl") if p.exists())
QUESTION = bench.latency_items(QUESTIONS)[0][0]
BEIR = ROOT.parent / "shared" / "eval" / "scifact"
INDEXING_DOCS = 100
SEARCH_SIZE = 50_000


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> bench.BenchSession:
    workdir = tmp_path_factory.mktemp("bench")
    settings = Settings(index_dir=workdir / "index")
    return bench.BenchSession(settings, bench.BenchOptions(questions=QUESTIONS), workdir)


@pytest.fixture(scope="module")
def bot(session: bench.BenchSession) -> Assistant:
    return Assistant.load(session.settings)


@pytest.fixture(scope="module")
def indexing_settings(session: bench.BenchSession) -> Settings:
    """The first 100 SciFact documents when they are there (as `bench --only indexing`), else the project corpus."""
    settings = session.settings.model_copy(update={"index_dir": session.workdir / "indexing-index"})
    if BEIR.is_dir():
        from assistant.beir import load_beir

        folder = bench.write_beir_corpus(load_beir(BEIR), session.workdir / "indexing-corpus", limit=INDEXING_DOCS)
        settings = settings.model_copy(update={"corpus_dir": folder})
    return settings


@pytest.mark.benchmark(group="answer (warm)")
def test_answer(benchmark, bot: Assistant) -> None:
    benchmark.pedantic(bot.ask, args=(QUESTION,), rounds=100, warmup_rounds=10)


@pytest.mark.benchmark(group="answer (warm)")
def test_answer_floor_bare_encode(benchmark, session: bench.BenchSession) -> None:
    benchmark.pedantic(session.floor_model.encode, args=(QUESTION,), rounds=100, warmup_rounds=10)


@pytest.mark.benchmark(group="retrieval without the encoder")
def test_retrieval_given_the_vector(benchmark, bot: Assistant) -> None:
    vector = bot.embedder.encode([QUESTION])[0]
    benchmark(bot.retriever.search, QUESTION, k=bot.settings.candidates, vector=vector)


@pytest.mark.benchmark(group="cold start")
@pytest.mark.parametrize("process", ["assistant", "bare_encode"])
def test_cold_start(benchmark, bot: Assistant, process: str) -> None:
    command = bench.cold_commands(bot.settings, QUESTION)[process]
    env = {**os.environ, **bench.QUIET_ENV}
    benchmark.pedantic(subprocess.run, args=(command,), kwargs={"env": env, "check": True, "capture_output": True}, rounds=3)


@pytest.mark.benchmark(group="indexing")
def test_index_build(benchmark, indexing_settings: Settings, bot: Assistant) -> None:
    benchmark.extra_info["chunks"] = len(bench.chunk_texts(indexing_settings))
    benchmark.pedantic(open_index, args=(indexing_settings, bot.embedder), kwargs={"force": True}, rounds=3)


@pytest.mark.benchmark(group="indexing")
def test_index_floor_bare_encode(benchmark, session: bench.BenchSession, indexing_settings: Settings) -> None:
    texts = bench.chunk_texts(indexing_settings)
    benchmark.extra_info["chunks"] = len(texts)
    benchmark.pedantic(session.floor_model.encode, args=(texts,), kwargs={"batch_size": bench.ENCODE_BATCH}, rounds=3)


@pytest.fixture(scope="module")
def topical() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    import faiss

    gen = bench.SyntheticVectors("topical", n=SEARCH_SIZE, seed=0)
    corpus, queries = gen.corpus(), gen.queries(100)
    _, truth = faiss.knn(queries, corpus, 10, metric=faiss.METRIC_INNER_PRODUCT)
    return corpus, queries, truth


@pytest.mark.benchmark(group=f"vector search, {SEARCH_SIZE:,} topical vectors")
@pytest.mark.parametrize("kind", bench.KINDS)
def test_vector_search(benchmark, topical, kind: str) -> None:
    corpus, queries, truth = topical
    store, build_s = bench.build_store(kind, corpus, show_progress=False)
    found = [store.search(q[None, :], 10)[1][0] for q in queries]
    benchmark.extra_info.update({"build_s": round(build_s, 2), "recall@10": bench.recall_at_k(found, truth, 10)})
    cycle = iter(range(10**9))
    benchmark(lambda: store.search(queries[next(cycle) % len(queries)][None, :], 10))
