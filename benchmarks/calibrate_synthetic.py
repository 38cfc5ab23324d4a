"""How close the `topical` synthetic vectors are to real all-MiniLM-L6-v2 chunk embeddings.

    python benchmarks/calibrate_synthetic.py --docs 400

Embeds the chunks of the first `--docs` SciFact documents (about 9 chunks each; a minute or two
on 2 cores), draws as many `topical` and `random` vectors, and prints for each set: the mean
cosine to the nearest and to the 10th-nearest neighbour, the cosine of random pairs, and the
recall@10 of a deliberately weak HNSW (M=8, efConstruction=16, efSearch=16) and IVF (32 lists,
2 probed), which says how hard each set is for approximate search. docs/benchmarks.md quotes it.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def neighbour_stats(x: np.ndarray, sample: int = 300) -> dict[str, float]:
    import faiss

    rng = np.random.default_rng(1)
    rows = rng.choice(len(x), min(sample, len(x)), replace=False)
    cosines, _ = faiss.knn(x[rows], x, 11, metric=faiss.METRIC_INNER_PRODUCT)  # column 0 is the row itself
    pairs = (x[rows] @ x[rng.choice(len(x), len(rows))].T).ravel()
    return {"nn1": cosines[:, 1].mean(), "nn10": cosines[:, 10].mean(), "pair_mean": pairs.mean(), "pair_std": pairs.std()}


def ann_hardness(x: np.ndarray, queries: int = 300) -> dict[str, float]:
    import faiss

    from assistant.bench.timing import recall_at_k

    rng = np.random.default_rng(2)
    held_out = rng.choice(len(x), queries, replace=False)
    keep = np.ones(len(x), dtype=bool)
    keep[held_out] = False
    base, q = x[keep], x[held_out]
    _, truth = faiss.knn(q, base, 10, metric=faiss.METRIC_INNER_PRODUCT)
    hnsw = faiss.IndexHNSWFlat(x.shape[1], 8, faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efConstruction = 16
    hnsw.add(base)
    hnsw.hnsw.efSearch = 16
    ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(x.shape[1]), x.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
    ivf.train(base)
    ivf.add(base)
    ivf.nprobe = 2
    return {name: recall_at_k(index.search(q, 10)[1], truth, 10) for name, index in (("hnsw_weak", hnsw), ("ivf_weak", ivf))}


def main() -> None:
    from assistant.bench.indexing import chunk_texts, write_beir_corpus
    from assistant.bench.synthetic import SyntheticVectors
    from assistant.embedding import get_embedder
    from assistant.evaluation.beir_data import load_beir
    from assistant.settings import Settings

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--beir", type=Path, default=ROOT.parent / "shared" / "eval" / "scifact")
    parser.add_argument("--docs", type=int, default=400)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = write_beir_corpus(load_beir(args.beir), Path(tmp), limit=args.docs)
        texts = chunk_texts(Settings(corpus_dir=folder))
    real = get_embedder().encode(texts)
    sets = {
        "real (SciFact chunks)": real,
        "topical": SyntheticVectors("topical", n=len(real), seed=0).corpus(),
        "random": SyntheticVectors("random", n=len(real), seed=0).corpus(),
    }
    print(f"{len(real)} chunks of {args.docs} documents\n")
    print("| vectors | nearest cosine | 10th nearest | random pair | weak HNSW recall@10 | weak IVF recall@10 |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, x in sets.items():
        s, h = neighbour_stats(x), ann_hardness(x)
        print(f"| {name} | {s['nn1']:.3f} | {s['nn10']:.3f} | {s['pair_mean']:.3f} ± {s['pair_std']:.3f} "
              f"| {h['hnsw_weak']:.3f} | {h['ivf_weak']:.3f} |")


if __name__ == "__main__":
    main()
