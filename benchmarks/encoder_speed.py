"""Encoder speed: sentence-transformers on PyTorch against its ONNX export (fp32, int8) in ONNX Runtime.

Prints, for each encoder: one-question encode p50/p95 (warm), throughput with 32 questions in one
call, new process to first vector (with an existing export), and the time to make each export.
Measurements, not tests: nothing here asserts a target.

    .venv/bin/python benchmarks/encoder_speed.py                 # ~3 min on 2 cores
    .venv/bin/python benchmarks/encoder_speed.py --rounds 5 --runs 7 --cache-dir /tmp/onnx-cache

Each warm measurement runs in a process of its own (PyTorch's and ONNX Runtime's thread pools would
otherwise compete), and the processes take turns, round after round, in an order that alternates, so
that load from other processes falls on all three alike. Figures are medians over rounds, with the best
round in brackets (the least disturbed one). The machine and its load average are printed with them: on a
shared machine, read them as ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from assistant import bench
from assistant.settings import BUNDLED_MODEL

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = ROOT / "tests" / "fixtures" / "questions.jsonl"
ENCODERS = ("torch", "onnx", "onnx-int8")

#: A new process: import, load (the export exists), encode one question. What a CLI call pays first.
COLD_SCRIPTS = {
    "torch": (
        "import sys\n"
        "from assistant.embedding import SentenceTransformerEmbedder\n"
        "SentenceTransformerEmbedder(sys.argv[1]).encode([sys.argv[3]])\n"
    ),
    "onnx": (
        "import sys\nfrom pathlib import Path\n"
        "from assistant.encoders.onnx import OnnxEmbedder\n"
        "OnnxEmbedder(sys.argv[1], cache_dir=Path(sys.argv[2])).encode([sys.argv[3]])\n"
    ),
    "onnx-int8": (
        "import sys\nfrom pathlib import Path\n"
        "from assistant.encoders.onnx import OnnxEmbedder\n"
        "OnnxEmbedder(sys.argv[1], cache_dir=Path(sys.argv[2]), quantize=True).encode([sys.argv[3]])\n"
    ),
}


#: The ONNX cold start in phases (same steps as `OnnxEmbedder.__init__`, then one encode), as JSON.
PHASES_SCRIPT = """\
import time
t0 = time.perf_counter()
import json, sys
from pathlib import Path
from assistant.encoders import onnx as m
t1 = time.perf_counter()
import onnxruntime, tokenizers
t2 = time.perf_counter()
export = m.open_export(sys.argv[1], Path(sys.argv[2]), quantize=sys.argv[3] == "int8")
t3 = time.perf_counter()
runtime = m.Runtime(export.onnx_model, export.tokenizer_json, export.manifest["pipeline"], threads=m.physical_cores())
t4 = time.perf_counter()
runtime.encode_batch([sys.argv[4]])
t5 = time.perf_counter()
print(json.dumps({"python + assistant modules + numpy": t1 - t0, "import onnxruntime + tokenizers": t2 - t1,
                  "read + sha256 export, stat source": t3 - t2, "ONNX Runtime session": t4 - t3,
                  "first encode": t5 - t4}))
