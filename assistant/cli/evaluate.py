"""`eval`: answer quality on a question set, or retrieval quality on a BEIR folder."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from assistant.cli import common as cli_common
from assistant.cli.common import (
    DEFAULT_QUESTIONS, EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, PROJECT_ROOT, CliError, load_assistant, names, settings_from,
)


DEFAULT_BANK = PROJECT_ROOT / "tests" / "bank" / "calcium-and-magnesium.jsonl"
SAFETY_MESSAGES = PROJECT_ROOT / "tests" / "bank" / "safety"  # training-only examples for the safety classifiers


def add_parser(sub, common: argparse.ArgumentParser) -> None:
    evaluate = sub.add_parser(
        "eval", parents=[common], help="measure answer quality on the question bank (or another question set)",
        description="Score the test part of the project's question bank (tests/bank/): hit@3, MRR, answered, "
        "refused, quote precision, quotes per answer, follow-ups, emergency and personal-advice notices, verbatim "
        "quotes; exit 1 if a figure is on the wrong side of its bar. --split tune scores the tuning part; --train "
        "fits the answer and safety models on the tuning part; --questions runs a phrase-labelled set instead "
        "(e.g. ../shared/eval/dev.jsonl).",
    )
    evaluate.add_argument("--bank", type=Path, metavar="FILE", help=f"bank file (default: {DEFAULT_BANK.relative_to(PROJECT_ROOT)})")
    evaluate.add_argument("--split", default="test", metavar="NAME",
                          help="bank split to score: test (default), tune or all; for --beir: the qrels split (e.g. train)")
    evaluate.add_argument("--train", action="store_true",
                          help="fit the answer and safety models on the tuning part of every bank in tests/bank/ "
                          "(or of each --bank) and write them to assistant/data/")
    evaluate.add_argument("--questions", type=Path, metavar="FILE",
                          help="instead: a JSONL set with 'expect' phrases, e.g. ../shared/eval/dev.jsonl")
    evaluate.add_argument("--json", action="store_true", help="print the figures as JSON")
    evaluate.add_argument("--show-failures", action="store_true", help="list the questions that missed")
    evaluate.add_argument("--beir", type=Path, metavar="DIR",
                          help="instead: retrieval quality (nDCG@10, Recall@10/100, MRR@10) of dense, lexical and "
                          "hybrid search on a BEIR-format folder (corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv)")
    evaluate.add_argument("--cache", type=Path, metavar="DIR",
                          help="where --beir keeps corpus embeddings (default: cache/ in the project)")


def run(args: argparse.Namespace) -> int:
    if args.beir is not None:
        return run_beir(args)
    if args.questions is not None:
        return run_questions(args)
    return run_train(args) if args.train else run_bank(args)


def _bank_settings(args: argparse.Namespace, bank: Path, workdir: str) -> dict:
    """Settings overrides for a bank: its corpus (--corpus, the project's, or the bank's documents/ folder),
    and, for a corpus other than the configured one, an index in `workdir` so the configured index is untouched."""
    from assistant.evaluation.bank import load_bank

    configured = settings_from(args).corpus_dir
    if args.corpus is not None:
        return {}
    sources = {item["source"] for item in load_bank(bank, split="all")}
    for folder in (configured, bank.parent / "documents"):
        if all((folder / source).is_file() for source in sources):
            if folder == configured or args.index is not None:
                return {"corpus_dir": folder}
            return {"corpus_dir": folder, "index_dir": Path(workdir) / "index"}
    raise CliError(f"the documents of {bank} ({', '.join(sorted(sources))}) are not in the corpus folder; pass --corpus DIR")


def run_bank(args: argparse.Namespace) -> int:
    from assistant.evaluation.bank import BARS, CEILINGS, TARGETS, evaluate_bank, load_bank

    bank = args.bank or DEFAULT_BANK
    if not bank.is_file():
        raise CliError(f"question bank {bank} not found; pass --bank FILE")
    if args.split not in ("test", "tune", "all"):
        raise CliError(f"a bank split is test, tune or all, got {args.split!r}", EXIT_BAD_INPUT)
    items = load_bank(bank, split=args.split)
    reports = {}
    with tempfile.TemporaryDirectory(prefix="assistant-eval-") as workdir:
        overrides = _bank_settings(args, bank, workdir)
        for backend in names(args.backend) if args.backend else [None]:
            bot = load_assistant(args, backend, **overrides)
            try:
                reports[bot.settings.backend] = evaluate_bank(lambda q, h: bot.ask(q, history=h), items,
                                                              corpus_dir=bot.settings.corpus_dir)
            finally:
                bot.close()
    below = sorted({f"{n} ({b})" if len(reports) > 1 else n for b, r in reports.items() for n in r.below_bar()})
    if args.json:
        rows = {b: {**r.figures, "counts": r.counts, "below_bar": r.below_bar()} for b, r in reports.items()}
        print(json.dumps({"bank": str(bank), "split": args.split, **(rows if len(rows) > 1 else next(iter(rows.values())))},
                         sort_keys=True))
        return EXIT_FAILED if below else EXIT_OK
    counts = next(iter(reports.values())).counts
    print(f"bank: {bank} (split {args.split}: {counts['items']} items, {counts['answerable']} answerable, "
          f"{counts['refuse']} to refuse, {counts['follow_ups']} follow-ups, {counts['emergency']} emergencies, "
          f"{counts['personal']} personal)")
    print(f"{'figure':<24}" + "".join(f"{b:>8}" for b in reports) + f"{'bar':>8}  ok{'target':>9}")
    for name in [*BARS, *CEILINGS]:
        values = [r.figures[name] for r in reports.values()]
        ok = all(name not in r.below_bar() for r in reports.values())
        bar = f"≥{BARS[name]:.2f}" if name in BARS else f"≤{CEILINGS[name]:.2f}"
        target = f"{TARGETS[name]:.2f}" if name in TARGETS else ""
        print(f"{name:<24}" + "".join(f"{v:>8.3f}" for v in values) + f"{bar:>8}  {'yes' if ok else 'NO ':<3}{target:>8}")
    if args.show_failures:
        for backend, report in reports.items():
            for f in report.failures:
                print(f"  miss ({backend}): {f}")
    return EXIT_FAILED if below else EXIT_OK


def run_train(args: argparse.Namespace) -> int:
    from contextlib import ExitStack

    from assistant.evaluation.bank import load_bank, load_messages
    from assistant.evaluation.training import bank_source, collect, train_answer_model, train_safety_model
    from assistant.safety import DEFAULT_SAFETY_MODEL
    from assistant.scope import DEFAULT_ANSWER_MODEL

    banks = [args.bank] if args.bank else sorted(DEFAULT_BANK.parent.glob("*.jsonl"))
    samples, embedder = [], None
    with ExitStack() as stack:
        for number, bank in enumerate(banks):
            workdir = stack.enter_context(tempfile.TemporaryDirectory(prefix="assistant-train-"))
            overrides = _bank_settings(args, bank, workdir)
            if args.index is not None and number:  # one --index cannot hold two corpora
                overrides["index_dir"] = Path(workdir) / "index"
            bot = load_assistant(args, **overrides)
            stack.callback(bot.close)
            samples += collect(bot, load_bank(bank, split="tune"))
            embedder = bot.embedder.name
        message_files = sorted(SAFETY_MESSAGES.glob("*.jsonl")) if args.bank is None else []
        messages = load_messages(SAFETY_MESSAGES) if message_files else []
        vectors = bot.embedder.encode([m["question"] for m in messages]) if messages else []
        source = bank_source(banks + message_files)
        answer, answer_report = train_answer_model(samples, embedder=embedder, source=source)
        safety, safety_report = train_safety_model(
            samples, embedder=embedder, source=source,
            messages=[(m["question"], m["kind"], v) for m, v in zip(messages, vectors)])
    DEFAULT_ANSWER_MODEL.write_text(json.dumps(answer.to_json(), sort_keys=True, indent=1) + "\n", encoding="utf-8")
    safety.save(DEFAULT_SAFETY_MODEL)
    print(f"wrote {DEFAULT_ANSWER_MODEL} and {DEFAULT_SAFETY_MODEL} (+ .npz)")
    print(json.dumps({"answer": answer_report, "safety": safety_report}, indent=1, sort_keys=True))
    return EXIT_OK


def run_beir(args: argparse.Namespace) -> int:
    from assistant.evaluation.beir import DEFAULT_CACHE_DIR, DEFAULT_VARIANTS, BeirFormatError, evaluate_beir, load_beir

    try:
        import ranx  # noqa: F401
    except ImportError as exc:
        raise CliError("eval --beir needs ranx: pip install -e '.[eval]'") from exc
    try:
        dataset = load_beir(args.beir, args.split)
    except (BeirFormatError, OSError) as exc:
        raise CliError(str(exc)) from exc
    settings = settings_from(args)
    report = evaluate_beir(dataset, cli_common.make_embedder(settings), settings, variants=DEFAULT_VARIANTS,
                           cache_dir=args.cache or DEFAULT_CACHE_DIR, show_progress=not args.quiet and sys.stderr.isatty())
    if args.json:
        print(json.dumps({"beir": str(args.beir), "split": args.split, **report.as_json()}, sort_keys=True))
        return EXIT_OK
    print(f"BEIR {args.beir}, split {args.split}: {report.queries} queries, {report.documents} documents, "
          f"{report.chunks} chunks ({report.seconds:.1f} s, {report.embedded} texts embedded)")
    width = max(map(len, report.rows)) + 2
    print(f"{'retrieval':<{width}}{'nDCG@10':>8}{'R@10':>8}{'R@100':>8}{'MRR@10':>8}")
    for name, figures in report.rows.items():
        print(f"{name:<{width}}" + "".join(f"{figures[m]:>8.3f}" for m in ("ndcg@10", "recall@10", "recall@100", "mrr@10")))
    product = ", ".join(f"{k} {v}" for k, v in report.product.items())
    print(f"product = the assistant's hybrid_search with its settings ({product}); each variant changes what its "
          "name says; dense and lexical are the product store's own searches; a document ranks as its best chunk")
    return EXIT_OK


def run_questions(args: argparse.Namespace) -> int:
    from assistant.evaluation.questions import BARS, evaluate, load_questions

    path = args.questions or next((p for p in DEFAULT_QUESTIONS if p.exists()), None)
    if path is None or not path.exists():
        raise CliError(f"question set {path} not found; pass --questions FILE")
    items = load_questions(path)
    backends = names(args.backend) if args.backend else [None]
    reports = {}
    for backend in backends:
        bot = load_assistant(args, backend)
        try:
            reports[bot.settings.backend] = evaluate(lambda q, h: bot.ask(q, history=h), items, corpus_dir=bot.settings.corpus_dir)
        finally:
            bot.close()  # a Milvus Lite file serves one client at a time
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
