"""What every rendered object shares: metadata, labels, the pod template of the image, probes,
and the names one object uses to reach another (the MLflow Service's URL)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from couturier.deploy._values import Resources, Values
from couturier.settings import PRODUCTION_REQUIRED

__all__ = [
    "MLFLOW_PORT",
    "SECRET_SETTINGS",
    "Manifest",
    "container_security",
    "digest",
    "labels",
    "meta",
    "mlflow_name",
    "pod",
    "probe",
    "resources",
    "scratch",
    "secret_env",
    "settings_env",
]

Manifest = dict[str, Any]
Volume = tuple[dict[str, Any], dict[str, Any]]  # (the pod's volume, the container's mount)

#: The settings the production profile reads from the Secret: ``PRODUCTION_REQUIRED`` and the
#: admin token, less the MLflow tracking URI (the rendered MLflow Service's, :func:`settings_env`).
SECRET_SETTINGS = (
    *(f for f in PRODUCTION_REQUIRED if f != "mlflow_tracking_uri"),
    "admin_token",
)
#: The MLflow server's port, in its container and on its Service.
MLFLOW_PORT = 5000


def meta(values: Values, name: str, component: str) -> dict[str, Any]:
    return {"name": name, "namespace": values.namespace, "labels": labels(values, component)}


def labels(values: Values, component: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": values.name, "app.kubernetes.io/component": component}


def mlflow_name(values: Values) -> str:
    return f"{values.name}-mlflow"


def secret_env(values: Values, key: str) -> dict[str, Any]:
    """Variable ``key`` from the Secret's key of the same name."""
    return {"name": key, "valueFrom": {"secretKeyRef": {"name": values.secret, "key": key}}}


def settings_env(values: Values) -> list[dict[str, Any]]:
    """The production profile's settings: the Secret's, and the rendered MLflow server."""
    tracking = f"http://{mlflow_name(values)}.{values.namespace}.svc:{MLFLOW_PORT}"
    return [
        {"name": "COUTURIER_PROFILE", "value": "production"},
        *(secret_env(values, f"COUTURIER_{field.upper()}") for field in SECRET_SETTINGS),
        {"name": "COUTURIER_MLFLOW_TRACKING_URI", "value": tracking},
    ]


def container_security() -> dict[str, Any]:
    """The image's user, nothing more: no root, no new privileges, no capabilities, a
    read-only root file system (writes go to ``scratch`` volumes)."""
    return {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def scratch(name: str, path: str, size: str = "1Gi") -> Volume:
    """A writable folder that dies with the pod (the root file system is read-only)."""
    return {"name": name, "emptyDir": {"sizeLimit": size}}, {"name": name, "mountPath": path}


def pod(values: Values, container: dict[str, Any], volumes: Sequence[Volume] = ()) -> Manifest:
    """A pod of the image: the service account, the production settings (``container["env"]``
    replaces them), a writable home and ``volumes``."""
    # COUTURIER_HOME: the prediction logs and caches. An emptyDir dies with its pod: the
    # logs need shipping to the object store before production (deploy/README.md)
    mounted = [scratch("home", "/var/lib/couturier"), *volumes]
    return {
        "serviceAccountName": values.name,
        "automountServiceAccountToken": False,
        "containers": [
            {
                "image": values.image,
                "imagePullPolicy": "IfNotPresent",
                "env": settings_env(values),
                "securityContext": container_security(),
                "volumeMounts": [mount for _, mount in mounted],
                **container,
            }
        ],
        "volumes": [volume for volume, _ in mounted],
    }


def resources(r: Resources) -> dict[str, Any]:
    """Requests and a memory limit; no CPU limit: throttling costs latency."""
    return {"requests": {"cpu": r.cpu, "memory": r.memory}, "limits": {"memory": r.memory_limit}}


def probe(path: str, failures: int, period_s: int = 5) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": period_s,
        "timeoutSeconds": 2,
        "failureThreshold": failures,
    }


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:10]
