"""One plan: capacity at the target p99, replicas and instances at the peak, their monthly
cost on each option, and the break-even between EKS and SageMaker across peak rates."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from couturier.errors import InvalidParameterError
from couturier.plan._capacity import RESULTS, Capacity, capacity, load_workload
from couturier.plan._cost import (
    EKS_ON_DEMAND,
    EKS_SPOT,
    SAGEMAKER,
    BreakEven,
    Option,
    Setup,
    break_even,
    options,
)
from couturier.plan._sizing import UTILIZATION, replicas_for

__all__ = ["Plan", "Request", "make_plan"]

# the break-even is looked for up to this many times the peak's replicas (and at least this many)
_RANGE_FACTOR, _MIN_RANGE = 4, 60


@dataclass(frozen=True)
class Request:
    """What the plan is for: a peak arrival rate and the p99 it must keep."""

    peak_rps: float
    p99_ms: float
    photos: int | None = None  # photos per listing; None: as many as the benchmark sent
    workload: str = "authenticate"
    utilization: float = UTILIZATION


@dataclass(frozen=True)
class Plan:
    request: Request
    capacity: Capacity
    rps_per_replica: float  # at the target p99, before the utilization headroom
    replicas: int  # serving replicas at the peak
    per_node: int  # replicas an EKS node holds
    per_endpoint: int  # replicas' worth a SageMaker instance holds
    options: tuple[Option, ...]  # priced at the peak
    curve_rps: tuple[float, ...]  # peak rates k * step for k = 1, 2, ...
    curves: dict[str, tuple[float, ...]]  # option name -> monthly total at each rate
    break_evens: tuple[BreakEven, ...]
    notes: tuple[str, ...]

    @property
    def step_rps(self) -> float:
        """What one replica serves at the target utilization."""
        return self.rps_per_replica * self.request.utilization


def _notes(plan_capacity: Capacity, request: Request, opts: tuple[Option, ...]) -> list[str]:
    c, notes = plan_capacity, []
    highest = max(c.workload.points, key=lambda p: p.rps_per_vcpu)
    if c.point is highest and request.p99_ms > c.p99_ms:
        notes.append(
            f"The target p99 ({request.p99_ms:g} ms) is above the chosen load's "
            f"({c.p99_ms:.1f} ms): capacity stops at the highest load measured, it is not "
            "extrapolated towards the target."
        )
    measured = c.point.rps / c.factor
    if request.peak_rps > measured:
        notes.append(
            f"Extrapolation: {request.peak_rps:g} req/s is {request.peak_rps / measured:.1f}x the "
            f"load measured on one {c.point.cpus}-vCPU machine ({measured:.0f} req/s). The plan "
            "assumes stateless replicas scale linearly behind the load balancer; the shared "
            "Redis and PostgreSQL were not measured at this rate."
        )
    split = c.workload.split
    if c.photos is not None and split is not None:
        notes.append(
            f"{c.photos} photos per listing: a request costs {c.factor:.2f}x the benchmark's "
            f"({split.photos} photos; {split.share:.0%} of its work grows with photos, "
            f"from {split.source})."
        )
    lines = {line.item: line for o in opts for line in o.lines}.values()
    for line in lines:
        if line.price.value is None:
            notes.append(f"Unpriced, left out of every total: {line.item}: {line.price.note}")
        elif "ASSUMPTION" in line.price.note:
            notes.append(f"{line.item} at {line.price.value:g}/h: {line.price.note}")
    return notes


def make_plan(request: Request, setup: Setup, results: Path = RESULTS) -> Plan:
    """Size and price ``request`` from the benchmark results and ``setup``'s price file."""
    if not (math.isfinite(request.peak_rps) and request.peak_rps > 0):
        raise InvalidParameterError(
            f"peak rate {request.peak_rps:g} req/s is not a positive number; the rule is "
            "--peak-rps > 0; pass the expected peak arrival rate, e.g. --peak-rps 500",
            field="peak_rps",
        )
    cap = capacity(load_workload(request.workload, results), request.p99_ms, request.photos)
    per_replica = cap.rps_per_vcpu * setup.replica.vcpus
    replicas = replicas_for(request.peak_rps, per_replica, request.utilization)
    at_peak = options(setup, replicas)
    grid = range(1, max(_RANGE_FACTOR * replicas, _MIN_RANGE) + 1)
    priced = [options(setup, k) for k in grid]
    names = [o.name for o in at_peak]
    curves = {name: tuple(ps[i].total for ps in priced) for i, name in enumerate(names)}
    step = per_replica * request.utilization
    complete = {o.name for o in at_peak if o.complete}
    break_evens = tuple(
        break_even(eks, curves[eks], SAGEMAKER, curves[SAGEMAKER], step)
        for eks in (EKS_ON_DEMAND, EKS_SPOT)
        if eks in complete and SAGEMAKER in complete
    )
    return Plan(
        request=request,
        capacity=cap,
        rps_per_replica=per_replica,
        replicas=replicas,
        per_node=setup.per_node(),
        per_endpoint=setup.per_endpoint(),
        options=at_peak,
        curve_rps=tuple(k * step for k in grid),
        curves=curves,
        break_evens=break_evens,
        notes=tuple(_notes(cap, request, at_peak)),
    )
