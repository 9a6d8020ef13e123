"""Every object of the production profile, in the order ``kubectl apply`` should meet them,
and the folder of YAML files ``couturier deploy render`` writes."""

from __future__ import annotations

from pathlib import Path

import yaml

from couturier.deploy._monitoring import ALERTS, adapter_rules, prometheus_rule, service_monitor
from couturier.deploy._objects import Manifest
from couturier.deploy._pipelines import (
    dagster_config,
    dagster_daemon,
    dagster_webserver,
    dagster_webserver_service,
)
from couturier.deploy._ray import ray_service
from couturier.deploy._serving import (
    autoscaler,
    deployment,
    disruption_budget,
    migration_job,
    service,
    service_account,
)
from couturier.deploy._tracking import mlflow_deployment, mlflow_service
from couturier.deploy._values import Values
from couturier.errors import InvalidInputError

__all__ = ["KUBERNETES_VERSION", "Manifest", "manifests", "write_manifests"]

#: The Kubernetes version the manifests are written for and validated against (the tests).
KUBERNETES_VERSION = "1.33.0"


def manifests(values: Values, *, alerts: Path = ALERTS) -> list[Manifest]:
    """Every object, in the order ``kubectl apply`` should meet them; ``alerts``: the
    Prometheus rules file the PrometheusRule carries. The image tier's RayService comes last,
    when the values enable it."""
    rendered = [
        service_account(values),
        deployment(values),
        service(values),
        disruption_budget(values),
        autoscaler(values),
        migration_job(values),
        mlflow_deployment(values),
        mlflow_service(values),
        dagster_config(values),
        dagster_webserver(values),
        dagster_webserver_service(values),
        dagster_daemon(values),
        service_monitor(values),
        prometheus_rule(values, alerts),
        adapter_rules(values),
    ]
    # last: the files before it keep their numbers, which deploy/README.md's commands name
    if values.image_tier.enabled:
        rendered.append(ray_service(values))
    return rendered


class _Dumper(yaml.SafeDumper):  # type: ignore[misc]  # no stubs for yaml here: it is Any
    """Multi-line strings (alert expressions, config files in ConfigMaps) as ``|`` blocks."""


def _text(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    return dumper.represent_scalar(
        "tag:yaml.org,2002:str", data, style="|" if "\n" in data else None
    )


_Dumper.add_representer(str, _text)


def write_manifests(values: Values, out: Path, *, alerts: Path = ALERTS) -> list[Path]:
    """One ``NN-kind-name.yaml`` per object under ``out`` (created); the paths written. A YAML
    file already there that this render would not write is refused: ``kubectl apply -f out``
    would apply it too."""
    objects = {
        out / f"{i:02d}-{m['kind'].lower()}-{m['metadata']['name']}.yaml": m
        for i, m in enumerate(manifests(values, alerts=alerts))
    }
    stale = sorted(p.name for p in out.glob("*.yaml") if p not in objects) if out.is_dir() else []
    if stale:
        raise InvalidInputError(
            f"{out} holds {', '.join(stale)}, which this render does not write; `kubectl apply "
            f"-f {out}` would apply it too: render into an empty folder or delete it",
            field="out",
        )
    out.mkdir(parents=True, exist_ok=True)
    for path, manifest in objects.items():
        path.write_text(yaml.dump(manifest, Dumper=_Dumper, sort_keys=False))
    return list(objects)
