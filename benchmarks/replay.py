"""The loop, measured: time-travel replays of drift scenarios through the real stack.

Each replay simulates a marketplace whose scenario starts a few days into the replay, trains a
first champion on the weeks before, then plays the days through features, a real server, the
prediction log, monitoring and the pipelines (``couturier.replay``). This script runs:

* ``new_factory`` under the triggered and the never policy: how many days after the new
  factory's first labels the trailing recall at 1% FPR is back to 95% of its pre-drift level;
* ``none`` (no drift) under the never policy: false drift alarms per 30 days, and how long a
  30-day replay takes;
* ``camera_change`` under the triggered policy: a drift alert on the photos, and how many
  retrained versions the gate kept from champion;
* ``fraud_ring`` under the never policy: the day the prediction-drift alert is raised.

Quality is measured on the answers actually served, against the simulator's truth, over a
trailing 3-day window (one day holds only a handful of counterfeits). A benchmark, not a test:

    python benchmarks/replay.py --out benchmarks/results/replay.json
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd

from _results import write_result  # beside this script, on sys.path when it runs
from couturier.domain import get_domain
from couturier.marketplace import Marketplace
from couturier.replay import ReplayConfig, ReplayResult, plot_replays, run_replay

METRIC = "recall_at_1pct_fpr_3d"
NEWCOMER = 5  # the new factory's id (couturier.marketplace's NEW_FACTORY)


def _replay(args: argparse.Namespace, scenario: str, policy: str, days: int) -> ReplayResult:
    config = ReplayConfig(
        scenario=scenario,
        days=days,
        policy=policy,  # type: ignore[arg-type]
        warmup_days=args.warmup_days,
        listings_per_day=args.listings_per_day,
        drift_day=args.drift_day,
        seed=args.seed,
    )
    folder = Path(args.work) / f"{scenario}-{policy}"
    print(f"== {scenario}, {policy}, {days} days", flush=True)
    return run_replay(
        config,
        get_domain("authentication"),
        folder,
        overwrite=True,
        say=lambda m: print(m, flush=True),
    )


def _series(result: ReplayResult, key: str = METRIC) -> list[float | None]:
    return [
        None if d.get(key) is None or math.isnan(d[key]) else round(d[key], 4) for d in result.daily
    ]


def _pre_drift(result: ReplayResult) -> float:
    before = [
        d[METRIC]
        for d in result.daily[: result.config["drift_day"]]
        if not math.isnan(d.get(METRIC, math.nan))
    ]
    return float(sum(before) / len(before)) if before else math.nan


def _first_newcomer_label(result: ReplayResult, work: Path) -> str | None:
    """The day the first verdict on a new-factory counterfeit arrived."""
    market = Marketplace(work / "new_factory-triggered" / "marketplace")
    truth = market.read("truth", columns=["listing_id", "factory_id"])
    verdicts = market.read("verdicts", columns=["listing_id", "created_at"])
    ids = truth.loc[truth["factory_id"] == NEWCOMER, "listing_id"]
    arrived = verdicts[verdicts["listing_id"].isin(ids)]["created_at"]
    return None if arrived.empty else arrived.min().date().isoformat()


def _recovery(result: ReplayResult, level: float, since: str | None) -> float | None:
    """Days from ``since`` (the new factory's first label) to the first day, after a model
    retrained since the drift was promoted, whose trailing recall is back at 95% of ``level``.
    None: no retrained model was promoted after the drift, or the recall never came back."""
    drift = result.drift_starts
    promoted = [p["day"] for p in result.promotions if p["promoted"] and p["day"] >= drift]
    if since is None or math.isnan(level) or not promoted:
        return None
    for d in result.daily:
        value = d.get(METRIC, math.nan)
        if d["day"] > promoted[0] and d["day"] >= since and value >= 0.95 * level:
            return float((pd.Timestamp(d["day"]) - pd.Timestamp(since)).days)
    return None


def _below(result: ReplayResult, level: float) -> float:
    """Share of the days after the drift whose trailing recall is under 95% of ``level``."""
    after = [d.get(METRIC, math.nan) for d in result.daily if d["day"] >= result.drift_starts]
    known = [v for v in after if not math.isnan(v)]
    return round(sum(v < 0.95 * level for v in known) / len(known), 3) if known else math.nan


def _alert_day(result: ReplayResult, signal: str) -> int | None:
    """Replay days from the drift's start to the first persisted ``signal`` alert."""
    for d in result.daily:
        if d["index"] >= result.config["drift_day"] and signal in d["alerts"]:
            return int(d["index"] - result.config["drift_day"])
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--work", default="/tmp/couturier-replays")
    parser.add_argument("--days", type=int, default=25)
    parser.add_argument("--warmup-days", type=int, default=40)
    parser.add_argument("--listings-per-day", type=int, default=150)
    parser.add_argument("--drift-day", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--only", nargs="*", default=["new_factory", "none", "camera_change", "fraud_ring"]
    )
    args = parser.parse_args()
    work = Path(args.work)
    out: dict[str, Any] = {"benchmark": "replay", "config": vars(args), "runs": {}}

    def save() -> None:
        write_result(Path(args.out), out)

    if "new_factory" in args.only:
        triggered = _replay(args, "new_factory", "triggered", args.days)
        never = _replay(args, "new_factory", "never", args.days)
        level = _pre_drift(never)
        first = _first_newcomer_label(triggered, work)
        out["new_factory"] = {
            "pre_drift_recall": level,
            "first_newcomer_label": first,
            "triggered": {
                "recovery_days": _recovery(triggered, level, first),
                "days_below_95pct": _below(triggered, level),
                "daily_recall": _series(triggered),
                "promotions": triggered.promotions,
                "alerts": [d["alerts"] for d in triggered.daily],
            },
            "never": {
                "days_below_95pct": _below(never, level),
                "daily_recall": _series(never),
                "alerts": [d["alerts"] for d in never.daily],
            },
        }
        out["runs"]["new_factory"] = {"triggered": asdict(triggered), "never": asdict(never)}
        plot_replays([triggered, never], Path(args.out).with_name("replay-new_factory.png"))
        save()
    if "none" in args.only:
        calm = _replay(args, "none", "never", 30)
        drift_days = [
            d for d in calm.daily if set(d["alerts"]) & {"data", "prediction", "embedding"}
        ]
        # an alarm is a run of alert days; a new alarm starts after a day without one
        alarms = sum(
            1
            for i, d in enumerate(calm.daily)
            if d in drift_days and (i == 0 or calm.daily[i - 1] not in drift_days)
        )
        out["no_drift"] = {
            "false_alarms_per_30_days": alarms * 30 / len(calm.daily),
            "alert_days": len(drift_days),
        }
        out["replay_30d_seconds"] = calm.seconds
        out["runs"]["none"] = asdict(calm)
        save()
    if "camera_change" in args.only:
        camera = _replay(args, "camera_change", "triggered", args.days)
        retrains = [p for p in camera.promotions if p["why"] != "first champion"]
        out["camera_change"] = {
            "alert_raised": _alert_day(camera, "embedding") is not None,  # on the photos
            "embedding_alert_day": _alert_day(camera, "embedding"),
            "blocked_promotions": sum(not p["promoted"] for p in retrains),
            "retrains": len(retrains),
        }
        out["runs"]["camera_change"] = asdict(camera)
        save()
    if "fraud_ring" in args.only:
        ring = _replay(args, "fraud_ring", "never", args.days)
        out["fraud_ring"] = {"alert_day": _alert_day(ring, "prediction")}
        out["runs"]["fraud_ring"] = asdict(ring)
        save()
    print({k: v for k, v in out.items() if k != "runs"}, file=sys.stderr)


if __name__ == "__main__":
    t = time.perf_counter()
    main()
    print(f"{time.perf_counter() - t:.0f} s", file=sys.stderr)
