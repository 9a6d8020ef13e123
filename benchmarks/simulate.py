"""Simulator throughput, scaling and memory, plus the default world's difficulty.

    python benchmarks/simulate.py --out benchmarks/results/simulate.json [--sizes 10000 100000]

Each size runs in a fresh subprocess so its peak memory is its own. Peak RSS is reported for the
parent (which writes Parquet) and for the largest worker (which renders photos); ``peak_rss_mb``
is parent + workers x largest worker, an upper bound on the whole run. 1M listings is extrapolated
from the largest measured run's rate, and says so. The difficulty numbers (oracle and price+seller
baseline PR-AUC) come from the largest run, which uses the default world's parameters.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _results import write_result  # beside this script, on sys.path when it runs


def _child(listings: int, workers: int, out: Path) -> None:
    from couturier.marketplace import SimulationConfig, simulate
    from couturier.marketplace._summary import summarize

    config = SimulationConfig.of(listings=listings)
    start = time.perf_counter()
    market = simulate(config, out, workers=workers)
    seconds = time.perf_counter() - start
    self_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    worker_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    summary = summarize(market)
    print(
        json.dumps(
            {
                "listings": listings,
                "seconds": round(seconds, 2),
                "listings_per_s": round(listings / seconds, 1),
                "photos": market.counts["photos"],
                "parent_peak_rss_mb": round(self_mb, 1),
                "worker_peak_rss_mb": round(worker_mb, 1),
                "peak_rss_mb": round(self_mb + workers * worker_mb, 1),
                "bytes_on_disk": sum(p.stat().st_size for p in out.rglob("*") if p.is_file()),
                "oracle_pr_auc": round(summary.oracle_pr_auc, 4),
                "tabular_baseline_pr_auc": round(summary.tabular_baseline_pr_auc, 4),
                "prevalence": round(summary.prevalence, 4),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/simulate.json"))
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--child-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.workers, args.child_out)
        return

    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            cmd = [
                sys.executable,
                __file__,
                "--child",
                str(n),
                "--workers",
                str(args.workers),
                "--child-out",
                str(Path(tmp) / f"run{n}"),
            ]
            child = subprocess.run(cmd, capture_output=True, text=True, check=True)
            run = json.loads(child.stdout.strip().splitlines()[-1])
            runs.append(run)
            print(
                f"{n:>9,} listings  {run['seconds']:8.1f} s  "
                f"{run['listings_per_s']:7.1f} listings/s  peak {run['peak_rss_mb']:7.0f} MB"
            )
    largest = runs[-1]
    rate = largest["listings_per_s"]
    per_listing = [r["seconds"] / r["listings"] * 1000 for r in runs]
    result = {
        "benchmark": "simulate",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "workers": args.workers,
        "listings_per_s": rate,
        "runs": [
            {
                k: r[k]
                for k in (
                    "listings",
                    "seconds",
                    "peak_rss_mb",
                    "parent_peak_rss_mb",
                    "worker_peak_rss_mb",
                    "listings_per_s",
                    "photos",
                    "bytes_on_disk",
                )
            }
            for r in runs
        ],
        "ms_per_listing": [round(x, 3) for x in per_listing],
        "linearity": round(per_listing[-1] / per_listing[0], 3),
        "extrapolated": {
            "listings": 1_000_000,
            "seconds": round(1_000_000 / rate, 1),
            "note": (
                f"extrapolated from the {largest['listings']:,}-listing run's rate, not measured"
            ),
        },
        "oracle_pr_auc": largest["oracle_pr_auc"],
        "tabular_baseline_pr_auc": largest["tabular_baseline_pr_auc"],
        "prevalence": largest["prevalence"],
        "targets": {
            "listings_per_s >= 170": rate >= 170,
            "100k under 600 s": all(r["seconds"] < 600 for r in runs if r["listings"] == 100_000),
            "oracle_pr_auc in [0.80, 0.95]": 0.80 <= largest["oracle_pr_auc"] <= 0.95,
            "tabular_baseline_pr_auc < 0.50": largest["tabular_baseline_pr_auc"] < 0.50,
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_result(args.out, result)
    print(f"1,000,000 listings: ~{result['extrapolated']['seconds']:.0f} s (extrapolated)")
    print(
        f"oracle PR-AUC {result['oracle_pr_auc']:.3f}   "
        f"price+seller baseline PR-AUC {result['tabular_baseline_pr_auc']:.3f}"
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
