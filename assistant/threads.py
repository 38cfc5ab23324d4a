"""Thread pools of the numerical libraries, for processes that answer questions.

numpy's and FAISS's OpenBLAS and FAISS's OpenMP start a pool of one thread per core, and their idle
threads spin. A question's matrix products (one vector against a few thousand rows) are too small to
share out, so in a process that answers questions those pools only take cores from ONNX Runtime,
which has a pool of its own (one thread per physical core, `encoders.pipeline.Runtime`), and from
concurrent requests. Measured on 2 cores: `bench --only latency` 7.2 -> 6.3 ms a warm answer (encode
alone 6.0 -> 4.6 ms); `app.py` under 40 clients 19 -> 9 ms of CPU a request, 84 -> 128 req/s.

Indexing keeps the pools: FAISS builds HNSW graphs on every core.
"""

from __future__ import annotations

from typing import Any


def limit_numeric_pools(threads: int = 1) -> Any:
    """Cap the BLAS and OpenMP pools loaded so far at `threads` (call it once numpy and FAISS are imported).

    Returns the `threadpoolctl` limiter: its `restore_original_limits()` undoes the cap; used with
    `with`, the cap holds for the block only.
    """
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=threads)
