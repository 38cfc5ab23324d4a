"""`python app.py` from launch to its first answer over HTTP, with an existing index (issue 15: ≤ 3 s).

The app serves its JSON API as soon as the assistant is loaded and mounts the chat once Gradio is
imported and the page built (seconds later). Each run starts the app on a free loopback port (the
project's corpus and index unless given), polls until the server accepts a connection, asks one
question through `POST /v1/answers`, then one through the chat's `/ask` API as soon as the chat is
up (Gradio's call/result protocol over plain HTTP: no client library to import in this process),
and stops the app. Printed: time until the server listens, until the first answer, until the chat
answers, and the load average.

Run: python benchmarks/app_start.py [--runs 5] [--question "…"]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.05)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _ask(port: int, question: str) -> str:
    """One question through `/ask`: POST the call, then read its result stream to the end."""
    base = f"http://127.0.0.1:{port}/gradio_api/call/ask"
    request = urllib.request.Request(base, data=json.dumps({"data": [question]}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        event_id = json.loads(response.read())["event_id"]
    with urllib.request.urlopen(f"{base}/{event_id}", timeout=60) as response:
        stream = response.read().decode("utf-8")
    if "event: complete" not in stream:
        raise RuntimeError(f"no answer: {stream[-300:]}")
    return stream


def _answer(port: int, question: str) -> bool:
    """One question through `POST /v1/answers`; False while the server is not answering yet."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/answers", data=json.dumps({"question": question}).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return bool(json.loads(response.read())["citations"])
    except (urllib.error.URLError, ConnectionError):
        return False


def _chat_up(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/gradio_api/info", timeout=60) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError):
        return False


def start_once(question: str) -> tuple[float, float, float]:
    port = _free_port()
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "ASSISTANT_RATE_LIMIT": "0"}
    started = time.perf_counter()
    app = subprocess.Popen([sys.executable, str(ROOT / "app.py")], cwd=ROOT, env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        while not _listening(port):
            if app.poll() is not None:
                raise RuntimeError(f"app.py exited with {app.returncode}: {app.stderr.read()[-500:]}")
            time.sleep(0.01)
        listening = time.perf_counter() - started
        while not _answer(port, question):
            time.sleep(0.01)
        answered = time.perf_counter() - started
        while not _chat_up(port):
            if app.poll() is not None:
                raise RuntimeError(f"app.py exited with {app.returncode}: {app.stderr.read()[-500:]}")
            time.sleep(0.02)
        _ask(port, question)
        return listening, answered, time.perf_counter() - started
    finally:
        app.terminate()
        app.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--question", default="Which magnesium form is best for sleep?")
    args = parser.parse_args()
    start_once(args.question)  # builds the index if there is none, and warms the page cache
    runs = [start_once(args.question) for _ in range(args.runs)]
    listening, answered, chat = (statistics.median(r[i] for r in runs) for i in range(3))
    print(f"app.py, {args.runs} starts (median): listening after {listening:.2f} s, first answer (POST /v1/answers) "
          f"after {answered:.2f} s (each: {', '.join(f'{r[1]:.2f}' for r in runs)}; target ≤ 3 s), first answer "
          f"through the chat's /ask after {chat:.2f} s; load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
