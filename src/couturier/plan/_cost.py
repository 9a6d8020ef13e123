"""Monthly cost of each way to run the replicas, and where one becomes cheaper than another.

Three options: EKS on EC2 all on-demand; EKS with the on-demand floor and Spot above it (the
Terraform's two node groups); SageMaker real-time endpoints. EKS pays a control plane and a NAT
gateway whatever the load, and its floor; SageMaker pays no platform fee but a premium on each
instance. Both need the same online store (ElastiCache) and database (RDS Multi-AZ): those lines
appear in both, so they never move the break-even, and an unpriced one is shown as such.

Every option is priced as if the peak's instances ran all month: an upper bound, since the
autoscaler runs fewer off peak (on either platform).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from couturier.errors import InvalidInputError
from couturier.plan._prices import Figure, InstanceType, PriceBook
from couturier.plan._sizing import (
    NO_RESERVE,
    NODE_RESERVE,
    REPLICA,
    Shape,
    instances_for,
    replicas_per_instance,
)

__all__ = ["BreakEven", "Line", "Option", "Setup", "break_even", "options", "settles"]

EKS_ON_DEMAND, EKS_SPOT, SAGEMAKER = "EKS on-demand", "EKS + Spot", "SageMaker"


@dataclass(frozen=True)
class Line:
    item: str
    count: float  # instances, clusters or gateways billed all month
    price: Figure  # per hour
    shared: bool = False  # in every option alike: it cannot move a break-even

    def monthly(self, hours: float) -> float | None:
        return None if self.price.value is None else self.count * self.price.value * hours


@dataclass(frozen=True)
class Option:
    name: str
    lines: tuple[Line, ...]
    hours: float

    @property
    def total(self) -> float:
        """The priced lines' monthly sum (see ``unpriced`` for what it leaves out)."""
        return sum(m for line in self.lines if (m := line.monthly(self.hours)) is not None)

    @property
    def unpriced(self) -> tuple[Line, ...]:
        return tuple(line for line in self.lines if line.price.value is None)

    @property
    def complete(self) -> bool:
        """Every line that differs between options has a price."""
        return all(line.shared for line in self.unpriced)


@dataclass(frozen=True)
class Setup:
    """What the options run on: the price file, the instance types, the Terraform defaults."""

    book: PriceBook
    node_type: str = "c6i.xlarge"  # deploy/terraform/variables.tf on_demand_nodes
    sagemaker_type: str = "ml.m5.xlarge"
    replica: Shape = REPLICA
    node_reserve: Shape = NODE_RESERVE
    on_demand_floor: int = 3  # on_demand_nodes.min
    nat_gateways: int = 1  # nat_gateway_per_zone = false
    cache_nodes: int = 2  # 1 + redis_replicas
    cache_type: str = "cache.m7g.large"  # redis_node_type
    database_class: str = "db.m7g.large"  # postgres_instance_class

    def node(self) -> InstanceType:
        return _priced(self.book.instance("ec2", self.node_type), "--instance-type")

    def endpoint(self) -> InstanceType:
        return _priced(
            self.book.instance("sagemaker", self.sagemaker_type), "--sagemaker-instance-type"
        )

    def per_node(self) -> int:
        return replicas_per_instance(self.node(), self.replica, self.node_reserve)

    def per_endpoint(self) -> int:
        return replicas_per_instance(self.endpoint(), self.replica, NO_RESERVE)


def _priced(t: InstanceType, option: str) -> InstanceType:
    if t.on_demand.value is None:
        raise InvalidInputError(
            f"instance type {t.name} has no on-demand price in the price file "
            f"({t.on_demand.note}); the plan cannot size a group it cannot price; pick a priced "
            f"type with {option}, or add the price with its source and date",
            field=option.removeprefix("--").replace("-", "_"),
        )
    return t


def _shared(setup: Setup) -> tuple[Line, ...]:
    svc = setup.book.service
    cache, rds = svc("elasticache_node"), svc("rds_instance")
    factor = svc("rds_multi_az_factor").value or 1.0
    return (
        Line(f"ElastiCache {setup.cache_type}", setup.cache_nodes, cache, True),
        Line(f"RDS {setup.database_class} Multi-AZ", factor, rds, True),
    )


