"""Running the parts: what `python -m assistant bench` was asked for (`BenchOptions`), one run (`BenchSession`),
and saved runs merged (`merge_results`)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property, partial
from pathlib import Path
from typing import Any

import numpy as np

from assistant.bench.cold import bench_cold
from assistant.bench.indexing import ENCODE_BATCH, bench_indexing, write_beir_corpus
from assistant.bench.latency import bench_latency, latency_items
from assistant.bench.machine import machine_info
from assistant.bench.milvus import MILVUS_FILE_CHUNKS, bench_milvus
from assistant.bench.scale import bench_scale, parse_kind
from assistant.bench.synthetic import DISTRIBUTIONS, word_distribution
from assistant.embedding import resolve_model_path
from assistant.settings import Settings
from assistant.threads import limit_numeric_pools

PARTS = ("latency", "cold", "indexing", "scale")  # what runs by default
ALL_PARTS = (*PARTS, "milvus")
DEFAULT_SIZES = (10_000, 100_000, 1_000_000)


@dataclass
class BenchOptions:
    """What `python -m assistant bench` was asked to run, and how big."""

    parts: Sequence[str] = PARTS
    questions: Path | None = None
    rounds: int = 3
    runs: int = 5
    beir: Path | None = None
    indexing_docs: int = 100
    sizes: Sequence[int] = DEFAULT_SIZES
    distributions: Sequence[str] = ("topical",)
    kinds: Sequence[str] = ("flat", "hnsw")
    queries: int = 200
    file_chunks: int = MILVUS_FILE_CHUNKS
    show_progress: bool = False
    on_case: Callable[[dict[str, Any]], None] | None = None

    def __post_init__(self) -> None:
        for name, values, known in (("part", self.parts, ALL_PARTS), ("distribution", self.distributions, DISTRIBUTIONS)):
            unknown = [v for v in values if v not in known]
            if unknown:
                raise ValueError(f"unknown {name} {unknown}; choose from {', '.join(known)}")
        for name in ("rounds", "runs", "indexing_docs", "queries", "file_chunks"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for spec in self.kinds:
            parse_kind(spec)
        if any(n <= 0 for n in self.sizes):
            raise ValueError(f"sizes must be > 0, got {list(self.sizes)}")


class BareRuntime:
    """ONNX Runtime's session of the settings' export, with `encode(texts, batch_size)` in plain batches."""

    def __init__(self, runtime: Any) -> None:
        self.runtime = runtime

    @classmethod
    def open(cls, settings: Settings) -> BareRuntime:
        from assistant.encoders.onnx import open_export
        from assistant.encoders.pipeline import Runtime, physical_cores

        export = open_export(settings.model, settings.cache_dir, quantize=settings.encoder == "onnx-int8")
        pipeline = export.manifest["pipeline"]
        return cls(Runtime(export.onnx_model, export.tokenizer_json, pipeline, threads=physical_cores()))

    def encode(self, texts: str | Sequence[str], batch_size: int = ENCODE_BATCH) -> np.ndarray:
        """Rows for `texts`; one text alone (as the latency floor passes it, like `SentenceTransformer.encode`) is one row."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        return np.concatenate([self.runtime.encode_batch(texts[i : i + batch_size])
                               for i in range(0, len(texts), batch_size)])


