"""The image model's own tier: KubeRay's RayService running the Ray Serve application
``couturier.serving.ray_tier:build``, and the address the serving pods call it at.

::

    RayService <name>-image-tier            (values.image_tier.enabled)
      serveConfigV2      one application: ray_tier:build {model, ref, graph}, route /, the
                         deployment OnnxTier's replicas autoscaled by Ray Serve (requests
                         in flight)
      rayClusterConfig   a head (no replica: num-cpus 0) and one worker group, which KubeRay's
                         autoscaler sizes to the replicas Ray Serve asks for
    Service <name>-image-tier-serve-svc:8000   (KubeRay's) <- the serving pods'
                                               COUTURIER_REMOTE_MODELS

KubeRay starts Ray itself: it replaces the Ray container's command with ``/bin/bash -c --
"ulimit -n 65536; ray start ..."`` and puts any command or args the template gives before it
(``CMD && ray start ...``). The containers here give neither, so the image's ``ENTRYPOINT
["couturier"]`` never runs and ``ray`` comes from the image's PATH (``/opt/couturier/bin``).

The pods are the image's like every other: the production settings from the Secret (the
application builder reads the registry on whichever node builds it), user 10001, a read-only
root file system with writable ``/tmp`` (Ray's sessions, logs and sockets) and home. The head
pod mounts its service account token: the autoscaler sidecar patches the RayCluster's worker
count through the API (KubeRay then creates the pods), with the Role KubeRay binds to that
account.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from couturier.deploy._objects import (
    Manifest,
    container_security,
    labels,
    meta,
    pod,
    resources,
    scratch,
)
from couturier.deploy._values import IMAGE_TIER_SUFFIX, ImageTier, Values

__all__ = [
    "DEPLOYMENT",
    "IMPORT_PATH",
    "PROXY_HEALTH_PATH",
    "RAY_VERSION",
    "SERVE_PORT",
    "ray_service",
    "ray_service_name",
    "remote_models_env",
    "serve_config",
    "serve_url",
    "worker_bounds",
]

#: The Ray in the image (requirements.lock): KubeRay picks its probes and autoscaler by it.
RAY_VERSION = "2.60.0"
#: The application builder, and the deployment whose options the config sets.
IMPORT_PATH = "couturier.serving.ray_tier:build"
DEPLOYMENT = "OnnxTier"
APPLICATION = "image-tier"
#: Ray Serve's HTTP port (its default), on every node's proxy and on KubeRay's serve Service.
SERVE_PORT = 8000
#: A Serve proxy's health: 200 while it routes, 503 while its node drains.
PROXY_HEALTH_PATH = "/-/healthz"
#: The head container's ports: KubeRay's head Service takes them all, the serve Service the
#: one named "serve" (declaring any replaces KubeRay's defaults, so these are its defaults).
HEAD_PORTS = {"gcs-server": 6379, "dashboard": 8265, "client": 10001, "serve": SERVE_PORT}
#: Ray's resource unit: CPUs are counted in ten-thousandths.
_CPU_UNITS = 10_000
#: Ray's temporary folder, its logs included: whatever outgrows it evicts the pod.
_TMP_SIZE = "4Gi"


def ray_service_name(values: Values) -> str:
    return f"{values.name}{IMAGE_TIER_SUFFIX}"


def serve_url(values: Values) -> str:
    """The serve Service KubeRay creates for the RayService (``<name>-serve-svc``), which
    follows the active RayCluster through upgrades."""
    return f"http://{ray_service_name(values)}-serve-svc.{values.namespace}.svc:{SERVE_PORT}"


def remote_models_env(values: Values) -> list[dict[str, Any]]:
    """The serving pods' ``COUTURIER_REMOTE_MODELS`` (JSON) when the tier is on; else none."""
    tier = values.image_tier
    if not tier.enabled:
        return []
    value = json.dumps({tier.model: serve_url(values)})
    return [{"name": "COUTURIER_REMOTE_MODELS", "value": value}]


