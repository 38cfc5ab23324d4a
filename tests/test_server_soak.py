"""Soak: repeated oversized and empty questions against app.py on loopback; server memory must level off.

Finding 2 of issue 11: Gradio kept a session, with its input, for every `/call` request (up to
10,000), so 10 MB questions took the server from 817 to 1,741 MB and it stayed there. Each round
here sends, each through a new session as curl would: 10 MB questions (refused unread: 413),
900 KB questions (under the body limit, refused by the length check) and empty questions. The
server's resident memory is printed after every round; the only assertion is a generous bound on
growth after the first round (the warm-up), because allocators keep freed memory and machines differ.
"""

from __future__ import annotations

import threading
import time

import pytest

from app_server import running_app

pytestmark = [pytest.mark.integration, pytest.mark.slow]

import httpx  # noqa: E402  (installed with gradio)
import psutil  # noqa: E402  (a test extra)

ROUNDS = 8
HUGE, LARGE, EMPTY = 6, 12, 400  # questions of each kind per round
GROWTH_LIMIT_MB = 150


def _ask(client: httpx.Client, question: str) -> int:
    """One `/ask` through Gradio's REST route: the status of the POST (the answer is read, as a client would)."""
    try:
        started = client.post("gradio_api/call/ask", json={"data": [question]})
    except httpx.TransportError:  # a body refused unread may be cut off while still being sent
        return 413
    if started.status_code == 200:
        client.get(f"gradio_api/call/ask/{started.json()['event_id']}")
    return started.status_code


def _round(url: str) -> dict[int, int]:
    questions = ["x" * 10_000_000] * HUGE + ["y" * 900_000] * LARGE + [""] * EMPTY
    statuses: dict[int, int] = {}
    lock = threading.Lock()

    def work(part: list[str]) -> None:
        with httpx.Client(base_url=url, timeout=60) as client:
            for question in part:
                status = _ask(client, question)
                with lock:
                    statuses[status] = statuses.get(status, 0) + 1

    threads = [threading.Thread(target=work, args=(questions[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def test_memory_returns_to_a_plateau_under_oversized_and_empty_questions(tmp_path):
    with running_app(tmp_path, env={"ASSISTANT_RATE_LIMIT": "0"}) as server:  # one address sends it all
        process = psutil.Process(server.process.pid)
        rss = [process.memory_info().rss / 2**20]
        started = time.monotonic()
        for number in range(1, ROUNDS + 1):
            statuses = _round(server.url)
            time.sleep(1.0)
            rss.append(process.memory_info().rss / 2**20)
            print(f"\nround {number}: {statuses} -> server RSS {rss[-1]:.0f} MB")
            assert statuses.get(413, 0) == HUGE and statuses.get(200, 0) == LARGE + EMPTY, statuses
        warm, peak, end = rss[1], max(rss[1:]), rss[-1]
        sent = ROUNDS * (HUGE * 10 + LARGE * 0.9)
        print(f"\nsoak: {ROUNDS} rounds of {HUGE} x 10 MB, {LARGE} x 900 KB and {EMPTY} empty questions "
              f"({sent:.0f} MB sent) in {time.monotonic() - started:.0f} s; server RSS {rss[0]:.0f} MB at start, "
              f"{warm:.0f} MB after the warm-up round, peak {peak:.0f} MB, {end:.0f} MB at the end "
              f"(growth after warm-up {peak - warm:+.0f} MB)")
        assert peak - warm < GROWTH_LIMIT_MB, rss
        assert "Traceback" not in server.log()
