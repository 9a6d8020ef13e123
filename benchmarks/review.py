"""The review console's speed with a full queue: the queue page and recording a verdict.

A marketplace of ``--cases`` listings is simulated from now on (so no verdict has arrived yet),
and the prediction log gets the record ``/v1/authenticate`` writes for each, every one sent to
review (the console reads the log; no model is trained). Behind them, ``--history`` listings
scored and judged before (a record each in the log, decided authentic or counterfeit, and a
verdict each in the label store): the queue must look past them. ``couturier serve`` runs in
its own process; one signed-in client, one request at a time:

* ``queue``: ``GET /review`` (the whole queue ordered, the first 50 rendered);
* ``verdict``: ``POST /review/cases/ID/verdict`` with a control-point report, until its answer
  (the verdict in the console's database and the label store, fsynced, and the next case
  leased); the next case's page is then fetched, untimed, for its form;
* ``case``: ``GET /review/cases/ID`` (for the record).

    python benchmarks/review.py --out benchmarks/results/review.json
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from _results import write_result  # beside this script, on sys.path when it runs
from _server import couturier_server

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support: the log's records


def _world(folder: Path, cases: int, history: int) -> tuple[Path, Path]:
    from tests.support.review import write_records

    from couturier.marketplace import SimulationConfig, simulate

    now = datetime.now(UTC).replace(second=0, microsecond=0)
    market = simulate(
        SimulationConfig.of(listings=cases, days=10, chunk_size=2500, start=now),
        folder / "market",
        workers=2,
    )
    home = folder / "home"
    _history(home, market, history, now)
    listings = market.read("listings").sort_values("listing_id").to_dict("records")
    write_records(home, market, listings, decision="review", clock=now)
    return home, folder / "market"


def _history(home: Path, market: Any, n: int, now: datetime) -> None:
    """``n`` listings decided before (ids from 10^7): their log records and their verdicts."""
    import json

    import pandas as pd

    rng = np.random.default_rng(0)
    ids = 10**7 + np.arange(n)
    p = rng.beta(0.5, 8, n)
    start = now - timedelta(days=30)
    at = [start + timedelta(seconds=float(s)) for s in rng.uniform(0, 29 * 86400, n)]
    folder = home / "predictions" / "authentication"
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / f"predictions-{(now - timedelta(days=1)).date()}.jsonl").open("w") as f:
        for i in range(n):
            record = {
                "listing_id": int(ids[i]),
                "decision": "counterfeit" if p[i] > 0.5 else "authentic",
                "probability": float(p[i]),
                "audit": False,
                "at": at[i].isoformat(),
                "features": {"asking_price": 900.0},
            }
            f.write(json.dumps(record) + "\n")
    when = pd.to_datetime([a + timedelta(days=4) for a in at], utc=True)
    verdicts = pd.DataFrame(
        {
            "verdict_id": 10**8 + np.arange(n),
            "listing_id": ids,
            "expert_id": rng.integers(0, 24, n),
            "verdict": np.where(p > 0.5, "counterfeit", "authentic"),
            "decided_at": when,
            "created_at": when,
        }
    )
    market.append("verdicts", verdicts[verdicts["created_at"] <= pd.Timestamp(now)])


def _p(ms: list[float], q: float) -> float:
    return round(float(np.percentile(ms, q)), 2)


def _summary(ms: list[float]) -> dict[str, Any]:
    return {"n": len(ms), "p50_ms": _p(ms, 50), "p99_ms": _p(ms, 99), "max_ms": round(max(ms), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=5000)
    parser.add_argument("--history", type=int, default=95000, help="listings judged before")
    parser.add_argument("--requests", type=int, default=300, help="timed requests of each kind")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    import requests
    from tests.support.review import PASSWORD, csrf_of, lease_of, signed_in

    from couturier.domains.authentication.review import ReviewStore, store_path
    from couturier.settings import Settings

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        home, market = _world(Path(tmp), args.cases, args.history)
        built_s = time.perf_counter() - t
        store = ReviewStore(store_path(Settings(home=home)))
        store.add_reviewer("bench", PASSWORD)
        store.close()
        env = {"COUTURIER_MARKETPLACE_RUN": str(market)}
        with (
            couturier_server(home, ready_path="/review/login", env=env) as url,
            signed_in(url, "bench") as s,
        ):
            page = s.get(f"{url}/review", timeout=30).text
            opened = int(page.split('id="open-count">', 1)[1].split("<", 1)[0])
            queue = [_timed(s.get, f"{url}/review")[0] for _ in range(args.requests)]
            r = s.post(f"{url}/review/next", data={"csrf": csrf_of(page)}, timeout=30)
            verdicts, cases = [], []
            for i in range(args.requests):
                listing = int(r.url.rsplit("/", 1)[1])
                form = {
                    "csrf": csrf_of(r.text),
                    "lease": lease_of(r.text),
                    "verdict": "counterfeit" if i % 3 == 0 else "authentic",
                    "point.stitch_density": "pass",
                    "measure.stitch_density": "11",
                    "point.hardware": "pass",
                    "note": f"benchmark verdict {i}",
                }
                ms, answer = _timed(
                    s.post,
                    f"{url}/review/cases/{listing}/verdict",
                    data=form,
                    allow_redirects=False,
                )
                if answer.status_code != 303:
                    raise RuntimeError(f"verdict {i}: {answer.status_code} {answer.text[:300]}")
                verdicts.append(ms)
                ms, r = _timed(s.get, f"{url}{answer.headers['location']}")
                cases.append(ms)
        _ = requests  # the client library the sessions use
    result = {
        "cases": opened,
        "history": args.history,
        "queue_p99_ms": _summary(queue)["p99_ms"],
        "verdict_p99_ms": _summary(verdicts)["p99_ms"],
        "queue": _summary(queue),
        "verdict": _summary(verdicts),
        "case_page": _summary(cases),
        "world_s": round(built_s, 1),
        "targets": {"queue_p99_ms": 100, "verdict_p99_ms": 50},
    }
    write_result(args.out, result)
    print({k: v for k, v in result.items() if k.endswith("_ms") or k == "cases"})


def _timed(call: Any, *args: Any, **kwargs: Any) -> tuple[float, Any]:
    t = time.perf_counter()
    answer = call(*args, timeout=30, **kwargs)
    ms = (time.perf_counter() - t) * 1000
    if answer.status_code >= 400:
        raise RuntimeError(f"{args[0]}: {answer.status_code} {answer.text[:300]}")
    return ms, answer


if __name__ == "__main__":
    main()
