"""Bounded load test of the chat app's `/ask` API on loopback.

N clients (default 40) start together and ask questions back to back for D seconds (default 60),
or a fixed number of questions each (`--requests`). The report gives throughput, p50/p95/p99
latency, the error count and the server's resident memory (RSS) at start, peak and end, to show
growth. An answer counts as an error unless it carries the disclaimer and is not an error
message. Exit status 1 on any error, 2 on bad arguments.

    python scripts/load_test.py                            # starts app.py on a free port itself
    python scripts/load_test.py --url http://127.0.0.1:7860/ --pid 12345 --duration 10

Only loopback URLs are accepted: this is a test of our own server, not a tool to load others.
A load test is what the rate limit exists to stop: the app this script starts runs with
`ASSISTANT_RATE_LIMIT=0`; start one you pass with `--url` the same way.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence
from urllib.parse import urlparse

from assistant.answer import DISCLAIMER
from assistant.render import NOT_ANSWERED, escape_markdown

ROOT = Path(__file__).resolve().parent.parent

QUESTIONS = (
    "Which magnesium form is best for sleep?",
    "What foods are high in magnesium?",
    "How does magnesium help prevent calcification?",
    "What is whitlockite?",
    "Who wrote Pride and Prejudice?",
    "Can magnesium reverse vascular calcification?",
    "Which vitamins work together with magnesium?",
    "What is the ideal calcium to magnesium ratio?",
)
FOOTER = f"_{escape_markdown(DISCLAIMER)}_"


@dataclass
class LoadReport:
    clients: int
    requests: int
    errors: int
    seconds: float
    throughput_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    rss_start_mb: float | None = None
    rss_peak_mb: float | None = None
    rss_end_mb: float | None = None
    server_cpu_ms_per_request: float | None = None
    error_samples: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [
            f"{self.clients} clients, {self.requests} requests in {self.seconds:.1f} s",
            f"{self.throughput_per_s:.1f} req/s",
            f"p50 {self.p50_ms:.0f} ms, p95 {self.p95_ms:.0f} ms, p99 {self.p99_ms:.0f} ms, max {self.max_ms:.0f} ms",
            f"{self.errors} errors",
        ]
        if self.rss_start_mb is not None:
            parts.append(
                f"server RSS {self.rss_start_mb:.0f} MB at start, {self.rss_peak_mb:.0f} MB peak, "
                f"{self.rss_end_mb:.0f} MB at end"
            )
        if self.server_cpu_ms_per_request is not None:
            parts.append(f"server CPU {self.server_cpu_ms_per_request:.0f} ms per request")
        return "; ".join(parts)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100): a value that was observed, no interpolation."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def check_answer(question: str, result: object) -> str | None:
    """None for a proper answer (text ending with the disclaimer, not an error message), else why not."""
    if isinstance(result, str) and result.endswith(FOOTER) and not result.startswith(NOT_ANSWERED):
        return None
    return f"bad answer to {question!r}: {str(result)[:200]!r}"


def is_loopback(url: str) -> bool:
    return urlparse(url).hostname in ("127.0.0.1", "localhost", "::1")


class _ServerSampler:
    """The server's RSS every `interval` seconds (in a thread) and its CPU time over the run, via psutil.

    CPU time matters here because client and server share the machine: the server's CPU per
    request says what it costs, whatever the load generator costs.
    """

    def __init__(self, pid: int | None, interval: float = 0.5) -> None:
        self.rss: list[float] = []
        self.cpu_seconds: float | None = None
        self._process = None
        if pid is not None:
            import psutil

            self._process = psutil.Process(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._interval = interval
        self._cpu_start = 0.0

    def _cpu(self) -> float:
        times = self._process.cpu_times()
        return times.user + times.system

    def _sample(self) -> None:
        self.rss.append(self._process.memory_info().rss / 2**20)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._sample()

    def __enter__(self) -> "_ServerSampler":
        if self._process is not None:
            self._sample()
            self._cpu_start = self._cpu()
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._process is not None:
            self._stop.set()
            self._thread.join()
            self._sample()
            self.cpu_seconds = self._cpu() - self._cpu_start


def run_load(
    url: str,
    *,
    clients: int = 40,
    duration: float | None = 60.0,
    requests_per_client: int | None = None,
    pid: int | None = None,
    questions: Sequence[str] = QUESTIONS,
) -> LoadReport:
    """Run the load and return its figures; `requests_per_client` (if given) replaces `duration`.

    Each client connects first (not timed); all then start at one barrier, so `clients` requests
    really are in flight at once. Client i starts at question i, so the mix is the same however
    many run. The clock stops at the last answer, not when the clients have shut down.
    """
    from gradio_client import Client

    if not is_loopback(url):
        raise ValueError(f"load tests only run against loopback, got {url}; start the app locally")
    if clients < 1 or (requests_per_client is None and (duration is None or duration <= 0)):
        raise ValueError(f"need clients >= 1 and a positive duration or request count, got {clients=}, {duration=}")
    latencies: list[float] = []
    errors: list[str] = []
    last_answer: list[float] = []
    lock = threading.Lock()
    clock: dict[str, float] = {}

    def start_clock() -> None:  # run once, by the last thread to reach the barrier
        clock["start"] = time.perf_counter()
        clock["deadline"] = clock["start"] + (duration or 0.0)

    barrier = threading.Barrier(clients, action=start_clock)

    def record(elapsed: float | None, problem: str | None) -> None:
        with lock:
            if elapsed is not None:
                latencies.append(elapsed)
            if problem:
                errors.append(problem)

    def finished(done: int) -> bool:
        if requests_per_client is not None:
            return done >= requests_per_client
        return time.perf_counter() >= clock["deadline"]

    def worker(index: int) -> None:
        try:
            client = Client(url, verbose=False)
        except Exception as exc:
            record(None, f"connect: {type(exc).__name__}: {exc}")
            barrier.wait()
            return
        barrier.wait()
        done = 0
        while not finished(done):
            question = questions[(index + done) % len(questions)]
            started = time.perf_counter()
            try:
                problem = check_answer(question, client.predict(question, api_name="/ask"))
            except Exception as exc:  # every failure is counted and sampled, none stops the run
                problem = f"{type(exc).__name__}: {exc}"
            record(time.perf_counter() - started, problem)
            done += 1
        with lock:
            last_answer.append(time.perf_counter())
        client.close()  # waits up to 1 s for its heartbeat thread: in parallel, after the clock

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(clients)]
    with _ServerSampler(pid) as server:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    seconds = max(last_answer, default=clock.get("start", 0.0)) - clock.get("start", 0.0)
    ms = [x * 1000 for x in latencies]
    return LoadReport(
        clients=clients,
        requests=len(latencies),
        errors=len(errors),
        seconds=seconds,
        throughput_per_s=len(latencies) / seconds if seconds > 0 else math.nan,
        p50_ms=percentile(ms, 50),
        p95_ms=percentile(ms, 95),
        p99_ms=percentile(ms, 99),
        max_ms=max(ms, default=math.nan),
        rss_start_mb=server.rss[0] if server.rss else None,
        rss_peak_mb=max(server.rss) if server.rss else None,
        rss_end_mb=server.rss[-1] if server.rss else None,
        server_cpu_ms_per_request=(
            server.cpu_seconds * 1000 / len(latencies) if server.cpu_seconds is not None and latencies else None
        ),
        error_samples=errors[:5],
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a running app on loopback; without it, app.py is started on a free port")
    parser.add_argument("--pid", type=int, help="the server pid, for memory and CPU figures (known when started here)")
    parser.add_argument("--clients", type=int, default=40, help="concurrent clients (default 40)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds to run (default 60)")
    parser.add_argument("--requests", type=int, help="questions per client, instead of --duration")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.url is not None and not is_loopback(args.url):
        print(f"error: --url must be a loopback address, got {args.url}", file=sys.stderr)
        return 2
    options = {"clients": args.clients, "duration": args.duration, "requests_per_client": args.requests}
    try:
        if args.url:
            report = run_load(args.url, pid=args.pid, **options)
        else:
            sys.path.insert(0, str(ROOT / "tests"))
            from app_server import running_app  # the tests' helper: one way to start the app

            unlimited = {"ASSISTANT_RATE_LIMIT": "0"}  # 40 clients from one address are not 40 people
            with tempfile.TemporaryDirectory(prefix="load-test-") as work, \
                    running_app(Path(work), env=unlimited) as server:
                started = f"started app.py (pid {server.process.pid}) on {server.url} in {server.startup_seconds:.1f} s"
                print(started, file=sys.stderr)
                report = run_load(server.url, pid=server.process.pid, **options)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(asdict(report), indent=2) if args.json else report.summary())
    for sample in report.error_samples:
        print(f"  error: {sample}", file=sys.stderr)
    return 1 if report.errors else 0


if __name__ == "__main__":
    sys.exit(main())
