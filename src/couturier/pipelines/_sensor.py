"""Retraining on alerts: the sensor's decision, separate from Dagster so it is easy to test.

A watched model whose newest monitoring day carries a persisted alert (data, prediction or
embedding drift, or performance under its floor) asks for each of its domain's ``on_alert``
retrainings, once per alert day (the run key), so the daemon's repeated ticks never start the
same retraining twice. The retraining goes through the gate like any other: a retrained model
that is not better is registered and never promoted, and the alert persists until one is (or
until the drift is the new normal in a new champion's reference window).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from couturier.monitoring import MonitoringStore, Watch

__all__ = ["RetrainRequest", "retrain_requests"]


@dataclass(frozen=True)
class RetrainRequest:
    model: str
    day: str
    alerts: tuple[str, ...]

    @property
    def run_key(self) -> str:
        return f"{self.model}:{self.day}"


def retrain_requests(
    watches: Iterable[Watch], store: MonitoringStore, *, after: str = ""
) -> list[RetrainRequest]:
    """One request per watched model whose newest day (later than ``after``, an ISO day: the
    sensor's cursor) carries a persisted alert."""
    out = []
    for watch in watches:
        report = store.latest(watch.model)
        if report is None or report.day <= after or not report.alerts:
            continue
        out.append(RetrainRequest(watch.model, report.day, tuple(report.alerts)))
    return out
