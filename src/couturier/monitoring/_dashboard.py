"""The couturier Grafana dashboard, built from code: the service's SLOs and health, and each
model's drift, performance and labels, from the metrics that serving and monitoring export.

The JSON is checked in as ``deploy/grafana/couturier.json``; after a change here, regenerate it:

    python -m couturier.monitoring._dashboard deploy/grafana/couturier.json

>>> board = dashboard()
>>> board["uid"], [v["name"] for v in board["templating"]["list"]]
('couturier', ['datasource', 'model'])
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["dashboard", "dashboard_json", "write_dashboard"]

_DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
_GRID_WIDTH = 24
_M = 'model=~"$model"'  # every panel follows the model picker
_RATE = "$__rate_interval"
_HOURS = 3600.0

Json = dict[str, Any]


@dataclass(frozen=True)
class _Panel:
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


def _timeseries(title: str, description: str, *targets: tuple[str, str], **options: Any) -> _Panel:
    return _Panel(title, description, tuple(targets), **options)


def _service_panels() -> list[_Panel]:
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


def _drift_panels() -> list[_Panel]:
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
        _Panel(
            "Most drifted features now",
            "The 15 highest drift ratios of the last run.",
            ((f"topk(15, {ratio})", "{{model}} {{signal}} {{feature}}"),),
            kind="bargauge",
            thresholds=(("red", 1.0),),
            instant=True,
            low=0.0,
        ),
        _Panel(
            "Drift alerts",
            "Drift that persisted over the alert window (CouturierDriftPersisted); "
            "it starts a retraining run.",
            ((f"couturier_drift_alert{{{_M}}}", "{{model}} {{signal}}"),),
            kind="state-timeline",
            width=12,
            states=((0, "ok", "green"), (1, "drift", "red")),
        ),
        _Panel(
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


def _performance_panels() -> list[_Panel]:
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
        _Panel(
            "Estimate trusted",
            "0 when concept shift is suspected: the estimate cannot be trusted and labels are "
            "needed (CouturierEstimateUntrusted).",
            ((f"couturier_estimate_trusted{{{_M}}}", "{{model}}"),),
            kind="state-timeline",
            width=12,
            states=((0, "concept shift suspected", "orange"), (1, "trusted", "green")),
        ),
        _Panel(
            "Performance alert",
            "Performance below the floor that persisted (CouturierPerformanceAlert); "
            "it starts a retraining run.",
            ((f"couturier_performance_alert{{{_M}}}", "{{model}}"),),
            kind="state-timeline",
            width=12,
            states=((0, "ok", "green"), (1, "below floor", "red")),
        ),
    ]


def _data_panels() -> list[_Panel]:
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


def _sections() -> list[tuple[str, list[_Panel]]]:
    return [
        ("Service", _service_panels()),
        ("Models: drift", _drift_panels()),
        ("Models: performance", _performance_panels()),
        ("Models: labels, features, data", _data_panels()),
    ]


def _thresholds(panel: _Panel) -> Json:
    steps: list[Json] = [{"color": "green", "value": None}]
    steps += [{"color": color, "value": value} for color, value in panel.thresholds]
    return {"mode": "absolute", "steps": steps}


def _field_defaults(panel: _Panel) -> Json:
    defaults: Json = {"unit": panel.unit, "thresholds": _thresholds(panel)}
    if panel.low is not None:
        defaults["min"] = panel.low
    if panel.high is not None:
        defaults["max"] = panel.high
    if panel.states:
        defaults["color"] = {"mode": "thresholds"}
        defaults["mappings"] = [
            {
                "type": "value",
                "options": {
                    str(value): {"text": text, "color": color, "index": i}
                    for i, (value, text, color) in enumerate(panel.states)
                },
            }
        ]
    if panel.kind == "timeseries":
        defaults["color"] = {"mode": "palette-classic"}
        defaults["custom"] = {
            "drawStyle": "line",
            "fillOpacity": 0,
            "lineInterpolation": "stepAfter" if panel.steps else "linear",
            "lineWidth": 1,
            "showPoints": "never",
            "spanNulls": panel.steps,
            "thresholdsStyle": {"mode": "line" if panel.thresholds else "off"},
        }
    return defaults


def _options(panel: _Panel) -> Json:
    reduce = {"calcs": ["lastNotNull"], "fields": "", "values": False}
    if panel.kind == "timeseries":
        return {
            "legend": {
                "calcs": ["lastNotNull", "max"],
                "displayMode": "table",
                "placement": "bottom",
                "showLegend": True,
            },
            "tooltip": {"mode": "multi", "sort": "desc"},
        }
    if panel.kind == "state-timeline":
        return {
            "alignValue": "left",
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": False},
            "mergeValues": True,
            "rowHeight": 0.9,
            "showValue": "auto",
            "tooltip": {"mode": "single", "sort": "none"},
        }
    if panel.kind == "bargauge":
        return {
            "displayMode": "gradient",
            "orientation": "horizontal",
            "reduceOptions": reduce,
            "showUnfilled": True,
        }
    return {
        "colorMode": "value",
        "graphMode": "none",
        "justifyMode": "auto",
        "orientation": "auto",
        "reduceOptions": reduce,
        "textMode": "auto",
    }


def _overrides(panel: _Panel) -> list[Json]:
    if not panel.dashed:
        return []
    dash = {"id": "custom.lineStyle", "value": {"dash": [10, 10], "fill": "dash"}}
    return [{"matcher": {"id": "byRegexp", "options": f"/{panel.dashed}/"}, "properties": [dash]}]


def _render(panel: _Panel, panel_id: int, x: int, y: int) -> Json:
    targets = [
        {
            "datasource": _DATASOURCE,
            "expr": expr,
            "instant": panel.instant,
            "legendFormat": legend,
            "range": not panel.instant,
            "refId": chr(ord("A") + i),
        }
        for i, (expr, legend) in enumerate(panel.targets)
    ]
    return {
        "datasource": _DATASOURCE,
        "description": panel.description,
        "fieldConfig": {"defaults": _field_defaults(panel), "overrides": _overrides(panel)},
        "gridPos": {"h": panel.height, "w": panel.width, "x": x, "y": y},
        "id": panel_id,
        "options": _options(panel),
        "targets": targets,
        "title": panel.title,
        "type": panel.kind,
    }


def _layout(sections: Sequence[tuple[str, Sequence[_Panel]]]) -> list[Json]:
    """Rows and their panels, flowed left to right in Grafana's 24-column grid."""
    out: list[Json] = []
    y = 0
    for title, panels in sections:
        out.append(
            {
                "collapsed": False,
                "gridPos": {"h": 1, "w": _GRID_WIDTH, "x": 0, "y": y},
                "id": len(out) + 1,
                "panels": [],
                "title": title,
                "type": "row",
            }
        )
        y, x, line_height = y + 1, 0, 0
        for panel in panels:
            if x + panel.width > _GRID_WIDTH:
                y, x, line_height = y + line_height, 0, 0
            out.append(_render(panel, len(out) + 1, x, y))
            x, line_height = x + panel.width, max(line_height, panel.height)
        y += line_height
    return out


