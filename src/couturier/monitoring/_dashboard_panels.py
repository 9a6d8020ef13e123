"""The dashboard's panels: what each one shows (title, PromQL, unit, thresholds), by section.

Only the content lives here; :mod:`couturier.monitoring._dashboard` renders it into Grafana's
JSON model (ids, grid positions, field config).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Json", "Panel", "sections"]

_M = 'model=~"$model"'  # every panel follows the model picker
_RATE = "$__rate_interval"
_HOURS = 3600.0

Json = dict[str, Any]


@dataclass(frozen=True)
class Panel:
    """What differs between the panels; :func:`_render` fills in Grafana's boilerplate."""

    title: str
    description: str
    targets: tuple[tuple[str, str], ...]  # (PromQL, legend)
    unit: str = "short"
    kind: str = "timeseries"  # timeseries | state-timeline | stat | bargauge
    width: int = 8
    height: int = 8
    # (color, value) steps above a green base; a timeseries draws them as lines
    thresholds: tuple[tuple[str, float], ...] = ()
    # value -> (text, color), for state timelines of 0/1 gauges
    states: tuple[tuple[int, str, str], ...] = ()
    steps: bool = False  # a gauge that changes once per monitoring run: draw it as steps
    instant: bool = False  # the current values only (bar gauges)
    low: float | None = None  # the axis' minimum and maximum, where they are known
    high: float | None = None
    dashed: str = ""  # a regex of the legends drawn dashed (a floor beside the values)


def _rate(series: str, match: str = "") -> str:
    """``rate(series{model=~"$model", match}[$__rate_interval])``"""
    matchers = f"{_M}, {match}" if match else _M
    return f"rate({series}{{{matchers}}}[{_RATE}])"


def _timeseries(title: str, description: str, *targets: tuple[str, str], **options: Any) -> Panel:
    return Panel(title, description, tuple(targets), **options)


def _service_panels() -> list[Panel]:
    """Request rate, latency, errors, shedding, queue, batches, versions and degraded answers."""
    by = "sum by (route, model)"
    requests = _rate("couturier_requests_total")
    errors = _rate("couturier_requests_total", 'code=~"5.."')
    latency = _rate("couturier_request_seconds_bucket", 'code=~"2.."')
    return [
        _timeseries(
            "Request rate",
            'Requests per second by route and model (domain routes carry model="").',
            (f"{by} ({requests})", "{{route}} {{model}}"),
            unit="reqps",
        ),
        _timeseries(
            "Latency (2xx)",
            "p50 and p99 of the successful answers; the SLO is p99 < 250 ms "
            "(CouturierLatencyHigh). Shed 503s are fast and left out.",
            (
                f"histogram_quantile(0.5, sum by (route, model, le) ({latency}))",
                "p50 {{route}} {{model}}",
            ),
            (
                f"histogram_quantile(0.99, sum by (route, model, le) ({latency}))",
                "p99 {{route}} {{model}}",
            ),
            unit="s",
            thresholds=(("red", 0.25),),
        ),
        _timeseries(
            "5xx ratio",
            "The share of requests answered with a 5xx (shed 503s included); the SLO allows "
            "0.5% over 30 days (CouturierErrorBudgetBurnFast/Slow).",
            (f"{by} ({errors}) / {by} ({requests})", "{{route}} {{model}}"),
            unit="percentunit",
            thresholds=(("red", 0.005),),
        ),
        _timeseries(
            "Shed rate",
            "Requests refused at once with a 503 because the model's batch queue was full "
            "(CouturierLoadShedding past 1% of requests for 10 minutes).",
            (f"sum by (model) ({_rate('couturier_shed_total')})", "{{model}}"),
            unit="reqps",
        ),
        _timeseries(
            "Queue depth",
            "Rows waiting to be batched, per model (summed over replicas).",
            (f"sum by (model) (couturier_queue_rows{{{_M}}})", "{{model}}"),
        ),
        _timeseries(
            "Queue wait (p99)",
            "How long the oldest request of a batch waited before its model ran.",
            (
                "histogram_quantile(0.99, sum by (model, le) "
                f"({_rate('couturier_queue_seconds_bucket')}))",
                "{{model}}",
            ),
            unit="s",
        ),
        _timeseries(
            "Batch size",
            "Rows per model execution: the mean and the p99.",
            (
                f"sum by (model) ({_rate('couturier_batch_rows_sum')}) / "
                f"sum by (model) ({_rate('couturier_batch_rows_count')})",
                "mean {{model}}",
            ),
            (
                "histogram_quantile(0.99, sum by (model, le) "
                f"({_rate('couturier_batch_rows_bucket')}))",
                "p99 {{model}}",
            ),
        ),
        _timeseries(
            "Loaded versions",
            "The version of each model that answers by default, per replica: a step is a swap.",
            (f"couturier_model_loaded_version{{{_M}}}", "{{model}} {{instance}}"),
            unit="none",
            steps=True,
        ),
        _timeseries(
            "Degraded answers",
            "The share of a domain's answers given without a stage (its defaults stood in): "
            "features = online store down or slow, retrieval = reference search over budget "
            "(CouturierDegradedAnswers past 5%).",
            (
                f"sum by (model, stage) ({_rate('couturier_degraded_total')}) "
                "/ on (model) group_left "
                f"sum by (model) ({_rate('couturier_decisions_total')})",
                "{{model}} {{stage}}",
            ),
            unit="percentunit",
            thresholds=(("red", 0.05),),
        ),
        _timeseries(
            "Decisions",
            "Answers of the domain routes by decision (authentic, review, counterfeit, ...).",
            (
                f"sum by (model, decision) ({_rate('couturier_decisions_total')})",
                "{{model}} {{decision}}",
            ),
            unit="reqps",
            width=24,
        ),
    ]


