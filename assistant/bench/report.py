"""Reporting: the results as the Markdown tables of docs/benchmarks.md, and the scale and Milvus plots."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from assistant.bench.synthetic import DISTRIBUTIONS

ENGINE_LABELS = {"faiss-flat": "FAISS flat (exact)", "faiss-hnsw": "FAISS HNSW", "milvus-lite": "Milvus Lite HNSW"}



def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    """A Markdown table; the first column is left-aligned, the others right-aligned."""
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return [*lines, ""]


def _verdict(name: str, value: float, target: float, *, at_most: bool) -> str:
    met = value <= target if at_most else value >= target
    return f"{name} {value:.3f} (target {'≤' if at_most else '≥'} {target}: {'met' if met else 'NOT met'})."


def _ms(summary: dict[str, float], scale: float = 1.0) -> list[str]:
    return [f"{summary['p50_ms'] * scale:.2f}", f"{summary['p95_ms'] * scale:.2f}"]


def _machine_lines(m: dict[str, Any]) -> list[str]:
    v = m["versions"]
    line = (
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['ram_gib']} GiB RAM, load average {m['load_average'][0]} before "
        f"and {m.get('load_average_after', ['?'])[0]} after. Python {v['python']}, torch {v['torch']}, "
        f"sentence-transformers {v['sentence-transformers']}, onnxruntime {v.get('onnxruntime', '?')}, faiss-cpu {v['faiss-cpu']}, bm25s {v['bm25s']}, numpy {v['numpy']}."
    )
    return [line, ""]


def _latency_lines(r: dict[str, Any]) -> list[str]:
    rows = [
        [label, *_ms(r[key]), f"{r[key]['mean_ms']:.2f}"]
        for label, key in (
            ("`Assistant.ask`", "answer"),
            ("bare `encode` (floor)", "bare_encode"),
            ("encoder time inside `ask`", "encoder_in_answer"),
            ("`ask` minus its encoder time", "non_encoder"),
        )
    ]
    title = (
        f"Warm answer latency: {r['questions']} questions × {r['rounds']} rounds, {r['chunks']} chunks, "
        f"{r['index_kind']} index, {r['encodes_per_answer']} encodes per answer."
    )
    return [
        title,
        "",
        *_table(["", "p50 ms", "p95 ms", "mean ms"], rows),
        _verdict("Ratio of the p50s", r["ratio_p50"], r["target_ratio_p50"], at_most=True) + f" Ratio of the p95s {r['ratio_p95']:.3f}.",
        "",
    ]


def _cold_lines(r: dict[str, Any]) -> list[str]:
    rows = [
        ["`python -m assistant ask` (index built)", *_ms(r["assistant"], 1e-3)],
        [f"load the model + one `encode` (floor, {r.get('encoder', 'torch')})", *_ms(r["bare_encode"], 1e-3)],
    ]
    return [
        f"Cold start: {r['runs']} processes of each kind, interleaved; wall time from launch to exit.",
        "",
        *_table(["process", "p50 s", "p95 s"], rows),
        _verdict("CLI answer p50 (s)", r["assistant"]["p50_ms"] / 1000, r.get("target_s", 1.0), at_most=True)
        + f" Ratio to the floor {r['ratio_p50']:.3f}.",
        "",
    ]


def _indexing_lines(r: dict[str, Any]) -> list[str]:
    rows = [
        ["full build (`index --force`: `open_synced(force=True)`)", f"{r['build_s']:.2f}", f"{r['build_chunks_per_s']:.1f}"],
        ["bare `encode` of the same texts (floor)", f"{r['bare_encode_s']:.2f}", f"{r['bare_chunks_per_s']:.1f}"],
        ["build minus its encoder time", f"{r['non_encoder_s']:.2f}", ""],
    ]
    title = (
        f"Indexing: {r['chunks']} chunks ({r['mean_chunk_chars']} characters on average) from {r.get('corpus', 'the corpus')}, "
        f"median of {r['rounds']} interleaved rounds."
    )
    return [
        title,
        "",
        *_table(["", "seconds", "chunks/s"], rows),
        _verdict("Throughput ratio", r["ratio"], r["target_ratio"], at_most=False),
        "",
    ]


def render_scale_table(scale: dict[str, Any]) -> list[str]:
    rows = []
    for case in scale["cases"]:
        for kind, row in case["kinds"].items():
            retrieval = row.get("retrieval")
            single = row.get("search_1_thread")
            retrieval_single = row.get("retrieval_1_thread")
            rows.append([
                case["distribution"], f"{case['n']:,}", f"{kind}{' (auto)' if kind == case.get('auto_kind') else ''}",
                f"{row['build_s']:.1f}", f"{row['index_mb']:.0f}", f"{case['peak_rss_mb']:.0f}",
                " / ".join(_ms(row["search"])), " / ".join(_ms(single)) if single else "–", f"{row['recall_at_k']:.3f}",
                " / ".join(_ms(retrieval)) if retrieval else "–", " / ".join(_ms(retrieval_single)) if retrieval_single else "–",
                row.get("retrieval_recall_at_k", "–"),
            ])
    header = ["vectors", "chunks", "index", "build s", "index MiB", "peak RSS MiB", "search p50 / p95 ms",
              "1 thread", "recall@10", "retrieval p50 / p95 ms", "1 thread", "fused top-10 vs exact"]
    return _table(header, rows)


def render_milvus_table(milvus: dict[str, Any]) -> list[str]:
    rows = []
    for case in milvus["cases"]:
        for engine, row in case["engines"].items():
            if "error" in row:
                rows.append([f"{case['n']:,}", ENGINE_LABELS.get(engine, engine), f"failed after {row['wall_s']:.0f} s: {row['error']}"])
                continue
            rows.append([
                f"{case['n']:,}", ENGINE_LABELS.get(engine, engine), f"{row['build_s']:.1f}", f"{row['chunks_per_s']:,.0f}",
                f"{row['save_s']:.1f}" if "save_s" in row else "–", f"{row['disk_mb']:.0f}", f"{row['peak_rss_mb']:.0f}",
                f"{row['engine_peak_mb']:.0f}", " / ".join(_ms(row["dense"])), f"{row['recall_at_k']:.3f}",
                " / ".join(_ms(row["hybrid"])), f"{row['first_hybrid_ms']:.0f}", row.get("hybrid_overlap_at_k", "–"),
            ])
    hnsw, hybrid = milvus["hnsw"], milvus["hybrid"]
    first = milvus["cases"][0] if milvus["cases"] else {"queries": "?", "file_chunks": "?"}
    title = (
        f"Milvus Lite vs FAISS: topical vectors, {first['queries']} single queries (vectors given, no encoder), "
        f"{first['file_chunks']} chunks per file; HNSW M={hnsw['m']}, efConstruction={hnsw['ef_construction']}, "
        f"ef={hnsw['ef_search']}{_faiss_hnsw_note(milvus)}; hybrid k={hybrid['k']}, {hybrid['fusion']}, alpha {hybrid['alpha']}, "
        f"neighbour weight {hybrid['neighbour_weight']}. pymilvus {milvus['versions']['pymilvus']}, "
        f"milvus-lite {milvus['versions']['milvus-lite']}."
    )
    header = ["chunks", "engine", "build s", "chunks/s", "+ save s", "on disk MiB", "peak RSS MiB", "engine MiB",
              "dense p50 / p95 ms", "recall@10", "hybrid p50 / p95 ms", "1st hybrid ms", "hybrid top-10 vs exact FAISS"]
    return [title, "", *_table(header, rows)]


def _faiss_hnsw_note(milvus: dict[str, Any]) -> str:
    """Said only when the FAISS store builds HNSW with other parameters than Milvus's."""
    faiss_hnsw = milvus.get("faiss_hnsw")
    if not faiss_hnsw or faiss_hnsw == milvus["hnsw"]:
        return ""
    return f" (FAISS: M={faiss_hnsw['m']}, efConstruction={faiss_hnsw['ef_construction']}, ef={faiss_hnsw['ef_search']})"


