"""The decision logic of a monitoring day (``monitor_day``), on synthetic prediction logs."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from couturier.monitoring import (
    AlertPolicy,
    DayReport,
    MonitoringStore,
    Records,
    Watch,
    monitor_day,
)

START = datetime(2026, 2, 1, tzinfo=UTC)
WATCH = Watch(
    model="m",
    stream="m",
    key="key",
    numeric=("features.x",),
    categorical=("listing.brand",),
    embedding="embedding",
    maturity_days=3,
    reference_days=5,
    alerts=AlertPolicy(window=3, need=2),
)


def _log(
    days: int, *, per_day: int = 300, shift_from: int | None = None, seed: int = 0
) -> pd.DataFrame:
    """``days`` of predictions of v1; from ``shift_from`` on, x, the brands and the embeddings
    move and the scores with them."""
    rng = np.random.default_rng(seed)
    rows = []
    for d in range(days):
        shifted = shift_from is not None and d >= shift_from
        x = rng.normal(1.0 if shifted else 0.0, 1.0, per_day)
        p = 1 / (1 + np.exp(-(x - 3.5)))
        brands = rng.choice(["a", "b", "c", "z"] if shifted else ["a", "b", "c"], per_day)
        emb = rng.normal(0.6 if shifted else 0.0, 1.0, (per_day, 8)).astype(np.float32)
        for i in range(per_day):
            rows.append(
                {
                    "key": d * per_day + i,
                    "time": START + timedelta(days=d, seconds=60 * i),
                    "version": 1,
                    "score": float(p[i]),
                    "features.x": float(x[i]),
                    "listing.brand": str(brands[i]),
                    "stratum": "flagged" if p[i] > 0.3 else "rest",
                    "degraded": False,
                    "embedding": emb[i],
                }
            )
    frame = pd.DataFrame(rows)
    frame["time"] = pd.to_datetime(frame["time"], utc=True)
    return frame


def _labels(frame: pd.DataFrame, seed: int = 1) -> pd.DataFrame:
    """Labels drawn from the scores (calibrated), arriving a day after flagged listings and
    two days after the rest; one in two of the rest never gets one."""
    rng = np.random.default_rng(seed)
    y = (rng.random(len(frame)) < frame["score"].to_numpy()).astype(int)
    flagged = frame["stratum"].to_numpy() == "flagged"
    delay = np.where(flagged, 1.0, 2.0)
    keep = flagged | (rng.random(len(frame)) < 0.5)
    arrived = frame["time"] + pd.to_timedelta(delay, unit="D")
    labels = pd.DataFrame({"key": frame["key"], "label": y, "arrived_at": arrived})
    kept: pd.DataFrame = labels.loc[keep].reset_index(drop=True)
    return kept


def _run(frame: pd.DataFrame, labels: pd.DataFrame | None, days: range) -> list[DayReport]:
    history: list[DayReport] = []
    for d in days:
        history.append(
            monitor_day(WATCH, Records(frame), labels, (START + timedelta(days=d)).date(), history)
        )
    return history


def test_nothing_is_judged_while_the_reference_window_fills() -> None:
    frame = _log(3)
    (report,) = _run(frame, None, range(2, 3))
    assert report.version == 1 and report.predictions == 300
    assert not any(s.judged for s in report.signals.values())
    assert "reference window fills until" in report.signals["data"].detail


def test_a_stable_world_raises_no_alert() -> None:
    frame = _log(12)
    reports = _run(frame, _labels(frame), range(5, 12))
    assert all(r.signals["data"].judged for r in reports)
    assert not any(r.alerts for r in reports)
    assert all(r.estimated is not None and r.estimated["trusted"] for r in reports)


def test_a_shift_is_flagged_at_once_and_alerts_once_it_persists() -> None:
    frame = _log(10, shift_from=7)
    reports = _run(frame, None, range(5, 10))
    flagged = [[n for n, s in r.signals.items() if s.flagged] for r in reports]
    assert flagged[0] == flagged[1] == []  # days 5 and 6: as the reference
    assert {"data", "prediction", "embedding"} <= set(flagged[2])  # day 7: flagged, no alert yet
    assert reports[2].alerts == []
    assert {"data", "prediction", "embedding"} <= set(reports[3].alerts)  # day 8: 2 of 3 days
    assert "z" in reports[2].new_values["listing.brand"]["values"]  # a brand never seen: a signal
    assert reports[2].new_values["listing.brand"]["share"] == pytest.approx(0.25, abs=0.06)


def test_realized_performance_is_weighted_by_each_labelling_routes_coverage() -> None:
    frame = _log(12)
    labels = _labels(frame)
    report = _run(frame, labels, range(11, 12))[0]
    realized = report.realized
    assert realized is not None and realized["cohort"] == date(2026, 2, 9).isoformat()
    cov = realized["coverage_by_stratum"]
    assert cov["flagged"] == 1.0 and 0.4 < cov["rest"] < 0.6
    assert 0.4 < report.label_coverage < 0.7  # type: ignore[operator]
    # the delay is measured on the labels that arrived that day: flagged ones after one day,
    # the rest after two (and those are most of what arrives)
    delays = report.label_delay_days
    assert delays["n"] > 100
    assert delays["p50"] == pytest.approx(2.0)
    assert delays["p90"] == pytest.approx(2.0)


def test_reports_round_trip_through_the_store(tmp_path: object) -> None:
    frame = _log(9, shift_from=7)
    reports = _run(frame, None, range(5, 9))
    store = MonitoringStore(tmp_path)  # type: ignore[arg-type]
    for r in reports:
        store.save(r)
    again = store.reports("m")
    assert [r.day for r in again] == [r.day for r in reports]
    assert again[-1].alerts == reports[-1].alerts and again[-1].signals == reports[-1].signals
    # JSON's own booleans and numbers, not numpy's written as strings
    assert all(type(d["drifted"]) is bool for r in again for d in r.drift)
    assert store.latest("m").day == reports[-1].day  # type: ignore[union-attr]
    assert store.reports("m", before=date(2026, 2, 8))[-1].day == "2026-02-07"


def test_a_model_that_stops_separating_raises_a_performance_alert() -> None:
    frame = _log(10)
    late = frame["time"] >= START + timedelta(days=7)
    # from day 7 the scores bunch up near the base rate: the ranking is gone
    rng = np.random.default_rng(5)
    frame.loc[late, "score"] = np.clip(0.04 + rng.normal(0, 0.01, late.sum()), 0, 1)
    reports = _run(frame, None, range(5, 10))
    perf = [r.signals["performance"] for r in reports]
    assert [s.flagged for s in perf] == [False, False, True, True, True]
    assert [s.alert for s in perf] == [False, False, False, True, True]
    est = reports[-1].estimated
    assert (
        est is not None
        and est["recall_at_1pct_fpr"]["value"] < reports[-1].floor["recall_at_1pct_fpr"]
    )


def test_a_new_version_is_judged_on_its_own_reference_and_its_own_cohorts() -> None:
    frame = _log(16)
    frame.loc[frame["time"] >= START + timedelta(days=8), "version"] = 2
    labels = _labels(frame)
    reports = {r.day: r for r in _run(frame, labels, range(7, 16))}
    assert reports["2026-02-08"].version == 1 and reports["2026-02-08"].signals["data"].judged
    v2 = reports["2026-02-09"]
    assert v2.version == 2 and not v2.signals["data"].judged  # v2's reference fills first
    assert v2.realized is None  # the cohort of 2026-02-06 was v1's: not v2's to answer for
    later = reports["2026-02-14"]
    assert later.realized is not None and later.realized["cohort"] == "2026-02-11"
    assert later.signals["data"].judged and later.reference["version"] == 2


def test_persistence_counts_calendar_days_not_stored_reports() -> None:
    frame = _log(12, shift_from=7)
    day7 = _run(frame, None, range(7, 8))
    # day 8 and 9 were never monitored: day 10's window (8, 9, 10) holds one flag only
    day10 = monitor_day(WATCH, Records(frame), None, date(2026, 2, 11), day7)
    assert day10.signals["data"].flagged and not day10.signals["data"].alert


def test_degraded_answers_are_counted_and_left_out_of_the_judgement() -> None:
    frame = _log(9)
    last = frame["time"] >= START + timedelta(days=8)
    frame.loc[last & (frame.index % 3 == 0), "degraded"] = True
    frame.loc[last & frame["degraded"], "features.x"] = 9.0  # defaults: far from anything
    (report,) = _run(frame, None, range(8, 9))
    assert report.degraded == 100 and report.predictions == 300
    assert not report.signals["data"].flagged