@dataclass
class BenchSession:
    """One benchmark run: settings whose index lives in `workdir`, and the bare model, loaded once.

    Example:
        >>> session = BenchSession(settings, BenchOptions(parts=["latency"]), Path("/tmp/b"))  # doctest: +SKIP
        >>> session.run()["latency"]["ratio_p50"]  # doctest: +SKIP
    """

    settings: Settings
    options: BenchOptions
    workdir: Path
    results: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def floor_model(self) -> Any:
        """The fastest encoder of the same model and vectors, bare: the floor every figure is set against.

        For the ONNX encoders that is ONNX Runtime's session of the same export, called directly (no
        sorting, no wrapper); for `encoder=torch`, a bare `SentenceTransformer`.
        """
        if self.settings.encoder == "torch":
            for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):  # never download: the model ships in a package
                os.environ.setdefault(name, "1")
            from sentence_transformers import SentenceTransformer

            return SentenceTransformer(resolve_model_path(self.settings.model), device=self.settings.device)
        return BareRuntime.open(self.settings)

    def run(self, parts: Sequence[str] | None = None, *, on_part: Callable[[str], None] | None = None) -> dict[str, Any]:
        self.results["machine"] = machine_info()
        for part in parts or self.options.parts:
            if on_part is not None:
                on_part(part)
            started = time.perf_counter()
            self.results[part] = getattr(self, f"run_{part}")()
            self.results[part]["wall_s"] = round(time.perf_counter() - started, 1)
        self.results["machine"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
        return self.results

    def _questions(self) -> list[tuple[str, list[str]]]:
        if self.options.questions is None or not self.options.questions.exists():
            raise ValueError(f"question set {self.options.questions} not found; pass --questions FILE")
        return latency_items(self.options.questions)

    def _assistant(self) -> Any:
        from assistant import Assistant

        return Assistant.load(self.settings, show_progress=self.options.show_progress, on_rebuild=lambda message: None)

    def run_latency(self) -> dict[str, Any]:
        bot = self._assistant()
        try:
            with limit_numeric_pools():  # as the app and `ask` answer (assistant.threads)
                result = bench_latency(bot, self._questions(), self.floor_model.encode, rounds=self.options.rounds)
            stats = bot.store.stats()
        finally:
            bot.close()
        return {**result, "chunks": stats["chunks"], "index_kind": stats.get("index_kind")}

    def run_cold(self) -> dict[str, Any]:
        self._assistant().close()  # the index must exist (and be released) before the first cold process
        question = self._questions()[0][0]
        return bench_cold(self.settings, question, runs=self.options.runs)

    @cached_property
    def beir(self) -> Any:
        """The `BeirDataset` of `options.beir`, or None to use the settings' corpus instead."""
        from assistant.evaluation.beir_data import load_beir

        return load_beir(self.options.beir) if self.options.beir is not None else None

    def run_indexing(self) -> dict[str, Any]:
        from assistant.embedding import embedder_for

        settings = self.settings.model_copy(update={"index_dir": self.workdir / "indexing-index"})
        if self.beir is not None:
            folder = write_beir_corpus(self.beir, self.workdir / "indexing-corpus", limit=self.options.indexing_docs)
            settings = settings.model_copy(update={"corpus_dir": folder})
        embedder = embedder_for(settings)
        floor = partial(self.floor_model.encode, batch_size=ENCODE_BATCH)
        result = bench_indexing(settings, embedder, floor, rounds=self.options.rounds, show_progress=self.options.show_progress)
        source = f"{self.options.beir} (first {self.options.indexing_docs} documents)" if self.beir is not None else settings.corpus_dir
        return {**result, "corpus": str(source)}

    @cached_property
    def vocabulary(self) -> tuple[list[str], np.ndarray]:
        """The words of the synthetic texts: those of `options.beir`, else of the settings' corpus."""
        from assistant.corpus import load_corpus

        if self.beir is not None:
            texts = self.beir.documents()
        else:
            texts = [d.text for d in load_corpus(self.settings.corpus_dir, max_bytes=self.settings.max_file_bytes)]
        return word_distribution(texts)

    def run_scale(self) -> dict[str, Any]:
        return bench_scale(
            self.options.sizes,
            distributions=self.options.distributions,
            kinds=self.options.kinds,
            queries=self.options.queries,
            vocabulary=self.vocabulary,
            settings=self.settings,
            show_progress=self.options.show_progress,
            on_case=self.options.on_case,
        )

    def run_milvus(self) -> dict[str, Any]:
        return bench_milvus(
            self.options.sizes,
            queries=self.options.queries,
            vocabulary=self.vocabulary,
            settings=self.settings,
            file_chunks=self.options.file_chunks,
            workdir=self.workdir,
            show_progress=self.options.show_progress,
            on_case=self.options.on_case,
        )


def merge_results(runs: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Saved `--json` runs as one: a later run's part replaces an earlier one's, except that scale
    and milvus cases add up, one per (distribution, size), the later run's winning."""
    merged: dict[str, Any] = {}
    cases: dict[str, dict[tuple[str, int], dict[str, Any]]] = {"scale": {}, "milvus": {}}
    for run in runs:
        for key, value in run.items():
            if key in cases:
                cases[key].update({(case["distribution"], case["n"]): case for case in value["cases"]})
                value = {**value, "cases": []}
            merged[key] = value
    for key, found in cases.items():
        if key in merged:
            merged[key]["cases"] = [found[k] for k in sorted(found)]
    return merged
