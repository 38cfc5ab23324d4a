"""One exclusive lock per index folder, held while a process changes what the store holds.

Readers never take it: a FAISS store is replaced atomically, and a Milvus collection answers
reads while it is written. Writers (a sync, a rebuild) take it so that two processes starting
together on a stale index do the work once: the second waits, then finds nothing left to do.
"""

from __future__ import annotations

import fcntl
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

LOCK_FILE = ".lock"


@contextmanager
def index_lock(index_dir: Path) -> Iterator[None]:
    """Hold the exclusive lock of `index_dir` (created if absent) for the duration of the block.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder, index_lock(Path(folder)):
    ...     (Path(folder) / LOCK_FILE).exists()
    True
    """
    index_dir.mkdir(parents=True, exist_ok=True)
    with open(index_dir / LOCK_FILE, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
