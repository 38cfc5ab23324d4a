"""How the ANN parameters in docs/benchmarks.md were chosen: build time, recall@10 and latency per setting.

    python benchmarks/ann_sweep.py --n 1000000 --hnsw 16,40 32,40 32,80 --ef 64,128,256 --ivf 4096 --nprobe 8,16,32,64

Over one synthetic corpus (`assistant.bench.synthetic.SyntheticVectors`) it builds an HNSW index for each
`M,efConstruction` pair and searches it one query at a time at every efSearch, then does the same
for IVF-Flat with each number of lists (trained on 25 vectors a list) at every nprobe. It prints
one line a measurement as it goes, so that a long sweep can be followed and cut short.
"""

from __future__ import annotations

import argparse
import os
import time
from functools import partial
from typing import Any

import numpy as np


def _add(index: Any, corpus: np.ndarray, batch: int) -> None:
    for start in range(0, len(corpus), batch):
        index.add(corpus[start : start + batch])


def main() -> None:
    import faiss

    from assistant.bench.scale import dense_ids
    from assistant.bench.synthetic import ADD_BATCH, DISTRIBUTIONS, SyntheticVectors
    from assistant.bench.timing import recall_at_k, summarize, time_searches

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000, help="corpus size in vectors")
    parser.add_argument("--distribution", default="topical", choices=DISTRIBUTIONS)
    parser.add_argument("--hnsw", nargs="*", default=["32,40", "32,80"], help="M,efConstruction pairs")
    parser.add_argument("--ef", default="64,128,256", help="efSearch values")
    parser.add_argument("--ivf", nargs="*", type=int, default=[], help="numbers of IVF lists")
    parser.add_argument("--nprobe", default="8,16,32,64", help="lists probed per query")
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()

    gen = SyntheticVectors(args.distribution, n=args.n, seed=0)
    corpus, queries = gen.corpus(), gen.queries(args.queries)
    _, truth = faiss.knn(queries, corpus, 10, metric=faiss.METRIC_INNER_PRODUCT)
    print(f"{args.distribution}, {args.n:,} vectors, {args.queries} queries, load average {os.getloadavg()[0]:.1f}", flush=True)

    def report(index: Any, knob: str, value: int) -> None:
        times, found = time_searches(partial(dense_ids, index, 10), queries)
        s = summarize(times)
        print(f"  {knob}={value}: p50 {s['p50_ms']:.2f} ms, p95 {s['p95_ms']:.2f} ms, "
              f"recall@10 {recall_at_k(found, truth, 10):.3f}", flush=True)

    for pair in args.hnsw:
        m, efc = (int(x) for x in pair.split(","))
        index = faiss.IndexHNSWFlat(corpus.shape[1], m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = efc
        started = time.perf_counter()
        _add(index, corpus, ADD_BATCH)
        print(f"HNSW M={m} efConstruction={efc}: build {time.perf_counter() - started:.0f} s, "
              f"load average {os.getloadavg()[0]:.1f}", flush=True)
        for ef in (int(x) for x in args.ef.split(",")):
            index.hnsw.efSearch = ef
            report(index, "efSearch", ef)
        del index
    for lists in args.ivf:
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(corpus.shape[1]), corpus.shape[1], lists, faiss.METRIC_INNER_PRODUCT)
        started = time.perf_counter()
        sample = np.random.default_rng(0).choice(len(corpus), min(len(corpus), 25 * lists), replace=False)
        index.train(corpus[np.sort(sample)])
        _add(index, corpus, ADD_BATCH)
        print(f"IVF-Flat {lists} lists: train + add {time.perf_counter() - started:.0f} s, "
              f"load average {os.getloadavg()[0]:.1f}", flush=True)
        for nprobe in (int(x) for x in args.nprobe.split(",")):
            index.nprobe = nprobe
            report(index, "nprobe", nprobe)
        del index


if __name__ == "__main__":
    main()