def _drift_panels() -> list[Panel]:
    """Drift by feature and signal, the most drifted features now, and persisted alerts."""
    ratio = f"couturier_drift_ratio{{{_M}}}"
    return [
        _timeseries(
            "Drift ratio",
            "Effect size / threshold of each monitoring run, by signal (data, prediction, "
            "embedding) and feature: at or above 1 the feature drifted that day.",
            (ratio, "{{model}} {{signal}} {{feature}}"),
            width=16,
            thresholds=(("red", 1.0),),
            steps=True,
        ),
        Panel(
            "Most drifted features now",
            "The 15 highest drift ratios of the last run.",
            ((f"topk(15, {ratio})", "{{model}} {{signal}} {{feature}}"),),
            kind="bargauge",
            thresholds=(("red", 1.0),),
            instant=True,
            low=0.0,
        ),
        Panel(
            "Drift alerts",
            "Drift that persisted over the alert window (CouturierDriftPersisted); "
            "it starts a retraining run.",
            ((f"couturier_drift_alert{{{_M}}}", "{{model}} {{signal}}"),),
            kind="state-timeline",
            width=12,
            states=((0, "ok", "green"), (1, "drift", "red")),
        ),
        Panel(
            "Since monitoring ran",
            "Time since each model's monitoring last ran; it runs daily "
            "(CouturierMonitoringStale past 36 h).",
            (
                (
                    f"time() - couturier_monitoring_last_run_timestamp_seconds{{{_M}}}",
                    "{{model}}",
                ),
            ),
            kind="stat",
            width=12,
            unit="s",
            thresholds=(("red", 36 * _HOURS),),
        ),
    ]


def _performance_panels() -> list[Panel]:
    """Estimated, realized and floor performance; trust in the estimate; persisted alerts."""
    return [
        _timeseries(
            "Performance: estimated, realized, floor",
            "The label-free estimate (trusted only without concept shift), the realized value "
            "on the newest cohort whose labels matured, and the floor the champion must keep.",
            (f"couturier_estimated_performance{{{_M}}}", "estimated {{model}} {{metric}}"),
            (f"couturier_realized_performance{{{_M}}}", "realized {{model}} {{metric}}"),
            (f"couturier_performance_floor{{{_M}}}", "floor {{model}} {{metric}}"),
            width=24,
            steps=True,
            low=0.0,
            high=1.0,
            dashed="^floor ",
        ),
        Panel(
            "Estimate trusted",
            "0 when concept shift is suspected: the estimate cannot be trusted and labels are "
            "needed (CouturierEstimateUntrusted).",
            ((f"couturier_estimate_trusted{{{_M}}}", "{{model}}"),),
            kind="state-timeline",
            width=12,
            states=((0, "concept shift suspected", "orange"), (1, "trusted", "green")),
        ),
        Panel(
            "Performance alert",
            "Performance below the floor that persisted (CouturierPerformanceAlert); "
            "it starts a retraining run.",
            ((f"couturier_performance_alert{{{_M}}}", "{{model}}"),),
            kind="state-timeline",
            width=12,
            states=((0, "ok", "green"), (1, "below floor", "red")),
        ),
    ]


def _data_panels() -> list[Panel]:
    """Labels, feature freshness and quarantined records: what the monitoring stands on."""
    return [
        _timeseries(
            "Label coverage",
            "The share of the matured cohort's predictions with an expert verdict "
            "(CouturierLabelCoverageLow under 50%).",
            (f"couturier_label_coverage{{{_M}}}", "{{model}}"),
            unit="percentunit",
            steps=True,
            low=0.0,
            high=1.0,
        ),
        _timeseries(
            "Label delay",
            "Days from a prediction to its label, by quantile; past the 14-day maturity "
            "window realized performance lags (CouturierLabelDelayHigh on p90).",
            (f"couturier_label_delay_days{{{_M}}}", "{{model}} {{quantile}}"),
            unit="d",
            thresholds=(("red", 14.0),),
            steps=True,
        ),
        _timeseries(
            "Quarantined records",
            "Prediction-log records the last monitoring run could not use, by reason "
            "(quarantine.jsonl beside the monitoring results has each line).",
            (f"couturier_quarantined_records{{{_M}}}", "{{model}} {{reason}}"),
            steps=True,
        ),
        _timeseries(
            "Feature freshness",
            "Age of the newest materialized row of each feature view (all models' views): "
            "daily views are stale past 36 h and past their 2-day TTL at 48 h.",
            ("couturier_feature_freshness_seconds", "{{service}} {{view}}"),
            width=24,
            unit="s",
            thresholds=(("orange", 36 * _HOURS), ("red", 48 * _HOURS)),
        ),
    ]


def sections() -> list[tuple[str, list[Panel]]]:
    return [
        ("Service", _service_panels()),
        ("Models: drift", _drift_panels()),
        ("Models: performance", _performance_panels()),
        ("Models: labels, features, data", _data_panels()),
    ]
