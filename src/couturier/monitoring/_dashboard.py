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
from pathlib import Path
from typing import Any

from couturier.monitoring._dashboard_panels import Json, Panel, sections

__all__ = ["dashboard", "dashboard_json", "write_dashboard"]

_DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
_GRID_WIDTH = 24


def _thresholds(panel: Panel) -> Json:
    steps: list[Json] = [{"color": "green", "value": None}]
    steps += [{"color": color, "value": value} for color, value in panel.thresholds]
    return {"mode": "absolute", "steps": steps}


def _field_defaults(panel: Panel) -> Json:
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


def _options(panel: Panel) -> Json:
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


def _overrides(panel: Panel) -> list[Json]:
    if not panel.dashed:
        return []
    dash = {"id": "custom.lineStyle", "value": {"dash": [10, 10], "fill": "dash"}}
    return [{"matcher": {"id": "byRegexp", "options": f"/{panel.dashed}/"}, "properties": [dash]}]


def _render(panel: Panel, panel_id: int, x: int, y: int) -> Json:
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


def _layout(sections: Sequence[tuple[str, Sequence[Panel]]]) -> list[Json]:
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
        "panels": _layout(sections()),
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