def render_markdown(results: dict[str, Any]) -> str:
    """The results as Markdown tables, as they go into docs/benchmarks.md."""
    out: list[str] = []
    for key, render in (("machine", _machine_lines), ("latency", _latency_lines), ("cold", _cold_lines),
                        ("indexing", _indexing_lines), ("scale", render_scale_table), ("milvus", render_milvus_table)):
        if key in results:
            out += render(results[key])
    return "\n".join(out).rstrip() + "\n"


def plot_scale(scale: dict[str, Any], path: Path, *, title: str | None = None) -> Path:
    """Query latency and memory against corpus size: a colour per index kind, a line style per distribution.

    Left: single-query vector search p50 (circles) and, for `topical`, the whole retrieval step
    without the encoder (squares). Right: what each index kind holds, the chunks with their BM25
    index, and the peak RSS of the benchmark process (`topical`; `random` needs the same memory).
    """
    cases = sorted(scale["cases"], key=lambda c: (c["distribution"], c["n"]))
    kinds = list(dict.fromkeys(kind for case in cases for kind in case["kinds"]))
    colours = {kind: f"C{i}" for i, kind in enumerate(kinds)}
    styles = {"topical": "-", "random": "--"}
    fig, (latency_ax, memory_ax) = _figure()
    for distribution in [d for d in DISTRIBUTIONS if any(c["distribution"] == d for c in cases)]:
        mine = [c for c in cases if c["distribution"] == distribution]
        for kind in kinds:
            points = [(c["n"], c["kinds"][kind]) for c in mine if kind in c["kinds"]]
            sizes = [n for n, _ in points]
            style = {"color": colours[kind], "linestyle": styles[distribution]}
            latency_ax.plot(sizes, [r["search"]["p50_ms"] for _, r in points], marker="o",
                            label=f"{kind}, {distribution}: vector search", **style)
            if distribution == "topical" and all("retrieval" in r for _, r in points):
                latency_ax.plot(sizes, [r["retrieval"]["p50_ms"] for _, r in points], marker="s", alpha=0.5,
                                label=f"{kind}, {distribution}: dense + BM25 + fusion", **style)
            if distribution == "topical":
                memory_ax.plot(sizes, [r["index_mb"] for _, r in points], marker="o", label=f"{kind}: vector index", **style)
        if distribution == "topical":
            sizes = [c["n"] for c in mine]
            if all("text_mb" in c for c in mine):
                memory_ax.plot(sizes, [c["text_mb"] for c in mine], color="black", marker="s", label="chunks + BM25 index")
            memory_ax.plot(sizes, [c["peak_rss_mb"] for c in mine], color="grey", linestyle=":", marker="^",
                           label="peak RSS of the benchmark process")
    latency_ax.axhline(10, color="red", linewidth=0.8, linestyle=":", label="10 ms target at 1M (no encoder)")
    return _save_figure(fig, {latency_ax: ("single-query latency p50, encoder excluded", "ms"), memory_ax: ("memory", "MiB")},
                        path, title)


