"""Replicas for a peak rate, and instances to hold them (vCPUs and memory, N+1).

A replica is one serving pod of a stated shape (the Kubernetes values file's request: 1 vCPU
and 2 GiB). It serves ``capacity per vCPU x its vCPUs`` at the target p99, and the plan loads it
to a target utilization only, leaving headroom for the autoscaler's lag and for arrivals that
bunch. Instances hold as many replicas as their vCPUs and memory allow after a node's own
reserve, and every group gets one spare instance (N+1) and at least two.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from couturier.errors import InvalidInputError, InvalidParameterError
from couturier.plan._prices import InstanceType

__all__ = [
    "MIN_INSTANCES",
    "NODE_RESERVE",
    "NO_RESERVE",
    "REPLICA",
    "UTILIZATION",
    "Shape",
    "instances_for",
    "replicas_for",
    "replicas_per_instance",
]

_EPS = 1e-9


@dataclass(frozen=True)
class Shape:
    """vCPUs and memory: a replica's request, or what a node keeps for itself."""

    vcpus: float
    memory_gib: float


# deploy/kubernetes/values.example.yaml `resources`: one serving replica requests 1 vCPU, 2 GiB
REPLICA = Shape(1.0, 2.0)
# ASSUMPTION, not measured: the kubelet's and the system's reserve plus the DaemonSets (VPC CNI,
# kube-proxy, node exporter) on an EKS node
NODE_RESERVE = Shape(0.5, 1.5)
# a SageMaker instance runs one container that gets the whole instance
NO_RESERVE = Shape(0.0, 0.0)
UTILIZATION = 0.65
MIN_INSTANCES = 2  # two zones: one instance lost leaves one serving


def replicas_for(peak_rps: float, rps_per_replica: float, utilization: float) -> int:
    """Replicas that serve ``peak_rps`` with each at ``utilization`` of its capacity."""
    if not 0 < utilization <= 1:
        raise InvalidParameterError(
            f"utilization {utilization:g} is outside (0, 1]; it is the share of a replica's "
            "measured capacity the plan loads it to; pass e.g. --utilization 0.65",
            field="utilization",
        )
    return max(1, math.ceil(peak_rps / (rps_per_replica * utilization) - _EPS))


def _size(t: InstanceType) -> Shape:
    vcpus, memory = t.vcpus.value, t.memory_gib.value
    if vcpus is None or memory is None:
        raise InvalidInputError(
            f"instance type {t.name} has no vCPU or memory figure in the price file "
            f"({t.vcpus.note or t.memory_gib.note}); the plan packs replicas by both; add them "
            "with their source, or pick another type",
            field="prices",
        )
    return Shape(vcpus, memory)


def replicas_per_instance(t: InstanceType, replica: Shape, reserve: Shape) -> int:
    """How many replicas fit on one instance of ``t`` after its ``reserve``."""
    size = _size(t)
    by_cpu = math.floor((size.vcpus - reserve.vcpus) / replica.vcpus + _EPS)
    by_memory = math.floor((size.memory_gib - reserve.memory_gib) / replica.memory_gib + _EPS)
    fits = min(by_cpu, by_memory)
    if fits < 1:
        raise InvalidParameterError(
            f"a replica of {replica.vcpus:g} vCPU and {replica.memory_gib:g} GiB does not fit on "
            f"{t.name} ({size.vcpus:g} vCPU, {size.memory_gib:g} GiB, less "
            f"{reserve.vcpus:g} vCPU and {reserve.memory_gib:g} GiB reserved); the rule is one "
            "replica per instance at least; pick a larger instance type or a smaller replica",
            field="instance_type",
        )
    return fits


def instances_for(replicas: int, per_instance: int, floor: int = 0) -> int:
    """Instances for ``replicas``, plus one spare (N+1), at least two and at least ``floor``."""
    return max(floor, MIN_INSTANCES, math.ceil(replicas / per_instance) + 1)
