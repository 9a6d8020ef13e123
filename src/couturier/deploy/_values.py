"""What an operator sets for a deployment: the values file, checked before anything renders."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from couturier.errors import InvalidInputError

__all__ = ["ImageTier", "Resources", "Values", "load_values"]

#: A Kubernetes object name (RFC 1123 label): what `name`, `namespace` and `secret` must be.
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
#: A Kubernetes quantity: "500m", "2", "2Gi", "1.5".
QUANTITY = r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$"
_SCALE = {"m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
_SCALE |= {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
#: A label's key (an optional DNS-subdomain prefix and a slash, then a name) and its value.
LabelKey = Annotated[
    str,
    Field(
        pattern=r"^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
    ),
]
LabelValue = Annotated[str, Field(pattern=r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")]
#: A registry model name or alias (``authentication-image``, ``champion``), or a version (``3``).
REGISTRY_NAME = r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,126}[A-Za-z0-9])?$"
#: KubeRay refuses a RayService name over 47 characters (its RayCluster's name, plus a
#: 6-character suffix, then ``-serve-svc``, must stay a 63-character label).
RAY_SERVICE_NAME_MAX = 47
#: What the image tier's RayService appends to ``name``.
IMAGE_TIER_SUFFIX = "-image-tier"


def _amount(quantity: str) -> float:
    """A quantity's amount: "1.5Gi" -> 1610612736.0 (QUANTITY checked it already)."""
    number = quantity.rstrip("kKMGTim")
    return float(number) * _SCALE.get(quantity[len(number) :], 1)


class Resources(BaseModel):
    """One serving replica's requests (what the scheduler reserves; the CPU request is what the
    autoscaler's utilization is a share of) and its memory limit. No CPU limit: throttling a
    latency-bound server costs more than it protects."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cpu: str = Field(default="1", pattern=QUANTITY)
    memory: str = Field(default="2Gi", pattern=QUANTITY)
    memory_limit: str = Field(default="3Gi", pattern=QUANTITY)

    @model_validator(mode="after")
    def _limit_covers_request(self) -> Resources:
        # Kubernetes refuses the pod at apply time, which no offline schema check sees
        if _amount(self.memory_limit) < _amount(self.memory):
            raise ValueError(
                f"memory_limit ({self.memory_limit}) is below memory ({self.memory}); the limit "
                "must be at least the request: raise memory_limit or lower memory"
            )
        return self


class ImageTier(BaseModel):
    """The image model on its own autoscaled tier: KubeRay's RayService running the Ray Serve
    application ``couturier.serving.ray_tier:build``; the serving pods then call it remotely.
    The autoscaling defaults are ``ray_tier.AUTOSCALING``'s, the replica's CPUs its
    deployment's."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False
    #: the registry model the tier serves, and which of its versions: the one the graph's
    #: ``ref`` (an alias or a number) names among its components, the version the graph asks
    #: the tier for; ``graph`` null: the one ``ref`` names among the model's own
    model: str = Field(default="authentication-image", pattern=REGISTRY_NAME)
    ref: str = Field(default="champion", pattern=REGISTRY_NAME)
    graph: str | None = Field(default="authentication", pattern=REGISTRY_NAME)
    #: Serve replicas: at least one, always (a cold start outlasts the remote call's timeout)
    min_replicas: int = Field(default=1, ge=1, le=256)
    max_replicas: int = Field(default=4, ge=1, le=256)
    #: Ray Serve adds replicas above this many requests in flight per replica
    target_ongoing_requests: float = Field(default=2.0, gt=0, le=1000)
    #: how often each replica reports its load, and the window it is averaged over (Ray's
    #: defaults, 10 s and 30 s, let a surge run half its course before a replica is added)
    metrics_interval_s: float = Field(default=1.0, gt=0, le=60)
    look_back_period_s: float = Field(default=5.0, gt=0, le=600)
    upscale_delay_s: float = Field(default=2.0, ge=0, le=3600)
    downscale_delay_s: float = Field(default=10.0, ge=0, le=3600)
    #: CPUs Ray reserves for one replica: how many replicas a worker pod holds
    replica_cpus: float = Field(default=0.5, ge=0.01, le=64)
    #: the Ray head: GCS, dashboard, Serve controller, the autoscaler's requests; no replica
    head_resources: Resources = Resources(cpu="1", memory="3Gi", memory_limit="3Gi")
    #: one Ray worker pod; ``cpu`` in whole cores (Ray's ``--num-cpus`` is an integer)
    worker_resources: Resources = Resources(cpu="2", memory="4Gi", memory_limit="4Gi")

    @field_validator("worker_resources")
    @classmethod
    def _whole_cores(cls, value: Resources) -> Resources:
        cores = _amount(value.cpu)
        if cores < 1 or cores != int(cores):
            raise ValueError(
                f"cpu {value.cpu!r} is not a whole number of cores; Ray counts a worker's CPUs "
                'in whole cores: give e.g. "2"'
            )
        return value

    @model_validator(mode="after")
    def _bounds(self) -> ImageTier:
        if self.max_replicas < self.min_replicas:
            raise ValueError(
                f"max_replicas ({self.max_replicas}) is below min_replicas "
                f"({self.min_replicas}); raise max_replicas or lower min_replicas"
            )
        if self.look_back_period_s <= self.metrics_interval_s:
            raise ValueError(
                f"look_back_period_s ({self.look_back_period_s}) is not above "
                f"metrics_interval_s ({self.metrics_interval_s}): the average would hold one "
                "report at most; raise look_back_period_s"
            )
        if self.replica_cpus > self.worker_cpus:
            raise ValueError(
                f"replica_cpus ({self.replica_cpus}) exceeds a worker's "
                f"{self.worker_cpus} CPUs, so no replica could be placed; raise "
                "worker_resources.cpu or lower replica_cpus"
            )
        return self

    @property
    def worker_cpus(self) -> int:
        return int(_amount(self.worker_resources.cpu))


