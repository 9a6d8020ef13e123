"""Monitoring: what the models see and how well they do, from the prediction log and the labels.

A domain declares a :class:`Watch` per served model; :func:`run_monitoring` judges one day of
it (:func:`monitor_day` is the decision logic, in one place) and a :class:`MonitoringStore`
keeps the :class:`DayReport`, which :class:`MonitoringCollector` exports to Prometheus and
:func:`write_report` renders as HTML. The statistics measure and never decide: effect-size drift
per feature (:class:`FeatureDrift`), MMD on embeddings (:class:`MMDDrift`), realized performance
with intervals (:func:`cohort_performance`, weighted by :func:`label_weights`) and the label-free
estimate (:func:`estimate_performance`, :func:`check_trust`).

>>> from couturier.monitoring import Watch
>>> Watch(model="authentication", stream="authentication", key="listing_id").alerts.window
3
"""

from __future__ import annotations

from couturier.monitoring._drift import CategoricalDrift, FeatureDrift, NumericDrift, persisted
from couturier.monitoring._embedding import MMDDrift
from couturier.monitoring._estimate import check_trust, estimate_performance
from couturier.monitoring._job import SIGNALS, DayReport, Signal, monitor_day
from couturier.monitoring._metrics import MonitoringCollector
from couturier.monitoring._performance import (
    cohort_performance,
    label_coverage,
    label_delay_quantiles,
    label_weights,
)
from couturier.monitoring._records import Quarantined, Records, read_records
from couturier.monitoring._report import write_report
from couturier.monitoring._runner import load_labels, run_monitoring
from couturier.monitoring._spec import AlertPolicy, LabelSource, Watch, field_value
from couturier.monitoring._store import MonitoringStore
from couturier.monitoring.types import (
    CohortPerformance,
    DriftDetector,
    DriftResult,
    EmbeddingDriftResult,
    EstimatedPerformance,
    Interval,
    LabelWeights,
)

__all__ = [
    "SIGNALS",
    "AlertPolicy",
    "CategoricalDrift",
    "CohortPerformance",
    "DayReport",
    "DriftDetector",
    "DriftResult",
    "EmbeddingDriftResult",
    "EstimatedPerformance",
    "FeatureDrift",
    "Interval",
    "LabelSource",
    "LabelWeights",
    "MMDDrift",
    "MonitoringCollector",
    "MonitoringStore",
    "NumericDrift",
    "Quarantined",
    "Records",
    "Signal",
    "Watch",
    "check_trust",
    "cohort_performance",
    "estimate_performance",
    "field_value",
    "label_coverage",
    "label_delay_quantiles",
    "label_weights",
    "load_labels",
    "monitor_day",
    "persisted",
    "read_records",
    "run_monitoring",
    "write_report",
]
