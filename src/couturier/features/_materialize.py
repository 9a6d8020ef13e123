"""Incremental, idempotent materialization into the online store.

Each view's watermark is Feast's own record of what it materialized (``materialization_intervals``
in the registry), which Feast writes only after a view's write succeeded. A run takes each view
from its watermark to ``end``; a view already at ``end`` is skipped, so a re-run changes nothing,
and a run that failed midway resumes where it stopped. Online stores are written by upsert,
so readers keep getting the last good values while a run is in flight.
"""

from __future__ import annotations

import contextlib
import io
import time
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pandas as pd
import pyarrow.parquet as pq

from couturier.features._repo import FeatureRepo
from couturier.features.types import EVENT_TS

__all__ = ["Freshness", "ViewMaterialization", "freshness", "materialize", "watermark"]


@dataclass(frozen=True)
class ViewMaterialization:
    view: str
    start: datetime | None
    end: datetime
    status: str  # "materialized" | "up to date"
    seconds: float


def watermark(repo: FeatureRepo, view: str) -> datetime | None:
    """The end of the newest successful materialization of ``view``, or None."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fv = repo.store.registry.get_feature_view(view, repo.project, allow_cache=False)
    intervals = fv.materialization_intervals
    return max(end for _, end in intervals) if intervals else None


def materialize(
    repo: FeatureRepo, end: datetime | None = None, views: list[str] | None = None
) -> list[ViewMaterialization]:
    """Bring every view (or ``views``) of the online store up to ``end`` (default: now)."""
    end = (end or datetime.now(UTC)).astimezone(UTC)
    report = []
    for spec in repo.features.views:
        if views is not None and spec.name not in views:
            continue
        started = time.perf_counter()
        start = watermark(repo, spec.name)
        if start is None:
            start = _first_event(repo, spec.name)
        if start is None or start >= end:
            report.append(ViewMaterialization(spec.name, start, end, "up to date", 0.0))
            continue
        # Feast prints its own progress; the CLI shows ours
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            repo.store.materialize(start_date=start, end_date=end, feature_views=[spec.name])
        report.append(
            ViewMaterialization(
                spec.name, start, end, "materialized", time.perf_counter() - started
            )
        )
    return report


def _event_times(repo: FeatureRepo, view: str) -> pd.Series | None:
    """The event times in a view's source, or None when it has no source yet."""
    path = repo.source_path(view)
    if not path.exists():
        return None
    times: pd.Series = pq.read_table(path, columns=[EVENT_TS])[EVENT_TS].to_pandas()
    return times


def _first_event(repo: FeatureRepo, view: str) -> datetime | None:
    times = _event_times(repo, view)
    if times is None or len(times) == 0:
        return None
    first: datetime = times.min().to_pydatetime()
    return first - timedelta(seconds=1)  # a margin, so the first event is surely inside


@dataclass(frozen=True)
class Freshness:
    view: str
    newest_value_at: datetime | None  # newest event time the online store can hold
    materialized_until: datetime | None
    age_seconds: float | None
    ttl_seconds: float
    stale: bool


def freshness(repo: FeatureRepo, now: datetime | None = None) -> list[Freshness]:
    """Per view: how old the newest online value is, against the view's TTL."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    out = []
    for spec in repo.features.views:
        until = watermark(repo, spec.name)
        newest = None
        times = _event_times(repo, spec.name) if until is not None else None
        if times is not None:
            held = times[times <= until]
            newest = held.max().to_pydatetime() if len(held) else None
        age = (now - newest).total_seconds() if newest is not None else None
        ttl = spec.ttl.total_seconds()
        out.append(Freshness(spec.name, newest, until, age, ttl, age is None or age > ttl))
    return out
