"""BEIR figures of the product and of any number of `Settings` variants: how docs/retrieval-quality.md was tuned.

    python benchmarks/beir_variants.py --split train --vary alpha=0.5,0.6,0.7,0.8,0.9 --vary neighbour_weight=0,0.3
    python benchmarks/beir_variants.py --split test --variant alpha=0.7 --variant fusion=rrf,rrf_k=5 --json

Runs `assistant.evaluation.beir.evaluate_beir` (the product's indexing and `hybrid_search`, one
row per variant) on a BEIR folder. `--vary NAME=V1,V2,…` (repeatable) adds every combination of
the values given; `--variant NAME=V,NAME=V` adds one variant. Variants that only change retrieval
share one store; a chunking or index-kind variant builds its own (its new texts are embedded,
then cached). Prints a Markdown table, or JSON. `--compare NAME` adds, for every row, the p-value
of a paired t-test of its nDCG@10 against row NAME (ranx `compare`, per query).
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def parse_value(text: str) -> Any:
    """ "0.7" → 0.7, "30" → 30, "rrf" → "rrf"."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_variants(vary: list[str], single: list[str]) -> list[dict[str, Any]]:
    grids = []
    for spec in vary:
        name, _, values = spec.partition("=")
        grids.append([(name, parse_value(v)) for v in values.split(",") if v])
    variants = [dict(combination) for combination in itertools.product(*grids)] if grids else []
    for spec in single:
        variants.append({name: parse_value(value) for name, _, value in (item.partition("=") for item in spec.split(","))})
    return variants


def paired_p_values(qrels: dict, runs: dict, against: str) -> dict[str, float]:
    """p-value of a paired Student's t-test on per-query nDCG@10, each row against row `against` (ranx `compare`)."""
    import warnings

    from ranx import Qrels, Run, compare

    if against not in runs:
        raise SystemExit(f"--compare {against!r}: no such row; rows are {', '.join(runs)}")
    judged = Qrels.from_dict({q: dict(d) for q, d in qrels.items() if d})
    names = [against, *[name for name in runs if name != against]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = compare(judged, [Run.from_dict({q: d for q, d in runs[n].items() if d}, name=n) for n in names],
                         ["ndcg@10"], stat_test="student", make_comparable=True, rounding_digits=4)
    return {name: float(report.comparisons[(against, name)]["ndcg@10"]["p_value"]) for name in names[1:]}


def main() -> int:
    from assistant.embedding import embedder_for
    from assistant.evaluation.beir import DEFAULT_CACHE_DIR, evaluate_beir, load_beir
    from assistant.settings import Settings

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--beir", type=Path, default=ROOT.parent / "shared" / "eval" / "scifact")
    parser.add_argument("--split", default="train")
    parser.add_argument("--vary", action="append", default=[], metavar="NAME=V1,V2")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=V,NAME=V")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE_DIR)
    parser.add_argument("--compare", metavar="ROW", help="paired t-test of every row's nDCG@10 against this row")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s", stream=sys.stderr)

    settings = Settings()
    dataset = load_beir(args.beir, args.split)
    report = evaluate_beir(dataset, embedder_for(settings), settings,
                           variants=parse_variants(args.vary, args.variant), cache_dir=args.cache,
                           show_progress=sys.stderr.isatty(), keep_runs=args.compare is not None)
    p_values = paired_p_values(dataset.qrels, report.runs, args.compare) if args.compare else {}
    if args.json:
        print(json.dumps({"beir": str(args.beir), "split": args.split, **report.as_json(), "p_values": p_values},
                         sort_keys=True))
        return 0
    print(f"{args.beir.name} {args.split}: {report.queries} queries, {report.documents} documents, {report.chunks} chunks; "
          f"{report.seconds:.0f} s, {report.embedded} texts embedded in {report.embed_seconds or 0:.0f} s")
    extra = f" p vs {args.compare} |" if p_values else ""
    print(f"\n| retrieval | nDCG@10 | R@10 | R@100 | MRR@10 |{extra}\n|---|---:|---:|---:|---:|" + ("---:|" if extra else ""))
    for name, figures in report.rows.items():
        p = f" {p_values[name]:.3f} |" if name in p_values else (" – |" if extra else "")
        print(f"| {name} | " + " | ".join(f"{figures[m]:.4f}" for m in ("ndcg@10", "recall@10", "recall@100", "mrr@10")) + f" |{p}")
    print(f"\nproduct: {report.product}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
