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

from assistant import Assistant
from assistant.bench import BenchOptions, BenchSession
from assistant.bench.cold import QUIET_ENV, cold_commands
from assistant.bench.indexing import ENCODE_BATCH, build_index, chunk_texts, write_beir_corpus
from assistant.bench.latency import latency_items
from assistant.bench.scale import KINDS, build_vectors
from assistant.bench.synthetic import SyntheticVectors
from assistant.bench.timing import recall_at_k
from assistant.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = next(p for p in (ROOT.parent / "shared" / "eval" / "dev.jsonl", ROOT / "tests" / "fixtures" / "questions.jsonl") if p.exists())
QUESTION = latency_items(QUESTIONS)[0][0]
BEIR = ROOT.parent / "shared" / "eval" / "scifact"
INDEXING_DOCS = 100
SEARCH_SIZE = 50_000


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> BenchSession:
    workdir = tmp_path_factory.mktemp("bench")
    settings = Settings(index_dir=workdir / "index")
    return BenchSession(settings, BenchOptions(questions=QUESTIONS), workdir)


@pytest.fixture(scope="module")
def bot(session: BenchSession) -> Assistant:
    return Assistant.load(session.settings)


@pytest.fixture(scope="module")
def indexing_settings(session: BenchSession) -> Settings:
    """The first 100 SciFact documents when they are there (as `bench --only indexing`), else the project corpus."""
    settings = session.settings.model_copy(update={"index_dir": session.workdir / "indexing-index"})
    if BEIR.is_dir():
        from assistant.evaluation.beir_data import load_beir

        folder = write_beir_corpus(load_beir(BEIR), session.workdir / "indexing-corpus", limit=INDEXING_DOCS)
        settings = settings.model_copy(update={"corpus_dir": folder})
    return settings


@pytest.mark.benchmark(group="answer (warm)")
def test_answer(benchmark, bot: Assistant) -> None:
    benchmark.pedantic(bot.ask, args=(QUESTION,), rounds=100, warmup_rounds=10)


@pytest.mark.benchmark(group="answer (warm)")
def test_answer_floor_bare_encode(benchmark, session: BenchSession) -> None:
    benchmark.pedantic(session.floor_model.encode, args=(QUESTION,), rounds=100, warmup_rounds=10)


@pytest.mark.benchmark(group="retrieval without the encoder")
def test_retrieval_given_the_vector(benchmark, bot: Assistant) -> None:
    vector = bot.embedder.encode([QUESTION])[0]
    benchmark(bot.retriever.search, QUESTION, k=bot.settings.candidates, vector=vector)


@pytest.mark.benchmark(group="cold start")
@pytest.mark.parametrize("process", ["assistant", "bare_encode"])
def test_cold_start(benchmark, bot: Assistant, process: str) -> None:
    command = cold_commands(bot.settings, QUESTION)[process]
    env = {**os.environ, **QUIET_ENV}
    benchmark.pedantic(subprocess.run, args=(command,), kwargs={"env": env, "check": True, "capture_output": True}, rounds=3)


@pytest.mark.benchmark(group="indexing")
def test_index_build(benchmark, indexing_settings: Settings, bot: Assistant) -> None:
    benchmark.extra_info["chunks"] = len(chunk_texts(indexing_settings))
    benchmark.pedantic(build_index, args=(indexing_settings, bot.embedder), rounds=3)


@pytest.mark.benchmark(group="indexing")
def test_index_floor_bare_encode(benchmark, session: BenchSession, indexing_settings: Settings) -> None:
    texts = chunk_texts(indexing_settings)
    benchmark.extra_info["chunks"] = len(texts)
    benchmark.pedantic(session.floor_model.encode, args=(texts,), kwargs={"batch_size": ENCODE_BATCH}, rounds=3)


@pytest.fixture(scope="module")
def topical() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    import faiss

    gen = SyntheticVectors("topical", n=SEARCH_SIZE, seed=0)
    corpus, queries = gen.corpus(), gen.queries(100)
    _, truth = faiss.knn(queries, corpus, 10, metric=faiss.METRIC_INNER_PRODUCT)
    return corpus, queries, truth


@pytest.mark.benchmark(group=f"vector search, {SEARCH_SIZE:,} topical vectors")
@pytest.mark.parametrize("kind", KINDS)
def test_vector_search(benchmark, topical, kind: str) -> None:
    corpus, queries, truth = topical
    index, build_s = build_vectors(kind, corpus, show_progress=False)
    found = [index.search(q[None, :], 10)[1][0] for q in queries]
    benchmark.extra_info.update({"build_s": round(build_s, 2), "recall@10": recall_at_k(found, truth, 10)})
    cycle = iter(range(10**9))
    benchmark(lambda: index.search(queries[next(cycle) % len(queries)][None, :], 10))
