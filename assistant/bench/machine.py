"""The machine and its memory: what the figures depend on, resident memory, a watcher of peaks, fresh processes."""

from __future__ import annotations

import ctypes
import gc
import os
import platform
import resource
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from importlib import metadata
from multiprocessing import get_context
from pathlib import Path
from typing import Any


def rss_mb() -> float:
    """This process's resident memory now, in MiB."""
    import psutil  # in the `bench` and `test` extras

    return psutil.Process().memory_info().rss / 2**20


def release_memory() -> None:
    """Collect garbage and hand freed heap pages back to the OS, so that the next RSS growth is all new memory."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: RSS figures may then undercount reused memory
        pass


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MiB.

    Linux's `VmHWM` belongs to the address space, so it starts afresh in a spawned process;
    `ru_maxrss` (the fallback elsewhere) survives `exec` and would report the parent's peak.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def version(name: str) -> str:
    """The installed version of distribution `name`, or "absent"."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "absent"


def machine_info() -> dict[str, Any]:
    """CPU model, cores, RAM, load and library versions: what the figures depend on."""
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {"python": platform.python_version()}
    versions.update((name, version(name)) for name in ("cited-health-assistant", "numpy", "faiss-cpu", "torch", "sentence-transformers", "bm25s", "onnxruntime"))
    try:
        import psutil

        ram_gib = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        ram_gib = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gib": ram_gib,
        "platform": platform.platform(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "versions": versions,
    }


class MemoryWatch:
    """Peak resident memory of this process and of any child process, from `start` on.

    The process's own peak is the kernel's (`VmHWM`, reset at `start` through
    `/proc/self/clear_refs`); a thread also samples this process and its children every
    `interval` seconds, which is how a child process (a server an engine might spawn) is counted.
    Children that were already running at `start` (a pool's resource tracker) are not the engine's.

    Example:
        >>> watch = MemoryWatch().start()  # doctest: +SKIP
        >>> watch.stop()["peak_rss_mb"]  # doctest: +SKIP
    """

    def __init__(self, interval: float = 0.1) -> None:
        self.interval = interval
        self.peak_mb = self.children_peak_mb = 0.0
        self.children: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._reset_hwm = False
        self._before: set[int] = set()

    def start(self) -> MemoryWatch:
        import psutil

        self._before = {child.pid for child in psutil.Process().children(recursive=True)}
        try:
            Path("/proc/self/clear_refs").write_text("5")  # the kernel's peak RSS starts again from the current RSS
            self._reset_hwm = True
        except OSError:
            pass
        self._thread.start()
        return self

    def _sample(self) -> None:
        import psutil

        me = psutil.Process()
        while True:
            children_mb = 0.0
            for child in me.children(recursive=True):
                if child.pid in self._before:
                    continue
                try:
                    children_mb += child.memory_info().rss / 2**20
                    self.children.add(child.name())
                except psutil.Error:
                    pass
            self.children_peak_mb = max(self.children_peak_mb, children_mb)
            self.peak_mb = max(self.peak_mb, me.memory_info().rss / 2**20 + children_mb)
            if self._stop.wait(self.interval):
                return

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        self._thread.join()
        own = peak_rss_mb() if self._reset_hwm else 0.0
        return {
            "peak_rss_mb": round(max(self.peak_mb, own + self.children_peak_mb), 1),
            "child_processes": sorted(self.children),
            "children_peak_mb": round(self.children_peak_mb, 1),
        }


def folder_mb(path: Path) -> float:
    """The size of the file `path`, or of the files under the folder `path`, in MiB."""
    files = [path] if path.is_file() else [f for f in path.rglob("*") if f.is_file()]
    return round(sum(f.stat().st_size for f in files) / 2**20, 1)


def in_fresh_process(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """`fn(*args, **kwargs)` in a new spawned interpreter, so its memory figures are its own."""
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(fn, *args, **kwargs).result()


def run_here(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """`fn(*args, **kwargs)` in this process (tests, and runs that do not need their own memory figures)."""
    return fn(*args, **kwargs)
