"""One monitoring run: a model's day, judged against its champion's reference window.

This module is where monitoring *decides*; the statistics it calls (``_drift``, ``_embedding``,
``_performance``, ``_estimate``) only measure. For the day being judged it takes the version
that served most of the day's records, and compares the day's records of that version with the
version's own reference window (its first ``Watch.reference_days`` days of serving):

* **data drift** per watched feature, **prediction drift** on the score and **embedding drift**
  on the embeddings as a whole, each flagged only when the effect is large for its sample size;
* **new values** (a brand or product never seen in the reference) as a signal of their own;
* **estimated performance** of the day, label-free, from the calibrated scores, with the
  reason when it cannot be trusted;
* **realized performance** of the newest cohort whose labels have matured, weighted by each
  labelling route's coverage (experts label flagged listings first);
* **label coverage** and **label delay**.

A signal flagged today becomes an *alert* only when it persisted (``AlertPolicy``: ``need`` of
the last ``window`` days), so one noisy day never starts a retraining.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from couturier.monitoring._drift import CategoricalDrift, FeatureDrift, NumericDrift, persisted
from couturier.monitoring._embedding import MMDDrift
from couturier.monitoring._estimate import check_trust, estimate_performance
from couturier.monitoring._performance import cohort_performance, label_weights
from couturier.monitoring._records import Records
from couturier.monitoring._spec import Watch
from couturier.monitoring.types import CohortPerformance

__all__ = ["SIGNALS", "DayReport", "Signal", "monitor_day"]

SIGNALS = ("data", "prediction", "embedding", "performance")
METRICS = ("pr_auc", "recall_at_1pct_fpr")
#: fewer rows than this on a day (or in a reference window) and drift is not judged
MIN_ROWS = 50


@dataclass(frozen=True)
class Signal:
    flagged: bool  # today
    alert: bool  # persisted over the alert window
    judged: bool
    detail: str


@dataclass
class DayReport:
    """Everything one monitoring run found for one model and one day (JSON-ready)."""

    model: str
    day: str
    ran_at: str
    version: int | None
    predictions: int
    quarantined: dict[str, int]
    reference: dict[str, Any]
    degraded: int = 0  # answers served degraded that day: counted, not judged
    refused_labels: int = 0
    drift: list[dict[str, Any]] = field(default_factory=list)
    embedding: dict[str, Any] | None = None
    new_values: dict[str, dict[str, Any]] = field(default_factory=dict)
    estimated: dict[str, Any] | None = None
    reference_level: dict[str, float] = field(default_factory=dict)
    floor: dict[str, float] = field(default_factory=dict)
    realized: dict[str, Any] | None = None
    label_coverage: float | None = None
    label_delay_days: dict[str, float] = field(default_factory=dict)
    signals: dict[str, Signal] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def alerts(self) -> list[str]:
        return [name for name, s in self.signals.items() if s.alert]


def _bounds(day: date) -> tuple[pd.Timestamp, pd.Timestamp]:
    start = pd.Timestamp(datetime(day.year, day.month, day.day, tzinfo=UTC))
    return start, start + pd.Timedelta(days=1)


def _interval(x: Any) -> dict[str, float]:
    return {"value": float(x.value), "low": float(x.low), "high": float(x.high)}


def _reference(
    watch: Watch, frame: pd.DataFrame, version: int
) -> tuple[pd.DataFrame, dict[str, Any]]:
    rows = frame[frame["version"] == version]
    start = rows["time"].min()
    end = start + pd.Timedelta(days=watch.reference_days)
    ref = rows[rows["time"] < end]
    return ref, {"version": version, "start": str(start), "end": str(end), "rows": len(ref)}


def _drift(
    watch: Watch, ref: pd.DataFrame, today: pd.DataFrame, report: DayReport
) -> dict[str, bool | None]:
    """Data, prediction and embedding drift of ``today`` against ``ref``; ``None``: not judged."""
    # a feature with no value in the reference cannot be compared: said, and skipped
    columns = [c for c in (*watch.numeric, *watch.categorical) if ref[c].notna().any()]
    report.notes += [
        f"{c}: no value in the reference window, not judged"
        for c in (*watch.numeric, *watch.categorical)
        if c not in columns
    ]
    categorical = tuple(c for c in watch.categorical if c in columns)
    flags: dict[str, bool | None] = {"data": None, "prediction": None, "embedding": None}
    if columns:
        detectors = FeatureDrift(
            categorical=categorical,
            numeric=NumericDrift(min_effect=watch.min_psi, min_missing_effect=watch.min_missing_h),
            categories=CategoricalDrift(min_missing_effect=watch.min_missing_h),
        )
        results = detectors.fit(ref[columns]).score(today[columns])
        report.drift = [r.as_dict() for r in results]
        report.new_values = {
            r.feature: {"values": list(r.new_values)[:20], "share": r.new_share}
            for r in results
            if r.new_values
        }
        flags["data"] = any(r.drifted for r in results)
    score = NumericDrift().fit(ref["score"].to_numpy()).score(today["score"].to_numpy())
    report.drift.append({**score.as_dict(), "feature": "score", "signal": "prediction"})
    flags["prediction"] = score.drifted
    if watch.embedding is not None:
        emb = MMDDrift().fit(np.stack(ref["embedding"].to_list()))
        result = emb.score(np.stack(today["embedding"].to_list()))
        report.embedding = result.as_dict()
        flags["embedding"] = result.drifted
    return flags


def _labelled(
    labels: pd.DataFrame | None, cohort: pd.DataFrame, until: pd.Timestamp
) -> pd.DataFrame:
    """``cohort`` (one row per key) with ``label`` where it had arrived by ``until``."""
    rows = cohort.drop_duplicates("key", keep="first").copy()
    if labels is None or labels.empty:
        rows["label"] = np.nan
        return rows
    arrived = labels[labels["arrived_at"] <= until].drop_duplicates("key", keep="last")
    return rows.merge(arrived[["key", "label"]], on="key", how="left")


@dataclass(frozen=True)
class _Matured:
    """The newest matured cohort: what is stored, the realized metrics, and its scores."""

    stored: dict[str, Any]
    performance: CohortPerformance
    scores: np.ndarray


def _realized(
    watch: Watch, frame: pd.DataFrame, labels: pd.DataFrame | None, day: date, version: int
) -> _Matured | None:
    """The newest matured cohort of ``version`` (never another version's: a new champion is
    not judged on the old one's answers), weighted by its labelling routes' coverage."""
    cohort_day = day - timedelta(days=math.ceil(watch.maturity_days))
    start, end = _bounds(cohort_day)
    when = (frame["time"] >= start) & (frame["time"] < end)
    cohort = frame[when & (frame["version"] == version)]
    if cohort.empty:
        return None
    rows = _labelled(labels, cohort, _bounds(day)[1])
    has = rows["label"].notna().to_numpy()
    weighting = label_weights(has, rows["stratum"].to_numpy())
    perf = cohort_performance(
        rows.loc[has, "label"].to_numpy(dtype=int),
        rows.loc[has, "score"].to_numpy(dtype=float),
        weights=weighting.weights,
    )
    stored = {
        "cohort": cohort_day.isoformat(),
        "rows": len(rows),
        "labelled": int(has.sum()),
        "positives": perf.positives,
        "coverage": float(has.mean()),
        "coverage_by_stratum": weighting.coverage,
        "uncovered_strata": list(weighting.uncovered),
        "pr_auc": _interval(perf.pr_auc),
        "recall_at_1pct_fpr": _interval(perf.recall_at_fpr),
        "ece": _interval(perf.ece),
        "note": perf.reason,
    }
    return _Matured(stored, perf, rows["score"].to_numpy(dtype=float))


def _label_delays(labels: pd.DataFrame | None, frame: pd.DataFrame, day: date) -> dict[str, float]:
    if labels is None or labels.empty:
        return {}
    start, end = _bounds(day)
    today = labels[(labels["arrived_at"] >= start) & (labels["arrived_at"] < end)]
    first = frame.drop_duplicates("key", keep="first")[["key", "time"]]
    joined = today.merge(first, on="key", how="inner")
    if joined.empty:
        return {}
    days = (joined["arrived_at"] - joined["time"]).dt.total_seconds() / 86400
    return {
        "p50": float(days.quantile(0.5)),
        "p90": float(days.quantile(0.9)),
        "n": float(len(days)),
    }


def _level_and_floor(
    watch: Watch, ref: pd.DataFrame, n: int, chunks: int = 20
) -> tuple[dict[str, float], dict[str, float]]:
    """The reference window's estimated level, at the day's sample size, and the floor.

    Metrics like recall at 1% FPR depend on the sample size they are computed on, so the
    level is the mean estimate over chunks of the reference as large as the day; the floor is
    ``1 - tolerance`` of it, or lower where chunk-to-chunk noise alone reaches further down
    (2.33 standard deviations: a 1% one-sided false alarm per day before persistence)."""
    scores = ref["score"].to_numpy()
    rng = np.random.default_rng(0)
    size = min(n, len(scores))
    draws = [
        estimate_performance(rng.choice(scores, size, replace=False), draws=50, seed=i)
        for i in range(chunks if size < len(scores) else 1)
    ]
    level, floor = {}, {}
    for metric, values in (
        ("pr_auc", [d.pr_auc.value for d in draws]),
        ("recall_at_1pct_fpr", [d.recall_at_fpr.value for d in draws]),
    ):
        mean, sd = float(np.nanmean(values)), float(np.nanstd(values))
        level[metric] = mean
        floor[metric] = min((1 - watch.alerts.tolerance) * mean, mean - 2.33 * sd)
    return level, floor


def _performance(
    watch: Watch,
    ref: pd.DataFrame,
    today: pd.DataFrame,
    matured: _Matured | None,
    report: DayReport,
) -> bool | None:
    """Estimated (today) and realized (newest matured cohort) performance against the floor
    (:func:`_level_and_floor`)."""
    if len(ref) < MIN_ROWS or len(today) < MIN_ROWS:
        return None
    report.reference_level, report.floor = _level_and_floor(watch, ref, len(today))
    floor = report.floor
    estimate = estimate_performance(today["score"].to_numpy())
    if matured is not None:
        estimate = check_trust(
            estimate,
            watch.alerts.reference_ece,
            matured.performance,
            recent_estimate=estimate_performance(matured.scores),
        )
    report.estimated = {
        "pr_auc": _interval(estimate.pr_auc),
        "recall_at_1pct_fpr": _interval(estimate.recall_at_fpr),
        "prevalence": float(estimate.prevalence),
        "trusted": estimate.trusted,
        "reason": estimate.reason,
    }
    low = estimate.recall_at_fpr.value < floor["recall_at_1pct_fpr"]
    flagged = low and (estimate.trusted or watch.alerts.act_on_untrusted_estimate)
    if matured is not None and matured.performance.recall_at_fpr.known:
        # the realized interval lies wholly under the floor: labels say it, not the estimate
        flagged = flagged or matured.performance.recall_at_fpr.high < floor["recall_at_1pct_fpr"]
    return flagged


def _signal(
    name: str,
    flag: bool | None,
    history: Sequence[DayReport],
    watch: Watch,
    detail: str,
    day: date,
) -> Signal:
    """Today's flag, and whether it persisted: ``need`` of the last ``window`` calendar days
    (a day without a stored report counts as not flagged)."""
    first = (day - timedelta(days=watch.alerts.window - 1)).isoformat()
    flagged = {
        h.day
        for h in history
        if first <= h.day < day.isoformat() and name in h.signals and h.signals[name].flagged
    }
    past = [
        (day - timedelta(days=k)).isoformat() in flagged
        for k in range(watch.alerts.window - 1, 0, -1)
    ]
    window = [*past, bool(flag)]
    alert = bool(
        flag is not None and persisted(window, window=watch.alerts.window, need=watch.alerts.need)
    )
    return Signal(flagged=bool(flag), alert=alert, judged=flag is not None, detail=detail)


def monitor_day(
    watch: Watch,
    records: Records,
    labels: pd.DataFrame | None,
    day: date,
    history: Sequence[DayReport] = (),
) -> DayReport:
    """Judge ``day`` of ``watch``'s model; ``history``: the reports of the days before it."""
    start, end = _bounds(day)
    served = records.frame
    frame = served[~served["degraded"].astype(bool)]  # degraded answers: counted, not judged
    everything = served[(served["time"] >= start) & (served["time"] < end)]
    day_rows = frame[(frame["time"] >= start) & (frame["time"] < end)]
    version = int(day_rows["version"].mode().iloc[0]) if len(day_rows) else None
    report = DayReport(
        model=watch.model,
        day=day.isoformat(),
        ran_at=datetime.now(UTC).isoformat(timespec="seconds"),
        version=version,
        predictions=len(everything),
        quarantined=records.reasons(day.isoformat()),
        reference={},
        degraded=len(everything) - len(day_rows),
        refused_labels=sum(q.where.startswith("labels") for q in records.quarantined),
    )
    matured = _realized(watch, frame, labels, day, version) if version is not None else None
    if matured is not None:
        report.realized = matured.stored
        report.label_coverage = matured.stored["coverage"]
    report.label_delay_days = _label_delays(labels, served, day)
    flags: dict[str, bool | None] = dict.fromkeys(SIGNALS)
    why = "no predictions that day"
    if version is not None:
        ref, report.reference = _reference(watch, frame, version)
        today = day_rows[day_rows["version"] == version]
        if pd.Timestamp(report.reference["end"]) > start:
            why = f"v{version}'s reference window fills until {report.reference['end']}"
        elif len(ref) < MIN_ROWS or len(today) < MIN_ROWS:
            why = f"too few rows (reference {len(ref)}, day {len(today)}; need {MIN_ROWS})"
        else:
            flags.update(_drift(watch, ref, today, report))
            flags["performance"] = _performance(watch, ref, today, matured, report)
            why = ""
    report.signals = {
        name: _signal(name, flags[name], history, watch, why, day) for name in SIGNALS
    }
    return report
