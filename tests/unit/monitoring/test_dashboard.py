"""The Grafana dashboard built by couturier.monitoring._dashboard: the checked-in JSON is the
generated one, its panels query only metrics couturier exports, and its grid is sound."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from typing import Any

import pytest

from couturier.monitoring._dashboard import dashboard, dashboard_json, write_dashboard
from couturier.monitoring._metric_names import known_series, referenced_metrics, unknown_references

ROOT = Path(__file__).resolve().parents[3]
CHECKED_IN = ROOT / "deploy" / "grafana" / "couturier.json"
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
REGENERATE = "python -m couturier.monitoring._dashboard deploy/grafana/couturier.json"

Panel = dict[str, Any]


@pytest.fixture(scope="module")
def board() -> dict[str, Any]:
    return dashboard()


@pytest.fixture(scope="module")
def panels(board: dict[str, Any]) -> list[Panel]:
    found: list[Panel] = board["panels"]
    return found


def _graphs(panels: list[Panel]) -> list[Panel]:
    return [p for p in panels if p["type"] != "row"]


def test_the_checked_in_dashboard_is_the_generated_one() -> None:
    assert CHECKED_IN.exists(), f"{CHECKED_IN} is missing; generate it: `{REGENERATE}`"
    assert CHECKED_IN.read_text(encoding="utf-8") == dashboard_json(), (
        "deploy/grafana/couturier.json is not what couturier.monitoring._dashboard builds; "
        f"regenerate it from the repository root: `{REGENERATE}`"
    )


def test_write_dashboard_writes_sorted_indented_json(tmp_path: Path) -> None:
    path = write_dashboard(tmp_path / "grafana" / "couturier.json")
    text = path.read_text(encoding="utf-8")
    assert text.endswith("}\n")
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n"
    assert json.loads(text)["schemaVersion"] == 39


def test_variables_pick_a_prometheus_source_and_models(board: dict[str, Any]) -> None:
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["model"]["datasource"]["uid"] == "${datasource}"
    assert variables["model"]["includeAll"] and variables["model"]["multi"]


def test_panels_query_only_known_metrics(panels: list[Panel]) -> None:
    known = known_series()
    problems = []
    for panel in _graphs(panels):
        assert panel["targets"], f"panel {panel['title']!r} has no query"
        for target in panel["targets"]:
            expr = target["expr"]
            problems += [f"{panel['title']!r}: {p}" for p in unknown_references(expr, known)]
            if not referenced_metrics(expr):
                problems.append(f"{panel['title']!r}: {expr!r} names no couturier metric")
            model_labelled = any("model" in known.get(m, ()) for m in referenced_metrics(expr))
            if model_labelled and 'model=~"$model"' not in expr:
                problems.append(f"{panel['title']!r}: {expr!r} ignores the model picker")
    assert not problems, "\n".join(problems)


def test_the_dashboard_covers_the_service_and_the_models(panels: list[Panel]) -> None:
    exprs = [t["expr"] for p in panels for t in p.get("targets", [])]
    queried = {metric for expr in exprs for metric in referenced_metrics(expr)}
    for metric in (
        "couturier_requests_total",
        "couturier_request_seconds_bucket",
        "couturier_shed_total",
        "couturier_queue_rows",
        "couturier_batch_rows_bucket",
        "couturier_model_loaded_version",
        "couturier_degraded_total",
        "couturier_drift_ratio",
        "couturier_drift_alert",
        "couturier_estimated_performance",
        "couturier_realized_performance",
        "couturier_performance_floor",
        "couturier_estimate_trusted",
        "couturier_label_coverage",
        "couturier_label_delay_days",
        "couturier_feature_freshness_seconds",
        "couturier_quarantined_records",
    ):
        assert metric in queried, f"no panel shows {metric}"


def test_panel_ids_are_unique_and_panels_do_not_overlap(panels: list[Panel]) -> None:
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), f"duplicate panel ids: {sorted(ids)}"
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["y"] >= 0 and grid["w"] > 0 and grid["h"] > 0
        assert grid["x"] + grid["w"] <= 24, f"{panel['title']!r} runs past the 24 columns"
    for a, b in itertools.combinations(panels, 2):
        ga, gb = a["gridPos"], b["gridPos"]
        apart = (
            ga["x"] + ga["w"] <= gb["x"]
            or gb["x"] + gb["w"] <= ga["x"]
            or ga["y"] + ga["h"] <= gb["y"]
            or gb["y"] + gb["h"] <= ga["y"]
        )
        assert apart, f"{a['title']!r} {ga} overlaps {b['title']!r} {gb}"


def test_the_alerts_runbooks_name_existing_panels(panels: list[Panel]) -> None:
    """The alerts' descriptions point at panels by their quoted title ('Shed rate')."""
    text = " ".join(RULES.read_text(encoding="utf-8").split())
    named = set(re.findall(r"(?<!\w)'([^'{}]*[^'{}\s])'(?!\w)", text))
    titles = {p["title"] for p in panels}
    assert named, "no panel named in alerts.yml: has the quoting changed?"
    assert named <= titles, f"alerts.yml names panels the dashboard lacks: {named - titles}"
