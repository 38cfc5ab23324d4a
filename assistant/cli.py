"""Command line: `python -m assistant ask|index|verify|eval|bench`.

Only this module (and app.py) prints. Library errors become a one-line message and an exit
status: 2 for input the assistant rejects, 1 for anything else; never a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Iterator, Sequence

from assistant.answer import DISCLAIMER

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_QUESTIONS = (PROJECT_ROOT.parent / "shared" / "eval" / "dev.jsonl", PROJECT_ROOT / "tests" / "fixtures" / "questions.jsonl")
DEFAULT_BENCH_BEIR = PROJECT_ROOT.parent / "shared" / "eval" / "scifact"

DESCRIPTION = f"""\
Ask questions about the documents in a corpus folder and get answers quoted word for word
from them, each quote with its source file, section and character offsets.

{DISCLAIMER}
"""

EPILOG = """\
examples:
  python -m assistant ask "Which magnesium form is best for sleep?"
  python -m assistant ask --json "What foods are high in magnesium?"
  printf 'What is whitlockite?\\nHow bioavailable is it?\\n' | python -m assistant ask --json
  python -m assistant index --corpus my-docs/ --index my-index/
  python -m assistant verify --backend milvus
  python -m assistant eval
  python -m assistant eval --backend faiss,milvus
  ASSISTANT_BACKEND=milvus python -m assistant ask "Which foods contain magnesium?"
  python -m assistant eval --beir ../shared/eval/scifact --split test
  python -m assistant bench --only latency,cold,indexing

