"""Running monitoring for a watched model: read, judge, persist (what a pipeline calls)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import date
from typing import TYPE_CHECKING

import pandas as pd

from couturier.errors import InvalidInputError
from couturier.monitoring._job import DayReport, monitor_day
from couturier.monitoring._records import Quarantined, read_records
from couturier.monitoring._spec import Watch
from couturier.monitoring._store import MonitoringStore

if TYPE_CHECKING:
    from couturier.marketplace import Marketplace
    from couturier.settings import Settings

__all__ = ["load_labels", "run_monitoring"]

LABEL_COLUMNS = ("key", "label", "arrived_at")


def load_labels(
    watch: Watch, market: Marketplace | None
) -> tuple[pd.DataFrame | None, list[Quarantined]]:
    """The watch's labels, and the rows refused with their reason (the row is named): a label
    for a key that does not exist, a label that is not 0/1, an arrival time without a zone."""
    if watch.labels is None or market is None:
        return None, []
    frame = watch.labels(market)
    missing = [c for c in LABEL_COLUMNS if c not in frame.columns]
    if missing:
        raise InvalidInputError(
            f"{watch.model}'s label source returned no column {', '.join(missing)}; "
            f"a label source returns {', '.join(LABEL_COLUMNS)}",
            field="labels",
        )
    frame = frame.reset_index(drop=True)
    bad = ~frame["label"].isin([0, 1])
    reasons = pd.Series("", index=frame.index)
    reasons[bad] = "bad label: not 0 or 1"
    arrived = pd.to_datetime(frame["arrived_at"], errors="coerce", utc=True)
    reasons[arrived.isna()] = "bad label: arrived_at is not a time"
    known: Collection[int] | None = watch.keys(market) if watch.keys is not None else None
    if known is not None:
        unknown = ~frame["key"].isin(
            pd.Index(list(known)) if not isinstance(known, pd.Index) else known
        )
        reasons[unknown & (reasons == "")] = "unknown key: no such key"
    refused = [
        Quarantined(f"labels row {i}", f"{reasons[i]} ({watch.key}={frame.at[i, 'key']})", "")
        for i in frame.index[reasons != ""]
    ]
    kept = frame[reasons == ""].assign(arrived_at=arrived[reasons == ""])
    return kept[list(LABEL_COLUMNS)].astype({"label": int}), refused


def run_monitoring(
    watch: Watch,
    *,
    settings: Settings,
    day: date,
    market: Marketplace | None = None,
    known_versions: Collection[int] | None = None,
) -> DayReport:
    """Monitor ``day`` of ``watch``'s model and store the result (replacing that day's)."""
    records = read_records(watch, settings.paths.predictions / watch.stream, known_versions)
    labels, refused = load_labels(watch, market)
    records.quarantined.extend(refused)
    store = MonitoringStore(settings.paths.monitoring)
    report = monitor_day(watch, records, labels, day, store.reports(watch.model, before=day))
    store.save(report, records.quarantined)
    return report
