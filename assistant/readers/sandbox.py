"""Run one extraction in a child process that is killed when it runs too long or asks for too much memory.

A PDF is a program for a renderer: a hostile or broken one can loop for minutes (millions of
operators) or inflate a few kilobytes into gigabytes (a compressed stream of zeros). Parsing
it in the app's own process would let one file stall or kill the app, so the parse runs in
a fresh `spawn`ed child: its address space is capped with `RLIMIT_AS` (Linux; best effort
elsewhere), the parent waits at most `timeout_s` and then kills it. The price is the child's
start-up, about half a second per file, and pickling the result back (about 20 bytes per
character of text). As with any `spawn`ed process, a script that reads PDFs needs the usual
`if __name__ == "__main__":` guard, and a daemonic process (a `multiprocessing.Pool`
worker) cannot start the child.

Example:
    >>> run_limited(len, "abc", timeout_s=30, max_memory_bytes=500_000_000)  # doctest: +SKIP
    3
"""

from __future__ import annotations

import logging
import multiprocessing
import time
from collections.abc import Callable
from multiprocessing.connection import Connection, wait
from typing import Any, TypeVar

from assistant.readers.base import Unreadable

logger = logging.getLogger(__name__)

T = TypeVar("T")


def _address_space() -> int:
    """This process's current virtual memory size in bytes (0 where /proc is missing)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _limit_memory(extra_bytes: int) -> None:
    try:
        import resource
    except ImportError:  # Windows: no limit
        return
    limit = _address_space() + extra_bytes
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    try:
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ValueError, OSError):  # macOS refuses RLIMIT_AS: time limit only
        logger.debug("cannot limit the address space here")


def _child(conn: Connection, func: Callable[..., Any], args: tuple[Any, ...], max_memory_bytes: int) -> None:
    try:
        _limit_memory(max_memory_bytes)
        result = func(*args)
        conn.send(("ok", result))
    except Unreadable as exc:
        conn.send(("unreadable", exc.reason))
    except MemoryError:
        conn.send(("memory", ""))
    except RecursionError:
        conn.send(("unreadable", "its structure is nested too deeply to read"))
    except BaseException as exc:  # noqa: BLE001 - any failure of a parser on a hostile file is reported, not raised
        if "insufficient memory" in str(exc) or "out of memory" in str(exc).lower():  # zlib.error -4, C allocators
            conn.send(("memory", ""))
        else:
            conn.send(("error", f"{type(exc).__name__}: {exc}"[:300]))
    finally:
        conn.close()


def run_limited(func: Callable[..., T], *args: Any, timeout_s: float, max_memory_bytes: int) -> T:
    """`func(*args)` in a child process; Unreadable when it times out, runs out of memory or crashes.

    `func` and its arguments and result must pickle (`func` at module level). An `Unreadable`
    raised in the child is raised again here with the same reason.
    """
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    process = context.Process(target=_child, args=(send, func, args, max_memory_bytes), daemon=True, name="assistant-reader")
    started = time.monotonic()
    process.start()
    send.close()
    try:
        deadline = started + timeout_s
        message = None
        while message is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise Unreadable(
                    f"reading it took longer than {timeout_s:g} s (ReaderLimits.timeout_s), so it was stopped;"
                    " it may be very large or built to stall readers"
                )
            ready = wait([receive, process.sentinel], timeout=remaining)
            if receive in ready:
                try:
                    message = receive.recv()
                except EOFError:
                    message = ("died", "")
            elif process.sentinel in ready:
                message = ("died", "")
    finally:
        if process.is_alive():
            process.kill()
        process.join()
        receive.close()
    status, payload = message
    if status == "ok":
        return payload
    if status == "unreadable":
        raise Unreadable(payload)
    if status == "memory":
        raise Unreadable(
            f"reading it needed more than {max_memory_bytes / 1e6:,.0f} MB of memory (ReaderLimits.max_memory_bytes),"
            " so it was stopped"
        )
    if status == "error":
        logger.warning("reader failed: %s", payload)
        raise Unreadable(f"it could not be read ({payload})")
    raise Unreadable(f"the reader stopped on it (exit code {process.exitcode}); the file may be damaged or hostile")