def plot_milvus(milvus: dict[str, Any], path: Path, *, title: str | None = None) -> Path:
    """Milvus Lite against FAISS, a colour per engine. Left: single-query p50 (line) and p95
    (dotted) of dense search (circles) and hybrid search (squares). Right: peak RSS of the
    engine's process (line) and the part of it the engine added to the inputs (dashed)."""
    cases = sorted(milvus["cases"], key=lambda c: c["n"])
    engines = list(dict.fromkeys(engine for case in cases for engine in case["engines"]))
    fig, (latency_ax, memory_ax) = _figure()
    for i, engine in enumerate(engines):
        points = [(c["n"], c["engines"][engine]) for c in cases if "error" not in c["engines"].get(engine, {"error": "absent"})]
        sizes, label, colour = [n for n, _ in points], ENGINE_LABELS.get(engine, engine), f"C{i}"
        for search, marker in (("dense", "o"), ("hybrid", "s")):
            latency_ax.plot(sizes, [r[search]["p50_ms"] for _, r in points], color=colour, marker=marker,
                            label=f"{label}: {search} p50")
            latency_ax.plot(sizes, [r[search]["p95_ms"] for _, r in points], color=colour, marker=marker, linestyle=":",
                            alpha=0.6, label=f"{label}: {search} p95")
        memory_ax.plot(sizes, [r["peak_rss_mb"] for _, r in points], color=colour, marker="o", label=f"{label}: peak RSS")
        memory_ax.plot(sizes, [r["engine_peak_mb"] for _, r in points], color=colour, marker="^", linestyle="--",
                       label=f"{label}: added to the inputs")
    return _save_figure(fig, {latency_ax: ("single-query latency, encoder excluded", "ms"), memory_ax: ("memory", "MiB")},
                        path, title)


def _figure() -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(1, 2, figsize=(12, 5))


def _save_figure(fig: Any, axes: dict[Any, tuple[str, str]], path: Path, title: str | None) -> Path:
    """Log-log axes titled `name` with `unit`, the figure titled `title`, saved as PNG at `path`."""
    import matplotlib.pyplot as plt

    for ax, (name, unit) in axes.items():
        ax.set(xscale="log", yscale="log", xlabel="chunks in the corpus", ylabel=unit, title=name)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