def options(setup: Setup, replicas: int) -> tuple[Option, Option, Option]:
    """The three options, priced for ``replicas`` serving replicas."""
    book, node, endpoint = setup.book, setup.node(), setup.endpoint()
    hours = book.hours_per_month.value
    if hours is None:
        raise InvalidInputError(
            f"the price file {book.path} has no hours_per_month; add it with its source",
            field="prices",
        )
    nodes = instances_for(replicas, setup.per_node(), floor=setup.on_demand_floor)
    platform = (
        Line("EKS control plane", 1, book.service("eks_control_plane")),
        Line("NAT gateway", setup.nat_gateways, book.service("nat_gateway")),
    )
    shared = _shared(setup)
    floor = min(nodes, setup.on_demand_floor)
    spot = node.spot or Figure(f"ec2.{node.name}.spot", None, "USD/hour", None, "no Spot figure")
    on_demand = Option(
        EKS_ON_DEMAND,
        (*platform, Line(f"{node.name} on-demand nodes", nodes, node.on_demand), *shared),
        hours,
    )
    mixed = Option(
        EKS_SPOT,
        (
            *platform,
            Line(f"{node.name} on-demand floor", floor, node.on_demand),
            Line(f"{node.name} Spot nodes", nodes - floor, spot),
            *shared,
        ),
        hours,
    )
    sagemaker = Option(
        SAGEMAKER,
        (
            Line(
                f"{endpoint.name} endpoint instances",
                instances_for(replicas, setup.per_endpoint()),
                endpoint.on_demand,
            ),
            *shared,
        ),
        hours,
    )
    return on_demand, mixed, sagemaker


def settles(a: Sequence[float], b: Sequence[float]) -> tuple[int, int]:
    """``(i, s)``: from index ``i`` to the end, ``sign(a[j] - b[j]) == s``; ``i`` the smallest.

    >>> settles([45, 45, 55, 65], [30, 45, 60, 75])
    (2, -1)
    """
    signs = [(x > y) - (x < y) for x, y in zip(a, b, strict=True)]
    end = signs[-1]
    i = len(signs)
    while i > 0 and signs[i - 1] == end:
        i -= 1
    return i, end


@dataclass(frozen=True)
class BreakEven:
    """Where ``cheaper_above`` becomes and stays the cheaper of two options, up to ``up_to_rps``.

    ``rps`` is None when one option is the cheaper (or they cost the same) across the whole
    range checked. ``below`` lists, up to the break-even, the peak-rate ranges ``(low, high]``
    and which option is cheaper in each (None: they cost the same): step costs can cross more
    than once before they settle.
    """

    first: str
    second: str
    rps: float | None
    cheaper_above: str | None
    below: tuple[tuple[float, float, str | None], ...]
    up_to_rps: float


def break_even(
    first: str, a: Sequence[float], second: str, b: Sequence[float], step_rps: float
) -> BreakEven:
    """``a[k-1]`` and ``b[k-1]`` are the monthly costs for ``k`` replicas, each of which serves
    ``step_rps`` at the target utilization: ``k`` replicas cover peaks in
    ``((k - 1) * step_rps, k * step_rps]``. The break-even is the lowest peak rate above which
    the option cheaper at the end of the range stays cheaper."""
    i, end = settles(a, b)
    name = {-1: first, 1: second, 0: None}
    below: list[tuple[float, float, str | None]] = []
    for j in range(i):
        cheaper = name[(a[j] > b[j]) - (a[j] < b[j])]
        if below and below[-1][2] == cheaper:
            below[-1] = (below[-1][0], (j + 1) * step_rps, cheaper)
        else:
            below.append((j * step_rps, (j + 1) * step_rps, cheaper))
    return BreakEven(
        first, second, i * step_rps if i else None, name[end], tuple(below), len(a) * step_rps
    )
