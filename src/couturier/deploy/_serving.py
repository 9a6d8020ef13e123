"""The serving tier and its migration Job.

A rolling update drops no request because three things line up: the readiness probe routes
traffic only to replicas that answer ``/v2/health/ready``; a terminating pod first sleeps
``drain_seconds`` in its ``preStop`` hook, still serving, while the Service's endpoints drop
it; then Granian's SIGTERM handling finishes the requests in flight (decision 0017). The grace
period covers both. The PodDisruptionBudget keeps all but one replica through node drains.

The autoscaler follows two signals: CPU (steady load) and the requests in flight per pod
(requests piling up on a slow dependency or a surge, which CPU does not see), the latter
through prometheus-adapter (``_monitoring.adapter_rules``).
"""

from __future__ import annotations

from couturier.deploy._monitoring import IN_FLIGHT_METRIC
from couturier.deploy._objects import (
    Manifest,
    digest,
    labels,
    meta,
    pod,
    probe,
    resources,
    settings_env,
)
from couturier.deploy._ray import remote_models_env
from couturier.deploy._values import Values

__all__ = [
    "autoscaler",
    "deployment",
    "disruption_budget",
    "migration_job",
    "service",
    "service_account",
]


def service_account(values: Values) -> Manifest:
    metadata = meta(values, values.name, "serving")
    if values.role_arn:
        metadata["annotations"] = {"eks.amazonaws.com/role-arn": values.role_arn}
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata}


def deployment(values: Values) -> Manifest:
    container = {
        "name": "serve",
        "args": ["serve", "--host", "0.0.0.0", "--port", str(values.port)],
        "ports": [{"name": "http", "containerPort": values.port, "protocol": "TCP"}],
        "resources": resources(values.resources),
        # models load before the first answer: the startup probe holds the others off
        "startupProbe": probe("/v2/health/live", 60),
        "livenessProbe": probe("/v2/health/live", 3),
        # two failures: one slow answer (a GC pause) keeps the pod in
        "readinessProbe": probe("/v2/health/ready", 2),
        "lifecycle": {"preStop": {"exec": {"command": ["sleep", str(values.drain_seconds)]}}},
        # the image model's tier, when rendered: its RayService's serve Service
        "env": [*settings_env(values), *remote_models_env(values)],
    }
    spec = pod(values, container)
    spec["terminationGracePeriodSeconds"] = values.drain_seconds + 30
    selector = labels(values, "serving")
    spec["topologySpreadConstraints"] = [
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
        "metadata": meta(values, values.name, "serving"),
        "spec": {
            # no `replicas`: the autoscaler owns the count, and an apply must not reset it
            "selector": {"matchLabels": selector},
            # never below the current count during an update: a new replica is ready first
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "template": {"metadata": {"labels": selector}, "spec": spec},
        },
    }


def service(values: Values) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta(values, values.name, "serving"),
        "spec": {
            "selector": labels(values, "serving"),
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def disruption_budget(values: Values) -> Manifest:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": meta(values, values.name, "serving"),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": labels(values, "serving")}},
    }


def autoscaler(values: Values) -> Manifest:
    """Replicas for whichever signal asks for more: CPU, or requests in flight per pod."""
    cpu = {
        "type": "Resource",
        "resource": {
            "name": "cpu",
            "target": {"type": "Utilization", "averageUtilization": values.cpu_target_percent},
        },
    }
    in_flight = {
        "type": "Pods",
        "pods": {
            "metric": {"name": IN_FLIGHT_METRIC},
            "target": {"type": "AverageValue", "averageValue": str(values.in_flight_target)},
        },
    }
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": meta(values, values.name, "serving"),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": values.name},
            "minReplicas": values.min_replicas,
            "maxReplicas": values.max_replicas,
            "metrics": [cpu, in_flight],
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
    spec = pod(values, container)
    spec["restartPolicy"] = "Never"
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        # a Job's template cannot change: one Job per image, named by it
        "metadata": meta(values, f"{values.name}-migrate-{digest(values.image)}", "migration"),
        "spec": {
            "backoffLimit": 3,
            "ttlSecondsAfterFinished": 86400,
            "template": {"metadata": {"labels": labels(values, "migration")}, "spec": spec},
        },
    }
