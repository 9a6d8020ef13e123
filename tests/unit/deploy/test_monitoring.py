"""The ServiceMonitor, the PrometheusRule and the autoscaler's second metric: they find the
serving pods, carry deploy/prometheus/alerts.yml as it is, and name a gauge serving exports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from couturier.deploy import Values, manifests
from couturier.errors import InvalidInputError
from couturier.monitoring._metric_names import known_series

ROOT = Path(__file__).resolve().parents[3]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"


def one(everything: list[dict[str, Any]], kind: str, name: str = "couturier") -> dict[str, Any]:
    (found,) = (m for m in everything if m["kind"] == kind and m["metadata"]["name"] == name)
    return found


@pytest.fixture(scope="module")
def everything() -> list[dict[str, Any]]:
    return manifests(Values(image="couturier:1", prometheus_labels={"release": "kps"}))


def test_the_service_monitor_scrapes_the_serving_pods_only(
    everything: list[dict[str, Any]],
) -> None:
    monitor = one(everything, "ServiceMonitor")
    wanted = monitor["spec"]["selector"]["matchLabels"]
    services = [m for m in everything if m["kind"] == "Service"]
    assert len(services) == 3
    selected = [s for s in services if wanted.items() <= s["metadata"]["labels"].items()]
    assert [s["metadata"]["name"] for s in selected] == ["couturier"]  # not MLflow, not Dagster
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in selected[0]["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"


def test_prometheus_selects_both_by_the_values_labels(everything: list[dict[str, Any]]) -> None:
    for kind in ("ServiceMonitor", "PrometheusRule"):
        found = one(everything, kind)["metadata"]["labels"]
        assert found["release"] == "kps" and found["app.kubernetes.io/name"] == "couturier"
    # a values label cannot take over the object's own
    taken = manifests(
        Values(image="couturier:1", prometheus_labels={"app.kubernetes.io/name": "x"})
    )
    assert one(taken, "ServiceMonitor")["metadata"]["labels"]["app.kubernetes.io/name"] == (
        "couturier"
    )


def test_the_rule_carries_the_projects_alerts_as_they_are(
    everything: list[dict[str, Any]], tmp_path: Path
) -> None:
    groups = one(everything, "PrometheusRule")["spec"]["groups"]
    assert groups == yaml.safe_load(ALERTS.read_text())["groups"]
    assert sum("alert" in r for g in groups for r in g["rules"]) >= 15
    other = tmp_path / "rules.yml"
    other.write_text("groups:\n  - name: x\n    rules:\n      - record: a\n        expr: up\n")
    rendered = manifests(Values(image="couturier:1"), alerts=other)
    assert one(rendered, "PrometheusRule")["spec"]["groups"] == [
        {"name": "x", "rules": [{"record": "a", "expr": "up"}]}
    ]


@pytest.mark.parametrize(
    ("text", "words"),
    [(None, "cannot be read"), ("rules: []\n", "no `groups:` list"), ("groups: [\n", "not YAML")],
)
def test_a_bad_rules_file_is_refused_by_name(tmp_path: Path, text: str | None, words: str) -> None:
    path = tmp_path / "alerts.yml"
    if text is not None:
        path.write_text(text)
    with pytest.raises(InvalidInputError) as caught:
        manifests(Values(image="couturier:1"), alerts=path)
    assert caught.value.field == "alerts"
    assert words in caught.value.message and str(path) in caught.value.message


def test_the_autoscalers_second_metric_is_a_gauge_serving_exports(
    everything: list[dict[str, Any]],
) -> None:
    cpu, in_flight = one(everything, "HorizontalPodAutoscaler")["spec"]["metrics"]
    assert cpu["resource"]["name"] == "cpu"
    metric = in_flight["pods"]["metric"]["name"]
    assert known_series()[metric] == ()  # serving's gauge, one series per pod, no labels
    assert in_flight["pods"]["target"] == {"type": "AverageValue", "averageValue": "16"}
    higher = manifests(Values(image="couturier:1", in_flight_target=40))
    target = one(higher, "HorizontalPodAutoscaler")["spec"]["metrics"][1]["pods"]["target"]
    assert target["averageValue"] == "40"
    # prometheus-adapter serves it under that name, from that series, per pod
    config = yaml.safe_load(
        one(everything, "ConfigMap", "couturier-prometheus-adapter")["data"]["config.yaml"]
    )
    (rule,) = config["rules"]
    assert rule["name"]["as"] == metric
    assert rule["seriesQuery"].startswith(metric + "{")
    assert rule["resources"]["overrides"]["pod"] == {"resource": "pod"}
