"""The names and labels of the Prometheus metrics the monitoring layer exports.

One place for three readers: the monitoring exporter (which creates these gauges), the alerting
rules in ``deploy/prometheus/alerts.yml`` and the Grafana dashboard built by
:mod:`couturier.monitoring._dashboard`. The tests check that every ``couturier_*`` name the
rules and the dashboard use is here or among serving's own metrics (:func:`known_series`).

All are gauges, set once per monitoring run (daily for a cheap model):

- ``couturier_feature_freshness_seconds{service, view}``: age of the newest materialized row of
  a feature view
- ``couturier_drift_ratio{model, signal, feature}``: effect size / threshold of the last run;
  >= 1 means drifted that day
- ``couturier_drift_alert{model, signal}``: 1 when drift persisted over the alert window (the
  monitoring code decides), else 0
- ``couturier_estimated_performance{model, metric}``: the label-free estimate
- ``couturier_estimate_trusted{model}``: 1 when the estimate can be trusted, 0 under suspected
  concept shift
- ``couturier_performance_floor{model, metric}``: the level the champion must keep
- ``couturier_realized_performance{model, metric}``: the newest cohort whose labels matured
- ``couturier_performance_alert{model}``: 1 when the performance alert persisted, else 0
- ``couturier_label_coverage{model}``: 0..1
- ``couturier_label_delay_days{model, quantile}``: days from a prediction to its label
- ``couturier_monitoring_last_run_timestamp_seconds{model}``: when monitoring last ran
- ``couturier_quarantined_records{model, reason}``: records the last run could not use

The label values the rules and the dashboard expect: ``signal`` is ``data``, ``prediction`` or
``embedding``; ``metric`` is ``pr_auc`` or ``recall_at_1pct_fpr`` (realized performance may also
carry ``ece``, which is better lower: the rules compare only the first two with the floor);
``quantile`` is ``p50`` or ``p90`` (the label-delay alert reads ``p90``); ``reason`` is a
quarantine reason's kind (``missing field``, ``bad value``, ``unknown version``).

>>> sorted(MONITORING_METRICS["couturier_drift_ratio"])
['feature', 'model', 'signal']
"""

from __future__ import annotations

import re

__all__ = ["MONITORING_METRICS", "known_series", "referenced_metrics", "unknown_references"]

#: Every metric the monitoring layer exports (all gauges): name -> label names, in order.
MONITORING_METRICS: dict[str, tuple[str, ...]] = {
    "couturier_feature_freshness_seconds": ("service", "view"),
    "couturier_drift_ratio": ("model", "signal", "feature"),
    "couturier_drift_alert": ("model", "signal"),
    "couturier_estimated_performance": ("model", "metric"),
    "couturier_estimate_trusted": ("model",),
    "couturier_performance_floor": ("model", "metric"),
    "couturier_realized_performance": ("model", "metric"),
    "couturier_performance_alert": ("model",),
    "couturier_label_coverage": ("model",),
    "couturier_label_delay_days": ("model", "quantile"),
    "couturier_monitoring_last_run_timestamp_seconds": ("model",),
    "couturier_quarantined_records": ("model", "reason"),
}

# Series names prometheus_client derives from a metric's name, by its type.
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "gauge": ("",),
}

# A metric name in PromQL: not part of a longer name, and not inside a recording rule's name
# (``route_model:couturier_requests:rate5m`` is a rule's output, not an exported metric).
_NAME = r"(?<![\w:])couturier_[A-Za-z0-9_]+(?![\w:])"
# A name with its label matchers; a quoted value may hold braces (a route's template).
_SELECTOR = re.compile(rf'({_NAME})\s*\{{((?:[^{{}}"]|"(?:[^"\\]|\\.)*")*)\}}')
_MATCHER = re.compile(r'(\w+)\s*(?:=~|!~|!=|=)\s*"(?:[^"\\]|\\.)*"')


def referenced_metrics(text: str) -> set[str]:
    """The exported metric names (``couturier_*``) that PromQL text (an expression, a rules
    file) names.

    >>> sorted(referenced_metrics('rate(couturier_shed_total[5m]) / model:couturier_x:rate5m'))
    ['couturier_shed_total']
    """
    return set(re.findall(_NAME, text))


def unknown_references(text: str, known: dict[str, tuple[str, ...]]) -> list[str]:
    """What in PromQL ``text`` is not in ``known`` (series name -> label names, as from
    :func:`known_series`): each unknown metric name, and each label matcher a metric lacks.

    >>> unknown_references('couturier_drift_alert{modle="a"}', MONITORING_METRICS)
    ["couturier_drift_alert has no label 'modle' (its labels: model, signal)"]
    """
    problems = [
        f"{name} is not a metric couturier exports"
        for name in sorted(referenced_metrics(text) - known.keys())
    ]
    for match in _SELECTOR.finditer(text):
        name, matchers = match.group(1), match.group(2)
        labels = known.get(name)
        if labels is None:
            continue
        problems += [
            f"{name} has no label {label!r} (its labels: {', '.join(labels)})"
            for label in _MATCHER.findall(matchers)
            if label not in labels
        ]
    return problems


def known_series() -> dict[str, tuple[str, ...]]:
    """Every series name couturier exports -> its label names: serving's (read from a fresh
    :class:`~couturier.serving.Metrics`, with the suffixes prometheus_client adds: ``_total``
    for counters, ``_bucket``/``_sum``/``_count`` for histograms) and :data:`MONITORING_METRICS`.

    Imports the serving layer (seconds): for checks and tests, not for the exporter.
    """
    from prometheus_client.metrics import MetricWrapperBase

    from couturier.serving import Metrics

    series: dict[str, tuple[str, ...]] = {}
    for wrapper in vars(Metrics()).values():
        if not isinstance(wrapper, MetricWrapperBase):
            continue
        # prometheus_client keeps the label names only here; a family from collect() has none
        labels = tuple(wrapper._labelnames)
        for suffix in _SUFFIXES.get(wrapper._type or "", ("",)):
            series[wrapper._name + suffix] = (*labels, "le") if suffix == "_bucket" else labels
    return series | MONITORING_METRICS
