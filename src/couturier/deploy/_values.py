"""What an operator sets for a deployment: the values file, checked before anything renders."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from couturier.errors import InvalidInputError

__all__ = ["Resources", "Values", "load_values"]

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

    @model_validator(mode="after")
    def _replica_bounds(self) -> Values:
        if self.max_replicas < self.min_replicas:
            raise ValueError(
                f"max_replicas ({self.max_replicas}) is below min_replicas "
                f"({self.min_replicas}); raise max_replicas or lower min_replicas"
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
