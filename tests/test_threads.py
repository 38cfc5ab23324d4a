"""assistant.threads: the BLAS and OpenMP pools are capped while answering, and the cap can be undone."""

import faiss  # noqa: F401  (its OpenBLAS and OpenMP are among the pools capped)
import numpy  # noqa: F401
from threadpoolctl import threadpool_info

from assistant.threads import limit_numeric_pools


def pool_sizes() -> list[int]:
    return [pool["num_threads"] for pool in threadpool_info()]


def test_limit_caps_every_loaded_pool_and_restores_them():
    before = pool_sizes()
    assert before, "numpy and FAISS should have loaded at least one BLAS or OpenMP library"
    limiter = limit_numeric_pools()
    try:
        assert pool_sizes() == [1] * len(before)
    finally:
        limiter.restore_original_limits()
    assert pool_sizes() == before


def test_limit_as_a_block_holds_inside_only():
    before = pool_sizes()
    with limit_numeric_pools(1):
        assert set(pool_sizes()) == {1}
    assert pool_sizes() == before