"""


def phases(cache_dir: Path, question: str, runs: int) -> dict[str, dict[str, float]]:
    """Median seconds of each cold-start phase of the ONNX encoders (process start not included)."""
    env = {**os.environ, **bench.QUIET_ENV}
    figures = {}
    for variant in ("fp32", "int8"):
        samples = []
        for _ in range(runs):
            command = [sys.executable, "-c", PHASES_SCRIPT, BUNDLED_MODEL, str(cache_dir), variant, question]
            proc = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
            samples.append(json.loads(proc.stdout))
        figures[variant] = {k: float(np.median([s[k] for s in samples])) for k in samples[0]}
    return figures


def questions() -> list[str]:
    return [question for question, _ in bench.latency_items(QUESTIONS)]


def make_embedder(encoder: str, cache_dir: Path, threads: int | None = None):
    if encoder == "torch":
        from assistant.embedding import SentenceTransformerEmbedder

        return SentenceTransformerEmbedder(BUNDLED_MODEL)
    from assistant.encoders.onnx import OnnxEmbedder

    return OnnxEmbedder(BUNDLED_MODEL, cache_dir=cache_dir, quantize=encoder == "onnx-int8", threads=threads)


def worker(encoder: str, cache_dir: Path, passes: int, threads: int | None) -> dict:
    """Warm figures of one encoder, measured in this process: printed as JSON for the parent."""
    embedder = make_embedder(encoder, cache_dir, threads)
    items = questions()
    batch = (items * 2)[:32]
    for question in items[:10]:
        embedder.encode([question])
    single = []
    for _ in range(passes):
        for question in items:
            started = time.perf_counter()
            embedder.encode([question])
            single.append(time.perf_counter() - started)
    embedder.encode(batch, batch_size=32)
    rates = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(4):
            embedder.encode(batch, batch_size=32)
        rates.append(4 * len(batch) / (time.perf_counter() - started))
    return {"name": embedder.name, "single": bench.summarize(single), "batch32_qps": float(np.median(rates))}


def run_worker(encoder: str, cache_dir: Path, passes: int, threads: int | None) -> dict:
    env = {**os.environ, **bench.QUIET_ENV}
    command = [sys.executable, __file__, "--worker", encoder, "--cache-dir", str(cache_dir), "--passes", str(passes)]
    proc = subprocess.run(
        command + (["--threads", str(threads)] if threads else []),
        capture_output=True, text=True, env=env, check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{encoder} worker failed: {proc.stderr.strip()[-800:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def time_exports(cache_dir: Path) -> dict[str, dict]:
    """Wall time of a new process that finds no export and makes one, and what the manifest recorded."""
    env = {**os.environ, **bench.QUIET_ENV}
    figures = {}
    for encoder in ("onnx", "onnx-int8"):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", COLD_SCRIPTS[encoder], BUNDLED_MODEL, str(cache_dir), "warm up"],
                       check=True, env=env, stderr=subprocess.DEVNULL)
        wall = time.perf_counter() - started
        manifest = next(
            json.loads(p.read_text()) for p in cache_dir.glob("*/manifest.json")
            if json.loads(p.read_text())["variant"] == ("int8" if encoder == "onnx-int8" else "fp32")
        )
        figures[encoder] = {
            "process_s": round(wall, 2), "export_s": manifest["export_seconds"],
            "min_cosine": (manifest["parity"] or {}).get("min_cosine"),
            "onnx_mb": round(sum(f.stat().st_size for f in cache_dir.glob("*/model.onnx")
                                 if f.parent.name.endswith("int8" if encoder == "onnx-int8" else "fp32")) / 2**20, 1),
        }
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="warm-process rounds (each encoder once per round)")
    parser.add_argument("--passes", type=int, default=4, help="passes over the questions per warm process")
    parser.add_argument("--runs", type=int, default=5, help="cold-start processes per encoder")
    parser.add_argument("--cache-dir", type=Path, help="export cache to reuse (default: a new temporary one)")
    parser.add_argument("--threads", type=int,
                        help="ONNX Runtime intra-op threads of the warm runs (default: physical cores)")
    parser.add_argument("--worker", choices=ENCODERS, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        print(json.dumps(worker(args.worker, args.cache_dir, args.passes, args.threads)))
        return

    machine = bench.machine_info()
    with tempfile.TemporaryDirectory(prefix="onnx-bench-") as tmp:
        cache_dir = args.cache_dir or Path(tmp)
        exports = time_exports(cache_dir) if args.cache_dir is None else {}

        rounds: dict[str, list[dict]] = {e: [] for e in ENCODERS}
        for r in range(args.rounds):
            for encoder in ENCODERS if r % 2 == 0 else ENCODERS[::-1]:
                rounds[encoder].append(run_worker(encoder, cache_dir, args.passes, args.threads))

        question = questions()[0]
        commands = {
            e: [sys.executable, "-c", COLD_SCRIPTS[e], BUNDLED_MODEL, str(cache_dir), question] for e in ENCODERS
        }
        cold = bench.time_processes(commands, runs=args.runs, env={**os.environ, **bench.QUIET_ENV})
        steps = phases(cache_dir, question, args.runs)
    load_after = [round(x, 2) for x in os.getloadavg()]

    from assistant.encoders.onnx import physical_cores

    print(f"machine: {machine['cpu']}, {machine['cores']} logical cores ({physical_cores()} physical), "
          f"{machine['ram_gib']} GiB; load average before {machine['load_average']}, after {load_after}")
    versions = {k: bench._version(k) for k in ("torch", "sentence-transformers", "onnxruntime", "onnx", "tokenizers")}
    print("versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    print(f"warm: {args.rounds} rounds x {args.passes} passes over {len(questions())} questions, ONNX Runtime "
          f"threads {args.threads or physical_cores()}; "
          f"cold: {args.runs} processes each\n")
    print("| encoder | name | one question p50 (best round) | p95 | 32 at once (best round) "
          "| new process to first vector p50 (min) |")
    print("|---|---|---|---|---|---|")
    for encoder in ENCODERS:
        p50 = float(np.median([r["single"]["p50_ms"] for r in rounds[encoder]]))
        p95 = float(np.median([r["single"]["p95_ms"] for r in rounds[encoder]]))
        qps = float(np.median([r["batch32_qps"] for r in rounds[encoder]]))
        best = min(r["single"]["p50_ms"] for r in rounds[encoder])
        best_qps = max(r["batch32_qps"] for r in rounds[encoder])
        cold_p50 = bench.summarize(cold[encoder])["p50_ms"] / 1000
        print(f"| {encoder} | `{rounds[encoder][0]['name']}` | {p50:.2f} ms ({best:.2f}) | {p95:.2f} ms "
              f"| {qps:.0f} q/s ({best_qps:.0f}) | {cold_p50:.2f} s ({min(cold[encoder]):.2f}) |")
    print("\n| ONNX cold start, in-process phases (median) | fp32 | int8 |")
    print("|---|---|---|")
    for phase in steps["fp32"]:
        print(f"| {phase} | {steps['fp32'][phase] * 1000:.0f} ms | {steps['int8'][phase] * 1000:.0f} ms |")
    if exports:
        print("\n| export | new process, no export yet | inside export_onnx | .onnx size "
              "| min cosine to sentence-transformers (probe texts) |")
        print("|---|---|---|---|---|")
        for encoder, f in exports.items():
            print(f"| {encoder} | {f['process_s']:.1f} s | {f['export_s']:.1f} s | {f['onnx_mb']} MiB "
                  f"| {f['min_cosine']} |")


if __name__ == "__main__":
    main()
