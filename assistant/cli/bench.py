"""`bench`: speed, memory and scale figures (printed, never asserted)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from assistant.cli.common import (
    DEFAULT_QUESTIONS, EXIT_BAD_INPUT, EXIT_OK, PROJECT_ROOT, CliError, names, reporter, settings_from,
)

DEFAULT_BENCH_BEIR = PROJECT_ROOT.parent / "shared" / "eval" / "scifact"


def add_parser(sub, common: argparse.ArgumentParser) -> None:
    bench = sub.add_parser(
        "bench", parents=[common], help="measure speed, memory and scale (prints figures; never fails on them)",
        description="Time warm answers, cold start and indexing against bare model encoding, and FAISS search "
        "on synthetic corpora of growing size; with --only milvus, Milvus Lite against FAISS on the same "
        "synthetic corpora. Print Markdown tables (or JSON). Without --index, the index is built in a temporary folder.",
    )
    bench.add_argument("--only", default="latency,cold,indexing,scale", metavar="PARTS",
                       help="comma-separated parts to run: latency, cold, indexing, scale, milvus "
                       "(default: all but milvus, which takes long: e.g. --only milvus --sizes 100000,1000000)")
    bench.add_argument("--sizes", default="10000,100000,1000000", metavar="N,N",
                       help="scale, milvus: corpus sizes in chunks (default: 10000,100000,1000000)")
    bench.add_argument("--distributions", default="topical", metavar="NAMES",
                       help="scale: synthetic vectors, 'topical' (like real embeddings) and/or 'random' (worst case)")
    bench.add_argument("--kinds", default="flat,hnsw", metavar="KINDS", help="scale: FAISS index kinds to build, as the engine builds them or with HNSW parameters of their own, "
                       "e.g. flat,hnsw,hnsw:m=32:efc=40:ef=128 (default: flat,hnsw)")
    bench.add_argument("--queries", type=int, default=200, metavar="N", help="scale, milvus: queries per corpus (default: 200)")
    bench.add_argument("--file-chunks", type=int, default=1000, metavar="N",
                       help="milvus: chunks per synthetic file written with one store.add call (default: 1000)")
    bench.add_argument("--questions", type=Path, metavar="FILE",
                       help="latency: JSONL question set (default: ../shared/eval/dev.jsonl, else tests/fixtures/questions.jsonl)")
    bench.add_argument("--rounds", type=int, default=3, metavar="N", help="latency, indexing: rounds over the questions or builds (default: 3)")
    bench.add_argument("--runs", type=int, default=5, metavar="N", help="cold: processes of each kind (default: 5)")
    bench.add_argument("--beir", type=Path, metavar="DIR",
                       help="BEIR folder whose documents are indexed and whose words make the scale texts "
                       "(default: ../shared/eval/scifact when present, else --corpus)")
    bench.add_argument("--docs", type=int, default=100, metavar="N", help="indexing: documents taken from --beir (default: 100)")
    bench.add_argument("--json", action="store_true", help="print all figures as JSON")
    bench.add_argument("--plot", type=Path, metavar="PNG", help="scale, milvus: also plot latency and memory against size "
                       "into PNG (with both parts, the milvus plot goes to PNG's name ending in -milvus)")
    bench.add_argument("--from-json", type=Path, nargs="+", metavar="FILE",
                       help="run nothing: render saved --json output, e.g. to rebuild the docs (a later file's "
                       "part replaces an earlier one's; scale and milvus cases add up, one per distribution and size)")


def _bench_results(args: argparse.Namespace) -> dict:
    import tempfile

    from assistant.bench import BenchOptions, BenchSession

    try:
        sizes = [int(size.replace("_", "")) for size in names(args.sizes)]
    except ValueError as exc:
        raise CliError(f"--sizes takes whole numbers separated by commas, got {args.sizes!r}", EXIT_BAD_INPUT) from exc
    beir = args.beir if args.beir is not None else DEFAULT_BENCH_BEIR if DEFAULT_BENCH_BEIR.is_dir() else None
    say = reporter(args)
    try:
        options = BenchOptions(
            parts=names(args.only), questions=args.questions or next((p for p in DEFAULT_QUESTIONS if p.exists()), None),
            rounds=args.rounds, runs=args.runs, beir=beir, indexing_docs=args.docs, sizes=sizes,
            distributions=names(args.distributions), kinds=names(args.kinds), queries=args.queries,
            file_chunks=args.file_chunks, show_progress=not args.quiet and sys.stderr.isatty(),
            on_case=lambda case: say(f"bench: {'milvus' if 'engines' in case else 'scale'}, {case['distribution']} "
                                     f"{case['n']:,} chunks done"),
        )
    except ValueError as exc:
        raise CliError(str(exc), EXIT_BAD_INPUT) from exc
    settings = settings_from(args)
    with tempfile.TemporaryDirectory(prefix="assistant-bench-") as tmp:
        if args.index is None:
            settings = settings.model_copy(update={"index_dir": Path(tmp) / "index"})
        return BenchSession(settings, options, Path(tmp)).run(on_part=lambda part: say(f"bench: {part}..."))


def run(args: argparse.Namespace) -> int:
    from assistant.bench import merge_results, plot_milvus, plot_scale, render_markdown

    if args.from_json:
        runs = []
        for path in args.from_json:
            try:
                runs.append(json.loads(path.read_text(encoding="utf-8")))
            except (OSError, ValueError) as exc:
                raise CliError(f"cannot read bench results from {path}: {exc}", EXIT_BAD_INPUT) from exc
        results = merge_results(runs)
    else:
        results = _bench_results(args)
    machine = results.get("machine", {})
    title = f"{machine.get('cpu', '?')}, {machine.get('cores', '?')} cores, {machine.get('ram_gib', '?')} GiB RAM"
    if args.plot is not None and "scale" in results:
        plot_scale(results["scale"], args.plot, title=f"{title}; solid: topical vectors, dashed: random vectors")
    if args.plot is not None and "milvus" in results:
        path = args.plot.with_name(f"{args.plot.stem}-milvus{args.plot.suffix}") if "scale" in results else args.plot
        plot_milvus(results["milvus"], path, title=f"Milvus Lite vs FAISS, same topical vectors; {title}")
    print(json.dumps(results, sort_keys=True, indent=2) if args.json else render_markdown(results), end="" if not args.json else "\n")
    return EXIT_OK
