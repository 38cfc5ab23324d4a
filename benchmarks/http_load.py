"""HTTP load on `POST /v1/answers`, set against the encoder's own speed measured in the same run.

Starts `app.py` (indexing the bundled article, in a folder of its own) on 127.0.0.1 in a process of
its own, and prints:

* the floor, measured in another fresh process while the server is idle: one-question encode p50,
  the batched-encode rate (32 questions in one call, questions a second), and the warm answer p50
  (`Assistant.ask` in process, no HTTP, no batching);
* one client asking back to back: p50/p95;
* `--clients` clients (default 40) asking back to back for `--duration` seconds, twice: requests a
  second, p50/p95/p99, errors, the server's CPU seconds per request and its RSS before and after.

Targets (issue 15): one client p50 ≤ 2 × warm answer + 1 ms; 40 clients ≥ 0.4 × batched-encode
rate with 0 errors and p99 ≤ 250 ms, RSS flat between runs. Measurements, not tests: nothing here
fails on a target. The load generator is httpx's async client, in this process: on a small machine
it takes CPU from the server, so read the figures as a lower bound of what the server does.

The rate limit would refuse a load test from one address: the server runs with
`ASSISTANT_RATE_LIMIT=0`, and the report says so.

    .venv/bin/python benchmarks/http_load.py --duration 20     # ~1.5 min on 2 cores
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "scripts")]

from app_server import running_app  # noqa: E402  (tests/app_server.py: how the tests start app.py)
from load_test import QUESTIONS, percentile  # noqa: E402  (scripts/load_test.py: the same questions, one percentile)

from assistant.answer import DISCLAIMER  # noqa: E402
from assistant.bench.machine import machine_info  # noqa: E402

SERVER_ENV = {"ASSISTANT_RATE_LIMIT": "0"}  # a load test from one address is what the rate limit stops

FLOOR_SCRIPT = """
import json, sys, time
import numpy as np
from assistant import Assistant
from assistant.settings import Settings
from assistant.threads import limit_numeric_pools
questions, rounds = json.loads(sys.argv[1]), int(sys.argv[2])
bot = Assistant.load(Settings(encode_batch=False))
limit_numeric_pools()  # as app.py answers
encoder = bot.embedder
batch = (questions * 8)[:32]
for q in questions: bot.ask(q)  # warm up
one, many, answers = [], [], []
for _ in range(rounds):
    for q in questions:
        t = time.perf_counter(); encoder.encode([q]); one.append(time.perf_counter() - t)
        t = time.perf_counter(); bot.ask(q); answers.append(time.perf_counter() - t)
    t = time.perf_counter(); encoder.encode(batch, batch_size=32); many.append(time.perf_counter() - t)
print(json.dumps({"encode_one_p50_ms": float(np.median(one)) * 1e3, "batch_encode_qps": 32 / float(np.median(many)),
                  "warm_answer_p50_ms": float(np.median(answers)) * 1e3}))
