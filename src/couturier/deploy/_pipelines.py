"""Dagster's webserver and daemon from the same image, on one instance in PostgreSQL.

Both load the code location ``couturier.pipelines.definitions`` (``-m``, as
``couturier pipelines up`` does with ``dagster dev``). The instance (``dagster.yaml``, a
ConfigMap) keeps runs, events and schedules in PostgreSQL (the Secret's ``DAGSTER_POSTGRES_URL``,
a database of its own), and the local instance's run queue (``pipelines._run.INSTANCE_YAML``).
Runs launched from the UI are queued, and the daemon starts them as processes in its own pod:
its resources are the runs' (training included). One daemon only, never two: it is recreated,
not rolled.
"""

from __future__ import annotations

from typing import Any

import yaml

from couturier.deploy._objects import (
    Manifest,
    digest,
    labels,
    meta,
    pod,
    probe,
    resources,
    scratch,
    secret_env,
    settings_env,
)
from couturier.deploy._values import Values

__all__ = [
    "DEFINITIONS",
    "POSTGRES_KEY",
    "dagster_config",
    "dagster_daemon",
    "dagster_webserver",
    "dagster_webserver_service",
    "instance_yaml",
]

#: The Secret's key with Dagster's storage, e.g. ``postgresql://dagster:PASSWORD@HOST:5432/dagster``
POSTGRES_KEY = "DAGSTER_POSTGRES_URL"
#: The code location both processes load.
DEFINITIONS = "couturier.pipelines.definitions"
WEBSERVER_PORT = 3000
#: ``$DAGSTER_HOME``: the settings' ``paths.pipelines`` under the image's ``COUTURIER_HOME``.
DAGSTER_HOME = "/var/lib/couturier/pipelines"


def instance_yaml() -> str:
    """``dagster.yaml``: the local instance's settings, with PostgreSQL storage."""
    from couturier.pipelines._run import INSTANCE_YAML  # imports Dagster: only when rendering

    config: dict[str, Any] = yaml.safe_load(INSTANCE_YAML)
    config["storage"] = {"postgres": {"postgres_url": {"env": POSTGRES_KEY}}}
    # the steps' stdout and stderr would stay in the pod that ran them, out of the webserver's
    # reach: not captured (the events, logs and failures of a run are in PostgreSQL)
    config["compute_logs"] = {
        "module": "dagster._core.storage.noop_compute_log_manager",
        "class": "NoOpComputeLogManager",
    }
    return str(yaml.safe_dump(config, sort_keys=False))


def _name(values: Values, part: str = "") -> str:
    return f"{values.name}-dagster{part}"


def dagster_config(values: Values) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta(values, _name(values), "pipelines"),
        "data": {"dagster.yaml": instance_yaml()},
    }


def _pod(values: Values, container: dict[str, Any]) -> Manifest:
    """A pod with the instance: ``dagster.yaml`` in ``$DAGSTER_HOME`` (which stays writable),
    the production settings and the Secret's storage URL; code servers' sockets in /tmp."""
    config = (
        {"name": "instance", "configMap": {"name": _name(values)}},
        {
            "name": "instance",
            "mountPath": f"{DAGSTER_HOME}/dagster.yaml",
            "subPath": "dagster.yaml",
            "readOnly": True,
        },
    )
    env = [
        *settings_env(values),
        {"name": "DAGSTER_HOME", "value": DAGSTER_HOME},
        secret_env(values, POSTGRES_KEY),
    ]
    return pod(values, {**container, "env": env}, [config, scratch("tmp", "/tmp")])


def _template(values: Values, component: str, spec: Manifest) -> Manifest:
    # a subPath mount never sees a ConfigMap change: a new instance config rolls the pods
    checksum = {"couturier.dev/dagster-yaml": digest(instance_yaml())}
    return {
        "metadata": {"labels": labels(values, component), "annotations": checksum},
        "spec": spec,
    }


def dagster_webserver(values: Values) -> Manifest:
    container = {
        "name": "webserver",
        "command": ["dagster-webserver"],
        "args": ["-m", DEFINITIONS, "-h", "0.0.0.0", "-p", str(WEBSERVER_PORT)],
        "ports": [{"name": "http", "containerPort": WEBSERVER_PORT, "protocol": "TCP"}],
        "resources": resources(values.dagster_webserver_resources),
        # it imports every domain's definitions before it answers
        "startupProbe": probe("/server_info", 60),
        "livenessProbe": probe("/server_info", 3, period_s=10),
        "readinessProbe": probe("/server_info", 2),
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta(values, _name(values, "-webserver"), "pipelines-webserver"),
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels(values, "pipelines-webserver")},
            "template": _template(values, "pipelines-webserver", _pod(values, container)),
        },
    }


def dagster_webserver_service(values: Values) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta(values, _name(values, "-webserver"), "pipelines-webserver"),
        "spec": {
            "selector": labels(values, "pipelines-webserver"),
            "ports": [
                {"name": "http", "port": WEBSERVER_PORT, "targetPort": "http", "protocol": "TCP"}
            ],
        },
    }


def dagster_daemon(values: Values) -> Manifest:
    container = {
        "name": "daemon",
        "command": ["dagster-daemon"],
        "args": ["run", "-m", DEFINITIONS],
        "resources": resources(values.dagster_daemon_resources),
        # fails once no daemon has written a heartbeat to the instance for Dagster's tolerance
        # (30 minutes by default): a wedged daemon, not a busy one
        "livenessProbe": {
            "exec": {"command": ["dagster-daemon", "liveness-check"]},
            "initialDelaySeconds": 300,
            "periodSeconds": 120,
            "timeoutSeconds": 60,
            "failureThreshold": 3,
        },
    }
    spec = _pod(values, container)
    spec["terminationGracePeriodSeconds"] = 60
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta(values, _name(values, "-daemon"), "pipelines-daemon"),
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels(values, "pipelines-daemon")},
            # two daemons would both start the queued runs and the schedules' ticks
            "strategy": {"type": "Recreate"},
            "template": _template(values, "pipelines-daemon", spec),
        },
    }
