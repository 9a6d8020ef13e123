"""The serving tier and its migration Job as Kubernetes objects (plain dicts, then YAML).

A rolling update drops no request because three things line up: the readiness probe routes
traffic only to replicas that answer ``/v2/health/ready``; a terminating pod first sleeps
``drain_seconds`` in its ``preStop`` hook, still serving, while the Service's endpoints drop
it; then uvicorn's own SIGTERM handling finishes the requests in flight. The grace period
covers both. The PodDisruptionBudget keeps all but one replica through node drains.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import yaml

from couturier.deploy._values import Values
from couturier.errors import InvalidInputError
from couturier.settings import PRODUCTION_REQUIRED

__all__ = ["KUBERNETES_VERSION", "manifests", "write_manifests"]

#: The Kubernetes version the manifests are written for and validated against (the tests).
KUBERNETES_VERSION = "1.33.0"

Manifest = dict[str, Any]

#: The settings the production profile reads from the Secret (``PRODUCTION_REQUIRED`` and the
#: admin token that guards the admin routes).
SECRET_SETTINGS = (*PRODUCTION_REQUIRED, "admin_token")


def _meta(values: Values, name: str, component: str) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": values.namespace,
        "labels": _labels(values, component),
    }


def _labels(values: Values, component: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": values.name, "app.kubernetes.io/component": component}


def _env(values: Values) -> list[dict[str, Any]]:
    secret = [
        {
            "name": f"COUTURIER_{field.upper()}",
            "valueFrom": {
                "secretKeyRef": {"name": values.secret, "key": f"COUTURIER_{field.upper()}"}
            },
        }
        for field in SECRET_SETTINGS
    ]
    return [{"name": "COUTURIER_PROFILE", "value": "production"}, *secret]


def _container_security() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _pod(values: Values, container: dict[str, Any]) -> dict[str, Any]:
    """A pod of the image: the service account, the Secret's settings, a writable home."""
    return {
        "serviceAccountName": values.name,
        "automountServiceAccountToken": False,
        "containers": [
            {
                "image": values.image,
                "imagePullPolicy": "IfNotPresent",
                "env": _env(values),
                "securityContext": _container_security(),
                "volumeMounts": [{"name": "home", "mountPath": "/var/lib/couturier"}],
                **container,
            }
        ],
        # COUTURIER_HOME: the prediction logs and caches. An emptyDir dies with its pod: the
        # logs need shipping to the object store before production (deploy/README.md)
        "volumes": [{"name": "home", "emptyDir": {"sizeLimit": "1Gi"}}],
    }


def service_account(values: Values) -> Manifest:
    meta = _meta(values, values.name, "serving")
    if values.role_arn:
        meta["annotations"] = {"eks.amazonaws.com/role-arn": values.role_arn}
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta}


def _probe(path: str, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": 5,
        "timeoutSeconds": 2,
        "failureThreshold": failures,
    }


def deployment(values: Values) -> Manifest:
    r = values.resources
    container = {
        "name": "serve",
        "args": ["serve", "--host", "0.0.0.0", "--port", str(values.port)],
        "ports": [{"name": "http", "containerPort": values.port, "protocol": "TCP"}],
        "resources": {
            "requests": {"cpu": r.cpu, "memory": r.memory},
            "limits": {"memory": r.memory_limit},
        },
        # models load before the first answer: the startup probe holds the others off
        "startupProbe": _probe("/v2/health/live", 60),
        "livenessProbe": _probe("/v2/health/live", 3),
        # two failures: one slow answer (a GC pause) keeps the pod in
        "readinessProbe": _probe("/v2/health/ready", 2),
        "lifecycle": {"preStop": {"exec": {"command": ["sleep", str(values.drain_seconds)]}}},
    }
    pod = _pod(values, container)
    pod["terminationGracePeriodSeconds"] = values.drain_seconds + 30
    selector = _labels(values, "serving")
    pod["topologySpreadConstraints"] = [
        {
            "maxSkew": 1,
            "topologyKey": key,
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": selector},
        }
        for key in ("topology.kubernetes.io/zone", "kubernetes.io/hostname")
    ]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(values, values.name, "serving"),
        "spec": {
            # no `replicas`: the autoscaler owns the count, and an apply must not reset it
            "selector": {"matchLabels": selector},
            # never below the current count during an update: a new replica is ready first
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "template": {"metadata": {"labels": selector}, "spec": pod},
        },
    }


def service(values: Values) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(values, values.name, "serving"),
        "spec": {
            "selector": _labels(values, "serving"),
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def disruption_budget(values: Values) -> Manifest:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _meta(values, values.name, "serving"),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": _labels(values, "serving")}},
    }


def autoscaler(values: Values) -> Manifest:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _meta(values, values.name, "serving"),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": values.name},
            "minReplicas": values.min_replicas,
            "maxReplicas": values.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {
                            "type": "Utilization",
                            "averageUtilization": values.cpu_target_percent,
                        },
                    },
                }
            ],
            # up at once on a surge; down only after five calm minutes (no flapping)
            "behavior": {
                "scaleUp": {"stabilizationWindowSeconds": 0},
                "scaleDown": {"stabilizationWindowSeconds": 300},
            },
        },
    }


def migration_job(values: Values) -> Manifest:
    container = {
        "name": "migrate",
        "args": ["db", "upgrade"],
        "resources": {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"memory": "1Gi"}},
    }
    pod = _pod(values, container)
    pod["restartPolicy"] = "Never"
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        # a Job's template cannot change: one Job per image, named by it
        "metadata": _meta(values, f"{values.name}-migrate-{_digest(values.image)}", "migration"),
        "spec": {
            "backoffLimit": 3,
            "ttlSecondsAfterFinished": 86400,
            "template": {"metadata": {"labels": _labels(values, "migration")}, "spec": pod},
        },
    }


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def manifests(values: Values) -> list[Manifest]:
    """Every object, in the order ``kubectl apply`` should meet them."""
    return [
        service_account(values),
        deployment(values),
        service(values),
        disruption_budget(values),
        autoscaler(values),
        migration_job(values),
    ]


def write_manifests(values: Values, out: Path) -> list[Path]:
    """One ``NN-kind-name.yaml`` per object under ``out`` (created); the paths written. A YAML
    file already there that this render would not write is refused: ``kubectl apply -f out``
    would apply it too."""
    objects = {
        out / f"{i:02d}-{m['kind'].lower()}-{m['metadata']['name']}.yaml": m
        for i, m in enumerate(manifests(values))
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
        path.write_text(yaml.safe_dump(manifest, sort_keys=False))
    return list(objects)