"""


def measure_floor(index_dir: Path, rounds: int) -> dict[str, float]:
    """Encoder and in-process answer speed, in a fresh process (the same index, read only)."""
    env = {**os.environ, "ASSISTANT_INDEX_DIR": str(index_dir), "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, "-c", FLOOR_SCRIPT, json.dumps(list(QUESTIONS)), str(rounds)],
                         cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    return json.loads(run.stdout.strip().splitlines()[-1])


async def _client(http: Any, url: str, stop_at: float, count: int | None, latencies: list[float],
                  errors: list[str], offset: int) -> None:
    i = offset
    while (count is None and time.perf_counter() < stop_at) or (count is not None and i - offset < count):
        question = QUESTIONS[i % len(QUESTIONS)]
        i += 1
        started = time.perf_counter()
        try:
            response = await http.post(url + "v1/answers", json={"question": question})
            body = response.json()
            if response.status_code != 200 or body.get("disclaimer") != DISCLAIMER:
                errors.append(f"{response.status_code}: {response.text[:120]}")
                continue
        except Exception as exc:  # counted, and the run goes on
            errors.append(repr(exc)[:120])
            continue
        latencies.append(time.perf_counter() - started)


async def load(url: str, *, clients: int, duration: float, count: int | None = None) -> dict[str, Any]:
    """`clients` clients asking back to back until `duration` is over (or `count` questions each)."""
    import httpx

    latencies: list[float] = []
    errors: list[str] = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(limits=limits, timeout=60) as http:
        started = time.perf_counter()
        stop_at = started + duration
        await asyncio.gather(*(_client(http, url, stop_at, count, latencies, errors, n) for n in range(clients)))
        seconds = time.perf_counter() - started
    ms = [x * 1e3 for x in latencies]
    return {"clients": clients, "requests": len(latencies), "errors": len(errors), "first_errors": errors[:3],
            "seconds": round(seconds, 2), "req_per_s": round(len(latencies) / seconds, 1),
            **{f"p{q}_ms": round(percentile(ms, q), 1) for q in (50, 95, 99)}}


def server_sample(pid: int) -> tuple[float, float]:
    """CPU seconds (user + system, children included) and RSS in MB of the server process."""
    import psutil

    process = psutil.Process(pid)
    times = process.cpu_times()
    return times.user + times.system, process.memory_info().rss / 2**20


def loaded_run(url: str, pid: int, clients: int, duration: float) -> dict[str, Any]:
    cpu_before, rss_before = server_sample(pid)
    report = asyncio.run(load(url, clients=clients, duration=duration))
    cpu_after, rss_after = server_sample(pid)
    report["server_cpu_ms_per_request"] = round((cpu_after - cpu_before) * 1e3 / max(report["requests"], 1), 2)
    report["server_rss_mb"] = [round(rss_before, 1), round(rss_after, 1)]
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of each concurrent run (default 30)")
    parser.add_argument("--clients", type=int, default=40, help="concurrent clients (default 40)")
    parser.add_argument("--single", type=int, default=200, help="questions the single client asks (default 200)")
    parser.add_argument("--runs", type=int, default=2, help="concurrent runs, to see memory growth (default 2)")
    parser.add_argument("--rounds", type=int, default=10, help="rounds of the encoder floor (default 10)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.clients < 1 or args.single < 1 or args.runs < 1:
        parser.error("--duration, --clients, --single and --runs must be positive")

    results: dict[str, Any] = {"machine": machine_info(), "server_env": SERVER_ENV}
    with tempfile.TemporaryDirectory(prefix="http-load-") as work:
        with running_app(Path(work), env=SERVER_ENV) as server:
            pid = server.process.pid
            results["floor"] = measure_floor(Path(work) / "index", args.rounds)
            asyncio.run(load(server.url, clients=1, duration=0, count=len(QUESTIONS)))  # warm up
            results["single"] = asyncio.run(load(server.url, clients=1, duration=0, count=args.single))
            results["concurrent"] = [loaded_run(server.url, pid, args.clients, args.duration) for _ in range(args.runs)]
        # The server logs its batching on a graceful stop: questions over batches, the whole run included.
        stopped = [line for line in server.log().splitlines() if "encode batcher stopped" in line]
        results["batching"] = stopped[-1].split(": ", 2)[-1] if stopped else "not logged (the server did not stop cleanly)"
    results["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(results, indent=2, sort_keys=True) if args.json else render(results))
    return 0


def render(r: dict[str, Any]) -> str:
    floor, single, runs = r["floor"], r["single"], r["concurrent"]
    m = r["machine"]
    single_target = 2 * floor["warm_answer_p50_ms"] + 1
    rate_target = 0.4 * floor["batch_encode_qps"]
    lines = [
        f"machine: {m['cpu']}, {m['cores']} cores, load average {m['load_average']} before, "
        f"{r['load_average_after']} after",
        f"server settings for the run: {r['server_env']} (rate limit off: one address sends the whole load)",
        f"floor: encode 1 question p50 {floor['encode_one_p50_ms']:.2f} ms; batched encode (32 at once) "
        f"{floor['batch_encode_qps']:.0f} q/s; warm answer p50 {floor['warm_answer_p50_ms']:.2f} ms",
        f"single client: p50 {single['p50_ms']} ms, p95 {single['p95_ms']} ms, errors {single['errors']} "
        f"(target p50 <= {single_target:.1f} ms: {'met' if single['p50_ms'] <= single_target else 'missed'})",
    ]
    lines.append(f"server encode batching over the whole run: {r['batching']}")
    for n, run in enumerate(runs, 1):
        ok = run["req_per_s"] >= rate_target and run["errors"] == 0 and run["p99_ms"] <= 250
        lines.append(
            f"{run['clients']} clients, run {n} ({run['seconds']} s): {run['req_per_s']} req/s, p50 {run['p50_ms']} ms, "
            f"p95 {run['p95_ms']} ms, p99 {run['p99_ms']} ms, errors {run['errors']}, server CPU "
            f"{run['server_cpu_ms_per_request']} ms/request, RSS {run['server_rss_mb'][0]} -> {run['server_rss_mb'][1]} MB "
            f"(target >= {rate_target:.0f} req/s, 0 errors, p99 <= 250 ms: {'met' if ok else 'missed'})"
        )
        if run["first_errors"]:
            lines.append(f"  first errors: {run['first_errors']}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
