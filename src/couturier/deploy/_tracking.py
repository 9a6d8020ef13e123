"""The MLflow tracking server: ``mlflow server`` from the same image, its runs and registry in
PostgreSQL, its artifacts in the object store, proxied (clients need no S3 credentials).

The backend store is a database of its own (the Secret's ``MLFLOW_BACKEND_STORE_URI``): MLflow
and Dagster both keep a ``runs`` table and an ``alembic_version``. The artifacts go under the
object store's ``mlflow-artifacts/`` (``COUTURIER_OBJECT_STORE_URI``). MLflow answers only the
Host headers it is told (``--allowed-hosts``; its default is localhost and private IPs): the
Service's names, and localhost for ``kubectl port-forward``.
"""

from __future__ import annotations

from couturier.deploy._objects import (
    MLFLOW_PORT,
    Manifest,
    labels,
    meta,
    mlflow_name,
    pod,
    probe,
    resources,
    scratch,
    secret_env,
)
from couturier.deploy._values import Values

__all__ = ["BACKEND_STORE_KEY", "allowed_hosts", "mlflow_deployment", "mlflow_service"]

#: The Secret's key with the MLflow server's backend store, e.g.
#: ``postgresql+psycopg://mlflow:PASSWORD@HOST:5432/mlflow`` (psycopg 3 is what the lock has)
BACKEND_STORE_KEY = "MLFLOW_BACKEND_STORE_URI"


def allowed_hosts(values: Values) -> list[str]:
    """The Host headers MLflow answers: its Service by every in-cluster name, and localhost."""
    name = mlflow_name(values)
    names = [name, f"{name}.{values.namespace}", f"{name}.{values.namespace}.svc"]
    names.append(f"{names[-1]}.cluster.local")
    with_port = [f"{n}:{MLFLOW_PORT}" for n in names]
    return [*names, *with_port, "localhost", "localhost:*", "127.0.0.1", "127.0.0.1:*"]


def mlflow_deployment(values: Values) -> Manifest:
    container = {
        "name": "mlflow",
        "command": ["mlflow"],
        "args": [
            "server",
            *("--backend-store-uri", f"$({BACKEND_STORE_KEY})"),
            *("--artifacts-destination", "$(COUTURIER_OBJECT_STORE_URI)/mlflow-artifacts"),
            "--serve-artifacts",
            *("--host", "0.0.0.0", "--port", str(MLFLOW_PORT)),
            *("--workers", "1"),
            *("--allowed-hosts", ",".join(allowed_hosts(values))),
        ],
        "env": [
            secret_env(values, BACKEND_STORE_KEY),
            secret_env(values, "COUTURIER_OBJECT_STORE_URI"),
            # MLflow's background job runner (huey worker processes): unused here, off as in
            # registry.mlflow_server_command
            {"name": "MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "value": "false"},
        ],
        "ports": [{"name": "http", "containerPort": MLFLOW_PORT, "protocol": "TCP"}],
        "resources": resources(values.mlflow_resources),
        # the first start creates or migrates the schema before it answers
        "startupProbe": probe("/health", 60),
        "livenessProbe": probe("/health", 3, period_s=10),
        "readinessProbe": probe("/health", 2),
    }
    selector = labels(values, "tracking")
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta(values, mlflow_name(values), "tracking"),
        "spec": {
            # one: the first start on an empty database creates the schema; two would race
            "replicas": 1,
            "selector": {"matchLabels": selector},
            # the schema exists by any update: the new pod is ready before the old one goes
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "template": {
                "metadata": {"labels": selector},
                # artifact uploads are staged in temporary files
                "spec": pod(values, container, [scratch("tmp", "/tmp")]),
            },
        },
    }


def mlflow_service(values: Values) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta(values, mlflow_name(values), "tracking"),
        "spec": {
            "selector": labels(values, "tracking"),
            "ports": [
                {"name": "http", "port": MLFLOW_PORT, "targetPort": "http", "protocol": "TCP"}
            ],
        },
    }