def _templating() -> Json:
    models = 'label_values({__name__=~"couturier_.+"}, model)'
    return {
        "list": [
            {
                "current": {},
                "hide": 0,
                "includeAll": False,
                "label": "Data source",
                "multi": False,
                "name": "datasource",
                "options": [],
                "query": "prometheus",
                "refresh": 1,
                "regex": "",
                "type": "datasource",
            },
            {
                # All means every series, the domain routes' model="" included
                "allValue": ".*",
                "current": {},
                "datasource": _DATASOURCE,
                "definition": models,
                "hide": 0,
                "includeAll": True,
                "label": "Model",
                "multi": True,
                "name": "model",
                "options": [],
                "query": {"query": models, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
                "refresh": 2,
                "regex": "",
                "sort": 1,
                "type": "query",
            },
        ]
    }


def _annotations() -> Json:
    return {
        "list": [
            {
                "builtIn": 1,
                "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                "enable": True,
                "hide": True,
                "iconColor": "rgba(0, 211, 255, 1)",
                "name": "Annotations & Alerts",
                "type": "dashboard",
            },
            {
                # the alerts of deploy/prometheus/alerts.yml, marked on every graph
                "datasource": _DATASOURCE,
                "enable": True,
                "expr": 'ALERTS{alertname=~"Couturier.+", alertstate="firing"}',
                "iconColor": "red",
                "name": "couturier alerts",
                "step": "60s",
                "tagKeys": "alertname,severity",
                "textFormat": "{{alertname}} {{model}} {{route}}",
                "titleFormat": "{{alertname}}",
            },
        ]
    }


def dashboard() -> dict[str, Any]:
    """The couturier dashboard as Grafana's JSON model (schema 39): a Prometheus data source
    and a model picker, then rows for the service and for the models' drift, performance,
    labels and features."""
    return {
        "annotations": _annotations(),
        "description": "couturier: the service's SLOs and health, and each model's drift, "
        "performance and labels. Generated by couturier.monitoring._dashboard: do not edit "
        "by hand.",
        "editable": True,
        "fiscalYearStartMonth": 0,
        "graphTooltip": 1,
        "id": None,
        "links": [],
        "panels": _layout(_sections()),
        "refresh": "1m",
        "schemaVersion": 39,
        "tags": ["couturier"],
        "templating": _templating(),
        "time": {"from": "now-24h", "to": "now"},
        "timepicker": {},
        "timezone": "utc",
        "title": "couturier",
        "uid": "couturier",
        "version": 1,
        "weekStart": "",
    }


def dashboard_json() -> str:
    """:func:`dashboard` as the checked-in file has it: indented, sorted keys, final newline."""
    return json.dumps(dashboard(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_dashboard(path: str | Path) -> Path:
    """Write :func:`dashboard_json` to ``path`` (its folder is created); returns the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(dashboard_json(), encoding="utf-8")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m couturier.monitoring._dashboard",
        description="Write the couturier Grafana dashboard's JSON.",
    )
    parser.add_argument("path", type=Path, help="where to write it: deploy/grafana/couturier.json")
    args = parser.parse_args(argv)
    print(write_dashboard(args.path))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
