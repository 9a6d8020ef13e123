"""Monitoring results as Prometheus metrics, read from the store at each scrape.

Monitoring runs in batch jobs; the server that is scraped anyway (``couturier serve``'s
``/metrics``) exports their newest results through :class:`MonitoringCollector`, so no
Pushgateway is needed and a result is exported as soon as its file is written.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from couturier.monitoring._job import DayReport
from couturier.monitoring._metric_names import MONITORING_METRICS
from couturier.monitoring._store import MonitoringStore

__all__ = ["MonitoringCollector"]


_HELP = {
    "couturier_feature_freshness_seconds": "age of the newest online value of a feature view",
    "couturier_drift_ratio": "effect size / threshold in the last monitoring run",
    "couturier_drift_alert": "1 when drift persisted over the alert window",
    "couturier_estimated_performance": "label-free performance estimate of the last day",
    "couturier_estimate_trusted": "1 when the label-free estimate can be trusted",
    "couturier_performance_floor": "the level the champion must keep",
    "couturier_realized_performance": "performance of the newest matured cohort",
    "couturier_performance_alert": "1 when the performance alert persisted",
    "couturier_label_coverage": "labelled share of the newest matured cohort",
    "couturier_label_delay_days": "days from a prediction to its label (labels of the day)",
    "couturier_monitoring_last_run_timestamp_seconds": "when monitoring last ran",
    "couturier_quarantined_records": "records the last monitoring run could not use",
}
_SHORT = {
    "drift_ratio": "couturier_drift_ratio",
    "drift_alert": "couturier_drift_alert",
    "estimated": "couturier_estimated_performance",
    "trusted": "couturier_estimate_trusted",
    "floor": "couturier_performance_floor",
    "realized": "couturier_realized_performance",
    "perf_alert": "couturier_performance_alert",
    "coverage": "couturier_label_coverage",
    "delay": "couturier_label_delay_days",
    "last_run": "couturier_monitoring_last_run_timestamp_seconds",
    "quarantined": "couturier_quarantined_records",
}


def _gauge(name: str) -> GaugeMetricFamily:
    """A gauge named and labelled as ``MONITORING_METRICS`` declares (the alert rules and the
    dashboard read the same table)."""
    return GaugeMetricFamily(name, _HELP[name], labels=list(MONITORING_METRICS[name]))


class MonitoringCollector(Collector):
    """Exports every watched model's newest :class:`DayReport` and the features' freshness."""

    def __init__(self, store: MonitoringStore) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        g = {short: _gauge(name) for short, name in _SHORT.items()}
        for model in self.store.models():
            report = self.store.latest(model)
            if report is not None:
                _add(g, report)
        fresh = _gauge("couturier_feature_freshness_seconds")
        now = datetime.now(UTC)
        for service, views in self.store.freshness().items():
            for v in views:
                if v.get("newest_value_at"):
                    age = now - datetime.fromisoformat(v["newest_value_at"])
                    fresh.add_metric([service, v["view"]], age.total_seconds())
        yield from (*g.values(), fresh)


def _add(g: dict[str, GaugeMetricFamily], r: DayReport) -> None:
    _add_drift(g, r)
    _add_performance(g, r)
    m = r.model
    if r.label_coverage is not None:
        g["coverage"].add_metric([m], r.label_coverage)
    for q in ("p50", "p90"):
        if q in r.label_delay_days:
            g["delay"].add_metric([m, q], r.label_delay_days[q])
    g["last_run"].add_metric([m], datetime.fromisoformat(r.ran_at).timestamp())
    for reason, n in r.quarantined.items():
        g["quarantined"].add_metric([m, reason], float(n))


def _add_drift(g: dict[str, GaugeMetricFamily], r: DayReport) -> None:
    m = r.model
    for d in r.drift:
        if d.get("threshold"):
            signal = d.get("signal", "data")
            g["drift_ratio"].add_metric([m, signal, d["feature"]], d["value"] / d["threshold"])
    if r.embedding and r.embedding.get("threshold"):
        ratio = r.embedding["mmd2"] / r.embedding["threshold"]
        g["drift_ratio"].add_metric([m, "embedding", "embedding"], ratio)
    for name, s in r.signals.items():
        if name != "performance":
            g["drift_alert"].add_metric([m, name], float(s.alert))


def _add_performance(g: dict[str, GaugeMetricFamily], r: DayReport) -> None:
    m = r.model
    if "performance" in r.signals:
        g["perf_alert"].add_metric([m], float(r.signals["performance"].alert))
    if r.estimated is not None:
        for metric in ("pr_auc", "recall_at_1pct_fpr"):
            g["estimated"].add_metric([m, metric], r.estimated[metric]["value"])
        g["trusted"].add_metric([m], float(r.estimated["trusted"]))
    for metric, value in r.floor.items():
        g["floor"].add_metric([m, metric], value)
    if r.realized is not None:
        for metric in ("pr_auc", "recall_at_1pct_fpr", "ece"):
            value = r.realized[metric]["value"]
            if not math.isnan(value):
                g["realized"].add_metric([m, metric], value)
