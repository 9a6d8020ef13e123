"""Kubernetes manifests for the production profile, rendered from one values file.

::

    values.yaml ──> Values (checked) ──> manifests() ──> one YAML file per resource

    >>> from couturier.deploy import Values, manifests
    >>> kinds = [m["kind"] for m in manifests(Values(image="couturier:0.1.0"))]
    >>> kinds[:3]
    ['ServiceAccount', 'Deployment', 'Service']

``couturier deploy render --values FILE --out DIR`` writes them: the serving tier and its
autoscaler, the migration Job, the MLflow server, Dagster's webserver and daemon, and
prometheus-operator's ServiceMonitor and PrometheusRule (``deploy/prometheus/alerts.yml``), and,
when ``image_tier`` enables it, KubeRay's RayService serving the image model on Ray Serve.
Redis, PostgreSQL and the object store are external services, named by the Secret the values
name (``secret``); the image is the repository's ``Dockerfile``. deploy/README.md lists what is
rendered and what the cluster must provide.
"""

from couturier.deploy._manifests import KUBERNETES_VERSION, manifests, write_manifests
from couturier.deploy._monitoring import ALERTS
from couturier.deploy._values import ImageTier, Resources, Values, load_values

__all__ = [
    "ALERTS",
    "KUBERNETES_VERSION",
    "ImageTier",
    "Resources",
    "Values",
    "load_values",
    "manifests",
    "write_manifests",
]
