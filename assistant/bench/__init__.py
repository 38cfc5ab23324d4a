"""Speed, memory and scale benchmarks: the figures of docs/benchmarks.md (`python -m assistant bench`).

Tooling, not product: it imports the assistant and measures its own code paths; nothing in the
product imports it. Every figure is set against the floor it cannot beat, measured the same way,
in the same kind of process and interleaved with it, so that load from other processes falls on
both alike:

* `latency`: warm `Assistant.ask` against one bare encode of the same question by the fastest
  encoder of the same vectors (ONNX Runtime's session of the export, called directly; for
  `encoder=torch`, `SentenceTransformer.encode`) (target: answer p50 ≤ 1.15× encode p50);
* `cold`: a new `python -m assistant ask` process, import to first answer with an existing
  index (target ≤ 1.0 s), beside a process that only loads the same encoder and encodes once;
* `indexing`: chunks per second of a full index build (`index --force`, through
  `assistant.indexing.sync_store`) against the bare encoder on the same chunk texts, in batches
  (target ≥ 0.9×);
* `scale`: synthetic corpora of 10k–1M chunks: build time, memory, query latency and
  recall@10 of each FAISS index kind against exact search, and the whole retrieval step
  (`hybrid_search`: dense + BM25 + fusion, without the encoder) on top of it;
* `milvus` (not run by default: long): the same synthetic corpora in `MilvusChunkStore` on
  Milvus Lite and in `FaissChunkStore` (exact and HNSW), each filled through the store
  contract in a process of its own: build time until searchable, peak memory, size on disk,
  dense and hybrid latency, dense recall@10, and hybrid top 10 against hybrid over exact FAISS.

Modules: `timing` (statistics, interleaving, a timed embedder), `machine` (machine info, RSS, a
memory watcher, fresh processes), one per part (`latency`, `cold`, `indexing`, `scale`,
`milvus`), `synthetic` (vectors, texts, chunks), `report` (Markdown and plots) and `session`
(options, one run, merging saved runs).

These are measurements, not tests: nothing here asserts a target. `benchmarks/` runs the same
code under pytest-benchmark. A scale or Milvus case runs in a fresh process of its own so that
its peak RSS is its own.
"""

from assistant.bench.report import plot_milvus, plot_scale, render_markdown
from assistant.bench.session import ALL_PARTS, PARTS, BenchOptions, BenchSession, merge_results

__all__ = ["ALL_PARTS", "PARTS", "BenchOptions", "BenchSession", "merge_results", "plot_milvus", "plot_scale", "render_markdown"]
