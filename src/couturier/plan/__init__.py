"""Capacity and cost plan: replicas and instances for a peak rate at a p99 target, from the
committed benchmark results, priced on EKS (on-demand, and with Spot) and on SageMaker real-time
endpoints from a dated, sourced price file, with the break-even between them (docs/plan.md).

>>> from couturier.plan import Request, Setup, load_prices, make_plan
>>> plan = make_plan(Request(peak_rps=500, p99_ms=100), Setup(load_prices()))
>>> plan.replicas > 0
True
"""

from couturier.plan._capacity import (
    RESULTS,
    WORKLOADS,
    Capacity,
    LoadPoint,
    PhotoSplit,
    Workload,
    capacity,
    load_workload,
    photo_factor,
)
from couturier.plan._cost import BreakEven, Line, Option, Setup, break_even, options, settles
from couturier.plan._plan import Plan, Request, make_plan
from couturier.plan._plot import write_plot
from couturier.plan._prices import PRICES, Figure, InstanceType, PriceBook, Source, load_prices
from couturier.plan._sizing import (
    NODE_RESERVE,
    REPLICA,
    UTILIZATION,
    Shape,
    instances_for,
    replicas_for,
    replicas_per_instance,
)

__all__ = [
    "NODE_RESERVE",
    "PRICES",
    "REPLICA",
    "RESULTS",
    "UTILIZATION",
    "WORKLOADS",
    "BreakEven",
    "Capacity",
    "Figure",
    "InstanceType",
    "Line",
    "LoadPoint",
    "Option",
    "PhotoSplit",
    "Plan",
    "PriceBook",
    "Request",
    "Setup",
    "Shape",
    "Source",
    "Workload",
    "break_even",
    "capacity",
    "instances_for",
    "load_prices",
    "load_workload",
    "make_plan",
    "options",
    "photo_factor",
    "replicas_for",
    "replicas_per_instance",
    "settles",
    "write_plot",
]
