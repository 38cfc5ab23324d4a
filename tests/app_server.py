"""Start `app.py` as a subprocess on a free loopback port, for the integration and browser tests.

A plain module rather than a fixture file, so that `scripts/load_test.py` can start a server the
same way. The server gets its own index folder (`ASSISTANT_INDEX_DIR`) so that tests never race
on the repository's `index/`, and it is always stopped by its own pid.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class AppServer:
    """A running `app.py`: its URL, process, start-up time and log file."""

    url: str
    process: subprocess.Popen
    startup_seconds: float
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def free_port() -> int:
    """A loopback port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_up(url: str, process: subprocess.Popen, log_path: Path, timeout: float) -> None:
    """Until the chat is mounted: app.py serves its JSON API first and logs "the chat is ready" once the chat is up
    (the log, unlike a request, says so whether or not sign-in hides the chat's routes)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"app.py exited with {process.returncode}:\n{log_path.read_text(errors='replace')}")
        log = log_path.read_text(errors="replace")
        if "the chat could not be started" in log:
            raise RuntimeError(f"app.py serves without its chat:\n{log}")
        if "the chat is ready" in log:
            try:
                with urllib.request.urlopen(url + "gradio_api/info", timeout=2) as response:
                    if response.status == 200:
                        return
            except urllib.error.HTTPError as exc:
                if exc.code == 401:  # up, and asking for sign-in (ASSISTANT_USERS or _API_TOKENS set)
                    return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
        time.sleep(0.25)
    log = log_path.read_text(errors="replace")
    raise TimeoutError(f"app.py did not answer on {url} within {timeout:.0f} s:\n{log}")


@contextmanager
def running_app(work_dir: Path, *, timeout: float = 180.0, env: dict[str, str] | None = None) -> Iterator[AppServer]:
    """`app.py` serving on 127.0.0.1:<free port> with its index in `work_dir`; stopped on exit.

    `startup_seconds` is from process start until the API answers its info request.
    """
    work_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    log_path = work_dir / "app.log"
    child_env = {
        **os.environ,
        "GRADIO_SERVER_NAME": "127.0.0.1",
        "GRADIO_SERVER_PORT": str(port),
        "GRADIO_ANALYTICS_ENABLED": "False",
        "ASSISTANT_INDEX_DIR": str(work_dir / "index"),
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }
    started = time.monotonic()
    with open(log_path, "wb") as log:
        command = [sys.executable, str(ROOT / "app.py")]
        process = subprocess.Popen(command, cwd=ROOT, env=child_env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_until_up(url, process, log_path, timeout)
        yield AppServer(url=url, process=process, startup_seconds=time.monotonic() - started, log_path=log_path)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)