def serve_config(tier: ImageTier) -> dict[str, Any]:
    """Ray Serve's config (``ServeDeploySchema``): the one application and its autoscaling."""
    autoscaling = {
        "min_replicas": tier.min_replicas,
        "max_replicas": tier.max_replicas,
        "target_ongoing_requests": tier.target_ongoing_requests,
        # deprecated in Ray 2.60 (for environment variables to come), and still what it reads
        "metrics_interval_s": tier.metrics_interval_s,
        "look_back_period_s": tier.look_back_period_s,
        "upscale_delay_s": tier.upscale_delay_s,
        "downscale_delay_s": tier.downscale_delay_s,
    }
    deployment = {
        "name": DEPLOYMENT,
        "ray_actor_options": {"num_cpus": tier.replica_cpus},
        "autoscaling_config": autoscaling,
    }
    application = {
        "name": APPLICATION,
        "import_path": IMPORT_PATH,
        "route_prefix": "/",
        "args": {
            "model": tier.model,
            "ref": tier.ref,
            **({"graph": tier.graph} if tier.graph else {}),
        },
        "deployments": [deployment],
    }
    return {"applications": [application]}


def worker_bounds(tier: ImageTier) -> tuple[int, int]:
    """The worker pods ``min_replicas`` and ``max_replicas`` replicas fill, ``replica_cpus``
    each on pods of ``worker_resources.cpu`` cores."""
    per_pod = tier.worker_cpus * _CPU_UNITS // round(tier.replica_cpus * _CPU_UNITS)
    return -(-tier.min_replicas // per_pod), -(-tier.max_replicas // per_pod)


def _ray_pod(values: Values, container: dict[str, Any]) -> Manifest:
    # no command, no args: KubeRay's `ray start` replaces the image's entrypoint
    # the production settings, without COUTURIER_REMOTE_MODELS: the tier serves the model
    spec = pod(values, container, [scratch("tmp", "/tmp", _TMP_SIZE)])
    return {"metadata": {"labels": labels(values, "image-tier")}, "spec": spec}


def _head(values: Values) -> dict[str, Any]:
    tier = values.image_tier
    ports = [{"name": n, "containerPort": p, "protocol": "TCP"} for n, p in HEAD_PORTS.items()]
    container = {
        "name": "ray-head",
        "ports": ports,
        "resources": resources(tier.head_resources),
    }
    template = _ray_pod(values, container)
    # the autoscaler sidecar reaches the API server with the pod's service account token
    template["spec"]["automountServiceAccountToken"] = True
    # no replica on the head: it runs GCS, the dashboard and the Serve controller
    return {"rayStartParams": {"num-cpus": "0"}, "template": template}


def _workers(values: Values) -> dict[str, Any]:
    tier = values.image_tier
    fewest, most = worker_bounds(tier)
    container = {
        "name": "ray-worker",
        "ports": [{"name": "serve", "containerPort": SERVE_PORT, "protocol": "TCP"}],
        "resources": resources(tier.worker_resources),
        # KubeRay's own readiness probe for a RayService worker runs wget, which the slim image
        # lacks: the Serve proxy's health over HTTP instead. A worker without replicas runs no
        # proxy and stays out of the serve Service; a draining one leaves it at once.
        "readinessProbe": {
            "httpGet": {"path": PROXY_HEALTH_PATH, "port": "serve"},
            "periodSeconds": 5,
            "timeoutSeconds": 2,
            "failureThreshold": 1,
        },
    }
    return {
        "groupName": "onnx",
        # no `replicas`: the autoscaler owns the count (KubeRay starts at minReplicas)
        "minReplicas": fewest,
        "maxReplicas": most,
        "rayStartParams": {"num-cpus": str(tier.worker_cpus)},
        "template": _ray_pod(values, container),
    }


def ray_service(values: Values) -> Manifest:
    """The RayService of the image tier (render it only when ``image_tier.enabled``)."""
    tmp = scratch("tmp", "/tmp", _TMP_SIZE)[1]
    cluster = {
        "rayVersion": RAY_VERSION,
        "enableInTreeAutoscaling": True,
        # the sidecar runs the image's `ray kuberay-autoscaler`, as the image's user
        "autoscalerOptions": {
            "resources": {
                "requests": {"cpu": "250m", "memory": "512Mi"},
                "limits": {"memory": "512Mi"},
            },
            "securityContext": container_security(),
            "volumeMounts": [tmp],
        },
        "headGroupSpec": _head(values),
        "workerGroupSpecs": [_workers(values)],
    }
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayService",
        "metadata": meta(values, ray_service_name(values), "image-tier"),
        "spec": {
            # KubeRay takes a YAML string and submits it to the cluster's Serve REST API
            "serveConfigV2": yaml.safe_dump(serve_config(values.image_tier), sort_keys=False),
            # traffic to the workers' proxies only, next to their replicas
            "excludeHeadPodFromServeSvc": True,
            "rayClusterConfig": cluster,
        },
    }