exit status: 0 answered (also "not covered"), 1 failure (or eval under its bar), 2 rejected input.
Every setting can also be given as an environment variable ASSISTANT_<NAME>, e.g. ASSISTANT_CORPUS_DIR.
"""


class CliError(Exception):
    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--corpus", type=Path, metavar="DIR", help="folder of .txt/.md documents (default: corpus/)")
    common.add_argument("--index", type=Path, metavar="DIR", help="folder for the index (default: index/)")
    common.add_argument("--backend", metavar="NAME", help="where chunks live: faiss (default) or milvus "
                        "(ASSISTANT_MILVUS_URI, docs/scale-out.md); eval takes a list, e.g. faiss,milvus")
    common.add_argument("-q", "--quiet", action="store_true", help="print no progress or rebuild messages")
    common.add_argument("-v", "--verbose", action="store_true", help="log what happens on stderr")

    parser = argparse.ArgumentParser(
        prog="python -m assistant",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    ask = sub.add_parser(
        "ask",
        parents=[common],
        help="answer a question (or one question per line from stdin)",
        description="Answer QUESTION with quotes from the corpus. Without QUESTION, read one question per "
        "line from stdin; each line is a follow-up of the ones before it.",
    )
    ask.add_argument("question", nargs="?", help="the question; omit it to read questions from stdin")
    ask.add_argument("--json", action="store_true", help="print one JSON object per answer")

    index = sub.add_parser(
        "index", parents=[common], help="rebuild the index now (it also rebuilds itself when stale)",
        description="faiss: rebuild the index in --index now. milvus: bring the collection in line with the "
        "corpus (index new and changed files, drop removed ones, finish an interrupted run); --force drops "
        "the collection and rebuilds it.",
    )
    index.add_argument("--json", action="store_true", help="print what the store holds as JSON")
    index.add_argument("--force", action="store_true", help="milvus: drop the collection and index everything again")

    verify = sub.add_parser(
        "verify", parents=[common], help="check every stored chunk against the corpus files",
        description="Check that each indexed file is in the corpus folder unchanged and that every stored "
        "chunk is exactly its span of the file (source_text[start:end]); exit 1 on any difference. Run it "
        "where the files are when the serving machine does not hold them.",
    )
    verify.add_argument("--json", action="store_true", help="print the report as JSON")

    evaluate = sub.add_parser(
        "eval", parents=[common], help="measure answer quality on a question set",
        description="Run a JSONL question set and print hit@3, MRR, scope decisions, follow-ups and quote "
        "exactness against their bars; exit 1 if any is under its bar.",
    )
    evaluate.add_argument("--questions", type=Path, metavar="FILE",
                          help="JSONL question set (default: ../shared/eval/dev.jsonl, else tests/fixtures/questions.jsonl)")
    evaluate.add_argument("--json", action="store_true", help="print the figures as JSON")
    evaluate.add_argument("--show-failures", action="store_true", help="list the questions that missed")
    evaluate.add_argument("--beir", type=Path, metavar="DIR",
                          help="instead: retrieval quality (nDCG@10, Recall@10/100, MRR@10) of dense, lexical and "
                          "hybrid search on a BEIR-format folder (corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv)")
    evaluate.add_argument("--split", default="test", metavar="NAME", help="qrels split for --beir (default: test)")
    evaluate.add_argument("--cache", type=Path, metavar="DIR",
                          help="where --beir keeps corpus embeddings (default: cache/ in the project)")
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
    return parser


def _settings(args: argparse.Namespace, backend: str | None = None):
    from pydantic import ValidationError

    from assistant.settings import Settings

    overrides = {}
    if args.corpus is not None:
        overrides["corpus_dir"] = args.corpus
    if args.index is not None:
        overrides["index_dir"] = args.index
    backend = backend or getattr(args, "backend", None)
    if backend is not None:
        overrides["backend"] = backend
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors())
        raise CliError(f"invalid settings: {problems}", EXIT_BAD_INPUT) from exc


def _load(args: argparse.Namespace, backend: str | None = None):
    from assistant import Assistant

    settings = _settings(args, backend)
    if not settings.corpus_dir.is_dir():
        raise CliError(f"corpus folder {settings.corpus_dir} does not exist; pass --corpus DIR or set ASSISTANT_CORPUS_DIR")
    return Assistant.load(settings, on_rebuild=_reporter(args), show_progress=not args.quiet and sys.stderr.isatty())


def _reporter(args: argparse.Namespace):
    """Rebuild messages go to stderr unless --quiet."""
    if args.quiet:
        return lambda message: None
    return lambda message: print(message, file=sys.stderr, flush=True)


def render_text(answer) -> str:
    lines = [answer.answer, ""]
    if answer.citations:
        lines.append("Sources:")
        for c in answer.citations:
            lines.append(f"  [{c.n}] {c.source}, section \"{c.section}\", characters {c.start}-{c.end}")
        lines.append("")
    lines.append(answer.disclaimer)
    return "\n".join(lines)


def _stdin_lines() -> Iterator[tuple[int, str | None]]:
    """(line number, text or None when the line is not valid UTF-8)."""
    for number, raw in enumerate(sys.stdin.buffer, start=1):
        try:
            yield number, raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError:
            yield number, None


def cmd_ask(args: argparse.Namespace) -> int:
    from assistant.assistant import InvalidQuestion, validate_question
    from assistant.settings import Settings

    if args.question is not None:  # reject bad input before paying for the model
        try:
            validate_question(args.question, max_chars=Settings().max_question_chars)
        except InvalidQuestion as exc:
            raise CliError(str(exc), EXIT_BAD_INPUT) from exc
    bot = _load(args)
    if args.question is not None:
        answer = bot.ask(args.question)
        print(answer.model_dump_json() if args.json else render_text(answer))
        return EXIT_OK

    status = EXIT_OK
    history: list[str] = []
    for number, line in _stdin_lines():
        if line is not None and not line.strip():
            continue
        try:
            if line is None:
                raise InvalidQuestion("the line is not valid UTF-8 text")
            answer = bot.ask(line, history=history)
        except InvalidQuestion as exc:
            status = EXIT_BAD_INPUT
            message = f"line {number}: {exc}"
            if args.json:
                print(json.dumps({"error": message, "disclaimer": DISCLAIMER}, ensure_ascii=False), flush=True)
            print(f"error: {message}\n{DISCLAIMER}", file=sys.stderr, flush=True)
            continue
        history.append(line)
        print(answer.model_dump_json() if args.json else render_text(answer) + "\n", flush=True)
    return status


def cmd_index(args: argparse.Namespace) -> int:
    from assistant.embedding import get_embedder
    from assistant.stores import open_store

    settings = _settings(args)
    if not settings.corpus_dir.is_dir():
        raise CliError(f"corpus folder {settings.corpus_dir} does not exist; pass --corpus DIR or set ASSISTANT_CORPUS_DIR")
    embedder = get_embedder(settings.model, device=settings.device)
    store = open_store(
        settings, embedder, force=settings.backend == "faiss" or args.force, on_rebuild=_reporter(args),
        show_progress=not args.quiet and sys.stderr.isatty(),
    )
    stats = store.stats()
    if args.json:
        print(json.dumps({**getattr(store, "manifest", {}), **stats}, sort_keys=True, indent=2, default=str))
    else:
        where = stats.get("uri", settings.index_dir)
        print(f"indexed {stats['chunks']} chunks from {stats['files']} files into {where} "
              f"({stats['backend']}, {stats['index_kind']} index, model {stats['model']})")
    return EXIT_OK


def cmd_verify(args: argparse.Namespace) -> int:
    from assistant.embedding import get_embedder
    from assistant.stores import open_store
    from assistant.verify import verify_store

    settings = _settings(args).model_copy(update={"sync_on_load": False})
    if not settings.corpus_dir.is_dir():
        raise CliError(f"corpus folder {settings.corpus_dir} does not exist; pass --corpus DIR or set ASSISTANT_CORPUS_DIR")
    store = open_store(settings, get_embedder(settings.model, device=settings.device), on_rebuild=_reporter(args))
    report = verify_store(store, settings.corpus_dir)
    if args.json:
        print(json.dumps({"backend": settings.backend, "files": report.files, "chunks": report.chunks,
                          "ok": report.ok, "problems": report.problems}, sort_keys=True))
    else:
        print(f"{settings.backend}: {report.chunks} chunks of {report.files} files checked against {settings.corpus_dir}: "
              + ("all exact" if report.ok else f"{len(report.problems)} problems"))
        for line in report.problems:
            print(f"  {line}")
    return EXIT_OK if report.ok else EXIT_FAILED


def cmd_eval_beir(args: argparse.Namespace) -> int:
    from assistant.beir import DEFAULT_CACHE_DIR, BeirFormatError, evaluate_beir, load_beir
    from assistant.embedding import get_embedder

    try:
        import ranx  # noqa: F401
    except ImportError as exc:
        raise CliError("eval --beir needs ranx: pip install -e '.[eval]'") from exc
    try:
        dataset = load_beir(args.beir, args.split)
    except (BeirFormatError, OSError) as exc:
        raise CliError(str(exc)) from exc
    settings = _settings(args)
    report = evaluate_beir(dataset, get_embedder(settings.model, device=settings.device),
                           cache_dir=args.cache or DEFAULT_CACHE_DIR,
                           show_progress=not args.quiet and sys.stderr.isatty())
    if args.json:
        print(json.dumps({"beir": str(args.beir), "split": args.split, **report.as_json()}, sort_keys=True))
        return EXIT_OK
    print(f"BEIR {args.beir}, split {args.split}: {report.queries} queries, {report.documents} documents "
          f"({report.seconds:.1f} s)")
    width = max(map(len, [*report.figures, *report.variants])) + 2
    print(f"{'method':<{width}}{'nDCG@10':>8}{'R@10':>8}{'R@100':>8}{'MRR@10':>8}")
    for method, figures in [*report.figures.items(), *report.variants.items()]:
        print(f"{method:<{width}}" + "".join(f"{figures[m]:>8.3f}" for m in ("ndcg@10", "recall@10", "recall@100", "mrr@10")))
    print(f"hybrid = {report.hybrid}; the rows below it are other fusions, for comparison")
    return EXIT_OK


def cmd_eval(args: argparse.Namespace) -> int:
    if args.beir is not None:
        return cmd_eval_beir(args)
    from assistant.evaluation import BARS, evaluate, load_questions

    path = args.questions or next((p for p in DEFAULT_QUESTIONS if p.exists()), None)
    if path is None or not path.exists():
        raise CliError(f"question set {path} not found; pass --questions FILE")
    items = load_questions(path)
    backends = _names(args.backend) if args.backend else [None]
    reports = {}
    for backend in backends:
        bot = _load(args, backend)
        reports[bot.settings.backend] = evaluate(lambda q, h: bot.ask(q, history=h), items, corpus_dir=bot.settings.corpus_dir)
        del bot  # a Milvus Lite file serves one client at a time
    below = sorted({f"{name} ({b})" if len(reports) > 1 else name for b, r in reports.items() for name in r.below_bar()})
    if args.json:
        rows = {b: {**r.figures, "counts": r.counts, "below_bar": r.below_bar()} for b, r in reports.items()}
        print(json.dumps({"questions": str(path), **(rows if len(rows) > 1 else next(iter(rows.values())))}, sort_keys=True))
        return EXIT_FAILED if below else EXIT_OK
    counts = next(iter(reports.values())).counts
    print(f"question set: {path} ({len(items)} items: {counts['in_scope']} in scope, "
          f"{counts['out_of_scope']} out of scope, {counts['follow_ups']} follow-ups)")
    print(f"{'figure':<22}" + "".join(f"{b:>8}" for b in reports) + f"{'bar':>8}  ok")
    for name, bar in BARS.items():
        values = [r.figures[name] for r in reports.values()]
        ok = all(name not in r.below_bar() for r in reports.values())
        print(f"{name:<22}" + "".join(f"{v:>8.3f}" for v in values) + f"{bar:>8.2f}  {'yes' if ok else 'NO'}")
    if args.show_failures:
        for backend, report in reports.items():
            for f in report.failures:
                print(f"  miss ({backend}): {f}")
    return EXIT_FAILED if below else EXIT_OK


def _names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _bench_results(args: argparse.Namespace) -> dict:
    import tempfile

    from assistant.bench import BenchOptions, BenchSession

    try:
        sizes = [int(size.replace("_", "")) for size in _names(args.sizes)]
    except ValueError as exc:
        raise CliError(f"--sizes takes whole numbers separated by commas, got {args.sizes!r}", EXIT_BAD_INPUT) from exc
    beir = args.beir if args.beir is not None else DEFAULT_BENCH_BEIR if DEFAULT_BENCH_BEIR.is_dir() else None
    say = _reporter(args)
    try:
        options = BenchOptions(
            parts=_names(args.only), questions=args.questions or next((p for p in DEFAULT_QUESTIONS if p.exists()), None),
            rounds=args.rounds, runs=args.runs, beir=beir, indexing_docs=args.docs, sizes=sizes,
            distributions=_names(args.distributions), kinds=_names(args.kinds), queries=args.queries,
            file_chunks=args.file_chunks, show_progress=not args.quiet and sys.stderr.isatty(),
            on_case=lambda case: say(f"bench: {'milvus' if 'engines' in case else 'scale'}, {case['distribution']} "
                                     f"{case['n']:,} chunks done"),
        )
    except ValueError as exc:
        raise CliError(str(exc), EXIT_BAD_INPUT) from exc
    settings = _settings(args)
    with tempfile.TemporaryDirectory(prefix="assistant-bench-") as tmp:
        if args.index is None:
            settings = settings.model_copy(update={"index_dir": Path(tmp) / "index"})
        return BenchSession(settings, options, Path(tmp)).run(on_part=lambda part: say(f"bench: {part}..."))


def cmd_bench(args: argparse.Namespace) -> int:
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


def _configure_logging(args: argparse.Namespace) -> None:
    level = logging.INFO if getattr(args, "verbose", False) else logging.ERROR if getattr(args, "quiet", False) else logging.WARNING
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr)
    for noisy in ("faiss", "faiss.loader", "bm25s", "sentence_transformers", "transformers", "httpx"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args)
    commands = {"ask": cmd_ask, "index": cmd_index, "verify": cmd_verify, "eval": cmd_eval, "bench": cmd_bench}
    try:
        return commands[args.command](args)
    except CliError as exc:
        print(f"error: {exc}\n{DISCLAIMER}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print(f"interrupted\n{DISCLAIMER}", file=sys.stderr)
        return 130
    except Exception as exc:  # the user gets a message, not a traceback; -v logs the details
        logging.getLogger(__name__).debug("unexpected error", exc_info=True)
        print(f"error: {type(exc).__name__}: {exc}\n{DISCLAIMER}", file=sys.stderr)
        return EXIT_FAILED
