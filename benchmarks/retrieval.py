"""FAISS HNSW vs hnswlib: recall@10 against exact search, single-query latency, build time.

    python benchmarks/retrieval.py --out benchmarks/results/retrieval.json [--n 50000]

The data imitates image embeddings: L2-normalized 128-d vectors around 200 clusters. Both
libraries run single-threaded with the same graph parameters; exact search is FAISS
IndexFlatIP. This is the measurement behind docs/decisions/0005-faiss-for-retrieval.md.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from _results import write_result  # beside this script, on sys.path when it runs


def _data(n: int, q: int, d: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(200, d))

    def sample(k: int) -> np.ndarray:
        v = centers[rng.integers(0, 200, k)] + 0.6 * rng.normal(size=(k, d))
        unit: np.ndarray = v / np.linalg.norm(v, axis=1, keepdims=True)  # stubs: norm -> Any
        return unit.astype(np.float32)

    return sample(n), sample(q)


def main() -> None:
    import faiss
    import hnswlib

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/retrieval.json"))
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--dim", type=int, default=128)
    args = parser.parse_args()
    x, q = _data(args.n, args.queries, args.dim)
    faiss.omp_set_num_threads(1)
    flat = faiss.IndexFlatIP(args.dim)
    flat.add(x)
    _, truth = flat.search(q, 10)

    def recall(found: np.ndarray) -> float:
        return float(
            np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, truth, strict=True)])
        )

    def per_query_us(search: object) -> float:
        t = time.perf_counter()
        for i in range(len(q)):
            search(q[i : i + 1])  # type: ignore[operator]
        return (time.perf_counter() - t) / len(q) * 1e6

    rows = []
    for m in (16, 32):
        for ef_c in (100, 200):
            t = time.perf_counter()
            fi = faiss.IndexHNSWFlat(args.dim, m, faiss.METRIC_INNER_PRODUCT)
            fi.hnsw.efConstruction = ef_c
            fi.add(x)
            f_build = time.perf_counter() - t
            t = time.perf_counter()
            hi = hnswlib.Index(space="ip", dim=args.dim)
            hi.init_index(args.n, ef_construction=ef_c, M=m)
            hi.set_num_threads(1)
            hi.add_items(x, np.arange(args.n))
            h_build = time.perf_counter() - t
            for ef in (32, 64, 128):
                fi.hnsw.efSearch = ef
                hi.set_ef(ef)
                rows.append(
                    {
                        "library": "faiss",
                        "m": m,
                        "ef_construction": ef_c,
                        "ef_search": ef,
                        "build_s": round(f_build, 2),
                        "recall_at_10": round(recall(fi.search(q, 10)[1]), 4),
                        "query_us": round(per_query_us(lambda v, f=fi: f.search(v, 10)), 1),
                    }
                )
                rows.append(
                    {
                        "library": "hnswlib",
                        "m": m,
                        "ef_construction": ef_c,
                        "ef_search": ef,
                        "build_s": round(h_build, 2),
                        "recall_at_10": round(recall(hi.knn_query(q, 10)[0]), 4),
                        "query_us": round(per_query_us(lambda v, h=hi: h.knn_query(v, 10)), 1),
                    }
                )
                for r in rows[-2:]:
                    print(
                        f"{r['library']:>8} M={m:<3} efC={ef_c:<4} ef={ef:<4} "
                        f"build {r['build_s']:5.1f} s  recall@10 {r['recall_at_10']:.4f}  "
                        f"{r['query_us']:6.1f} us/query"
                    )
    t = time.perf_counter()
    for i in range(len(q)):
        flat.search(q[i : i + 1], 10)
    exact_us = (time.perf_counter() - t) / len(q) * 1e6
    result = {
        "benchmark": "retrieval",
        "n": args.n,
        "dim": args.dim,
        "queries": args.queries,
        "exact_query_us": round(exact_us, 1),
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_result(args.out, result)
    print(f"exact (IndexFlatIP): {exact_us:.0f} us/query; wrote {args.out}")


if __name__ == "__main__":
    main()
