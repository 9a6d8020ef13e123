"""A short time-travel replay through the real stack (features, server, log, monitoring,
pipelines, registry), on the scheduled policy so that a retraining runs mid-replay."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from couturier.domain import get_domain
from couturier.monitoring import MonitoringStore
from couturier.replay import ReplayConfig, run_replay


def test_a_replay_serves_logs_monitors_and_retrains_on_simulated_days(tmp_path: Path) -> None:
    # 150 a day: the first model's holdout (~950 listings, ~40 counterfeits) must be big enough
    # for its calibration check (ECE <= 0.03) to judge the model rather than the sample; at 100
    # a day the first version missed it by sampling alone (0.039) once asking prices moved
    config = ReplayConfig(
        days=2, warmup_days=21, listings_per_day=150, drift_day=1, policy="scheduled"
    )
    result = run_replay(config, get_domain("authentication"), tmp_path)
    first = result.promotions[0]
    assert first["why"] == "first champion" and first["champion"] == 1
    assert [d["day"] for d in result.daily] == ["2026-01-22", "2026-01-23"]
    for day in result.daily:
        assert day["requests"] > 100 and day["failed"] == 0 and day["rejected"] == 0
        assert day["served_version"] >= 1 and 0.0 <= day["pr_auc"] <= 1.0
    # the schedule (daily) retrained at the end of each day, through the gate
    assert [p["why"] for p in result.promotions[1:]] == ["schedule", "schedule"]
    for p in result.promotions[1:]:
        assert p["promoted"] == (p["gate_passed"] and p["champion"] == p["version"])
    # the prediction log holds the simulated times, not the wall clock
    log = tmp_path / "home" / "predictions" / "authentication"
    records = [
        json.loads(line) for f in sorted(log.glob("*.jsonl")) for line in f.read_text().splitlines()
    ]
    times = pd.to_datetime([r["at"] for r in records], utc=True)
    assert times.min() >= pd.Timestamp("2026-01-22", tz="UTC") and times.max() < pd.Timestamp(
        "2026-01-24", tz="UTC"
    )
    assert all(len(r["embedding"]) == 64 and "brand_id" in r["listing"] for r in records)
    # one monitoring result per day, judged against v1's reference window (still filling)
    reports = MonitoringStore(tmp_path / "home" / "monitoring").reports("authentication")
    assert [r.day for r in reports] == ["2026-01-22", "2026-01-23"]
    assert reports[0].predictions == result.daily[0]["requests"] and not reports[0].quarantined
    assert not reports[0].signals["data"].judged
