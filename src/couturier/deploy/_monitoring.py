"""What Prometheus does with couturier's metrics on Kubernetes: scrape the serving pods, alert
on the project's rules, and hand the requests in flight to the autoscaler.

The ServiceMonitor and the PrometheusRule are prometheus-operator's custom resources; the
autoscaler's second metric reaches the metrics API through prometheus-adapter, whose rule is
rendered as a ConfigMap holding an adapter config (``config.yaml``). The alerting rules are
``deploy/prometheus/alerts.yml``, read when rendering: one file for plain Prometheus and for
the operator.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from couturier.deploy._objects import Manifest, labels, meta
from couturier.deploy._values import Values
from couturier.errors import InvalidInputError

__all__ = [
    "ALERTS",
    "IN_FLIGHT_METRIC",
    "adapter_rules",
    "load_alert_groups",
    "prometheus_rule",
    "service_monitor",
]

#: The serving pods' gauge of requests in flight (``serving._metrics``), the autoscaler's
#: second metric under the same name.
IN_FLIGHT_METRIC = "couturier_requests_in_flight"
#: The project's alerting rules, in a checkout of the repository.
ALERTS = Path(__file__).resolve().parents[3] / "deploy" / "prometheus" / "alerts.yml"
#: How often Prometheus scrapes a serving pod: the autoscaler looks every 15 s.
SCRAPE_INTERVAL = "15s"


def _monitoring_meta(values: Values, name: str) -> dict[str, Any]:
    metadata = meta(values, name, "monitoring")
    # the values' labels first: they must not take over the object's own
    metadata["labels"] = {**values.prometheus_labels, **metadata["labels"]}
    return metadata


def service_monitor(values: Values) -> Manifest:
    """Scrape every serving pod's /metrics behind the serving Service; the targets carry the
    ``namespace`` and ``pod`` labels the adapter rule maps to Kubernetes objects."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": _monitoring_meta(values, values.name),
        "spec": {
            "selector": {"matchLabels": labels(values, "serving")},
            "endpoints": [
                {
                    "port": "http",
                    "path": "/metrics",
                    "interval": SCRAPE_INTERVAL,
                    "scrapeTimeout": "10s",
                }
            ],
        },
    }


def load_alert_groups(path: Path) -> list[dict[str, Any]]:
    """The rule groups of a Prometheus rules file; refused, naming the file, when it has none."""
    try:
        raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidInputError(
            f"alerting rules {path} cannot be read: {exc.strerror}; render from a checkout of "
            "the repository or pass --alerts deploy/prometheus/alerts.yml",
            field="alerts",
        ) from None
    except yaml.YAMLError as exc:
        raise InvalidInputError(
            f"alerting rules {path} are not YAML: {exc}; check them with `promtool check rules`",
            field="alerts",
        ) from None
    groups = raw.get("groups") if isinstance(raw, dict) else None
    if not isinstance(groups, list) or not groups:
        raise InvalidInputError(
            f"alerting rules {path} have no `groups:` list; a Prometheus rules file starts with "
            "one (deploy/prometheus/alerts.yml)",
            field="alerts",
        )
    return groups


def prometheus_rule(values: Values, alerts: Path = ALERTS) -> Manifest:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": _monitoring_meta(values, values.name),
        "spec": {"groups": load_alert_groups(alerts)},
    }


def adapter_rules(values: Values) -> Manifest:
    """prometheus-adapter's rule for :data:`IN_FLIGHT_METRIC`: each pod's average over the
    last minute (four scrapes: one sample is noise), as a Pods metric of the same name."""
    rule = {
        "seriesQuery": f'{IN_FLIGHT_METRIC}{{namespace!="",pod!=""}}',
        "resources": {
            "overrides": {"namespace": {"resource": "namespace"}, "pod": {"resource": "pod"}}
        },
        "name": {"matches": f"^{IN_FLIGHT_METRIC}$", "as": IN_FLIGHT_METRIC},
        "metricsQuery": (
            "sum(avg_over_time(<<.Series>>{<<.LabelMatchers>>}[1m])) by (<<.GroupBy>>)"
        ),
    }
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta(values, f"{values.name}-prometheus-adapter", "monitoring"),
        "data": {"config.yaml": yaml.safe_dump({"rules": [rule]}, sort_keys=False)},
    }