class Values(BaseModel):
    """The values file (YAML). Only ``image`` has no default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    image: str = Field(min_length=1, description="the image built from the Dockerfile")
    name: str = Field(default="couturier", pattern=DNS_LABEL)
    namespace: str = Field(default="couturier", pattern=DNS_LABEL)
    #: the Secret holding COUTURIER_REDIS_URL, _POSTGRES_DSN, _OBJECT_STORE_URI and _ADMIN_TOKEN
    #: (the production profile's settings), MLFLOW_BACKEND_STORE_URI and DAGSTER_POSTGRES_URL
    secret: str = Field(default="couturier", pattern=DNS_LABEL)
    #: the IAM role the pods assume (EKS IRSA); unset, no annotation
    role_arn: str | None = Field(default=None, pattern=r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$")
    min_replicas: int = Field(default=3, ge=1)
    max_replicas: int = Field(default=12, ge=1)
    #: the autoscaler adds replicas above this share of the CPU request
    cpu_target_percent: int = Field(default=70, ge=10, le=100)
    #: ... or above this many requests in flight per pod, on average over a minute
    in_flight_target: int = Field(default=16, ge=1, le=1000)
    #: seconds a terminating pod keeps serving while the load balancer stops sending to it
    drain_seconds: int = Field(default=10, ge=0, le=300)
    port: int = Field(default=8080, ge=1024, le=65535)
    resources: Resources = Resources()
    mlflow_resources: Resources = Resources(cpu="500m", memory="1Gi", memory_limit="2Gi")
    dagster_webserver_resources: Resources = Resources(cpu="250m", memory="1Gi", memory_limit="2Gi")
    #: the daemon runs the pipelines' runs in its pod: training included
    dagster_daemon_resources: Resources = Resources(cpu="2", memory="4Gi", memory_limit="8Gi")
    #: labels on the ServiceMonitor and PrometheusRule, for the Prometheus that selects them
    #: (kube-prometheus-stack: {release: <its Helm release>})
    prometheus_labels: dict[LabelKey, LabelValue] = Field(default_factory=dict)
    image_tier: ImageTier = ImageTier()

    @model_validator(mode="after")
    def _replica_bounds(self) -> Values:
        if self.max_replicas < self.min_replicas:
            raise ValueError(
                f"max_replicas ({self.max_replicas}) is below min_replicas "
                f"({self.min_replicas}); raise max_replicas or lower min_replicas"
            )
        return self

    @model_validator(mode="after")
    def _ray_service_name(self) -> Values:
        if not self.image_tier.enabled:
            return self
        longest = RAY_SERVICE_NAME_MAX - len(IMAGE_TIER_SUFFIX)
        if len(self.name) > longest:
            raise ValueError(
                f"name {self.name!r} has {len(self.name)} characters; with image_tier enabled "
                f"the RayService is named name + {IMAGE_TIER_SUFFIX!r}, which KubeRay allows "
                f"{RAY_SERVICE_NAME_MAX} characters: shorten name to {longest} at most"
            )
        if not self.name[0].isalpha():
            raise ValueError(
                f"name {self.name!r} starts with a digit; with image_tier enabled it names the "
                "RayService, which KubeRay wants to start with a letter (a DNS-1035 label)"
            )
        return self


def load_values(path: Path) -> Values:
    """Read and check a values file; every refusal names the file, the field and the rule."""
    try:
        raw: Any = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise InvalidInputError(
            f"values file {path} cannot be read: {exc.strerror}; pass an existing YAML file",
            field="values",
        ) from None
    except yaml.YAMLError as exc:
        raise InvalidInputError(
            f"values file {path} is not YAML: {exc}; fix its syntax", field="values"
        ) from None
    if not isinstance(raw, dict):
        raise InvalidInputError(
            f"values file {path} holds a {type(raw).__name__}, not a mapping; write "
            "`key: value` lines (deploy/kubernetes/values.example.yaml)",
            field="values",
        )
    try:
        return Values.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "values"
        raise InvalidInputError(
            f"values file {path}: {where}: {first['msg']} (got {first.get('input')!r}); see "
            "deploy/kubernetes/values.example.yaml for every key and its rule",
            field=where,
        ) from None
