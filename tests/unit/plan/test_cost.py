"""Replicas, instances, monthly costs and the break-even, computed by hand on ``_tables``.

The plan below uses a replica of 3 vCPU and 2 GiB, so one fits on a 4 vCPU / 8 GiB node (after
the node's 0.5 vCPU and 1.5 GiB) and on a 4 vCPU SageMaker instance. At p99 <= 55 ms a vCPU
serves 100 req/s, a replica 300, and at 50% utilization one replica covers 150 req/s.

For k replicas, in a 100-hour month:
  EKS on-demand  = (max(3, k + 1) x 0.10 + 0.10 + 0.06) x 100 = 10 max(3, k + 1) + 16
  EKS + Spot     = (3 x 0.10 + max(0, k + 1 - 3) x 0.04 + 0.16) x 100 = 46 + 4 max(0, k - 2)
  SageMaker      = max(2, k + 1) x 0.15 x 100 = 15 (k + 1)
k = 1: 46 / 46 / 30; k = 2: 46 / 46 / 45 (SageMaker cheaper); k = 3: 56 / 50 / 60 (EKS cheaper,
and from there on: 10 (k + 1) + 16 < 15 (k + 1) once k + 1 > 3.2). Both break-evens are therefore
at 2 replicas' worth: 2 x 150 = 300 req/s.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from couturier.errors import InvalidInputError, InvalidParameterError
from couturier.plan import (
    REPLICA,
    Request,
    Setup,
    Shape,
    break_even,
    instances_for,
    load_prices,
    make_plan,
    replicas_for,
    replicas_per_instance,
    settles,
)
from couturier.plan._sizing import NO_RESERVE, NODE_RESERVE
from tests.unit.plan._tables import price_table, write_prices

BIG = Shape(3.0, 2.0)


def _setup(prices: Path) -> Setup:
    return Setup(load_prices(prices), node_type="n.test", sagemaker_type="ml.test", replica=BIG)


def test_replicas_hold_the_peak_at_the_target_utilization() -> None:
    assert replicas_for(1000, 300, 0.5) == 7  # 1000 / 150 = 6.67
    assert replicas_for(300, 300, 0.5) == 2  # exactly 2: no spare replica from rounding
    assert replicas_for(1, 300, 0.5) == 1
    for bad in (0, 1.5):
        with pytest.raises(InvalidParameterError, match=r"utilization .* is outside \(0, 1\]"):
            replicas_for(100, 300, bad)


def test_replicas_pack_by_vcpus_and_memory_after_the_reserve(prices: Path) -> None:
    node = load_prices(prices).instance("ec2", "n.test")  # 4 vCPU, 8 GiB
    assert replicas_per_instance(node, REPLICA, NODE_RESERVE) == 3  # 3.5 vCPU, 6.5 GiB left
    assert replicas_per_instance(node, Shape(1, 3), NODE_RESERVE) == 2  # memory-bound
    assert replicas_per_instance(node, REPLICA, NO_RESERVE) == 4
    with pytest.raises(InvalidParameterError, match=r"does not fit on n\.test"):
        replicas_per_instance(node, Shape(5, 1), NO_RESERVE)


def test_instances_have_one_spare_and_at_least_two_and_the_floor() -> None:
    assert instances_for(7, 3, floor=3) == 4  # 3 for 7 replicas, + 1
    assert instances_for(2, 3, floor=3) == 3  # the floor
    assert instances_for(1, 4) == 2
    assert instances_for(9, 4) == 4


def test_monthly_costs_at_the_peak(results: Path, prices: Path) -> None:
    plan = make_plan(Request(1000, 55, utilization=0.5), _setup(prices), results)
    assert plan.rps_per_replica == pytest.approx(300)
    assert plan.replicas == 7
    on_demand, spot, sagemaker = plan.options
    # 8 nodes (7 + 1): (8 x 0.10 + 0.16) x 100; Spot: (3 x 0.10 + 5 x 0.04 + 0.16) x 100
    assert on_demand.total == pytest.approx(96)
    assert spot.total == pytest.approx(66)
    assert sagemaker.total == pytest.approx(120)  # 8 instances x 0.15 x 100
    counts = {line.item: line.count for line in spot.lines}
    assert counts["n.test on-demand floor"] == 3 and counts["n.test Spot nodes"] == 5
    # ElastiCache and RDS are unpriced: in every option, out of every total, and named
    for option in plan.options:
        assert option.complete
        assert {line.item.split()[0] for line in option.unpriced} == {"ElastiCache", "RDS"}
    assert any(n.startswith("Unpriced") and "ElastiCache" in n for n in plan.notes)
    assert any(n.startswith("Extrapolation") for n in plan.notes)  # 1000 > 400 measured


def test_the_break_even_computed_by_hand(results: Path, prices: Path) -> None:
    plan = make_plan(Request(1000, 55, utilization=0.5), _setup(prices), results)
    assert plan.step_rps == pytest.approx(150)
    assert plan.curves["EKS on-demand"][:4] == pytest.approx((46, 46, 56, 66))
    assert plan.curves["SageMaker"][:4] == pytest.approx((30, 45, 60, 75))
    by_option = {b.first: b for b in plan.break_evens}
    for name in ("EKS on-demand", "EKS + Spot"):
        b = by_option[name]
        assert b.rps == pytest.approx(300)
        assert b.cheaper_above == name
        assert b.below == ((0, 300, "SageMaker"),)  # k = 1 and 2


def test_settles_finds_where_the_order_stops_changing() -> None:
    a, b = [1, 5, 1, 5, 1, 1, 1], [3] * 7
    assert settles(a, b) == (4, -1)
    got = break_even("A", a, "B", b, 10)
    assert (got.rps, got.cheaper_above, got.up_to_rps) == (40, "A", 70)
    assert got.below == ((0, 10, "A"), (10, 20, "B"), (20, 30, "A"), (30, 40, "B"))
    tied = break_even("A", [2, 2, 5, 1], "B", [2, 2, 3, 3], 10)
    assert (tied.rps, tied.below) == (30, ((0, 20, None), (20, 30, "B")))
    never = break_even("A", [1, 1], "B", [2, 3], 10)
    assert never.rps is None and never.cheaper_above == "A"


def test_an_unpriced_spot_drops_that_break_even_only(results: Path, tmp_path: Path) -> None:
    table = price_table()
    table["ec2"]["n.test"]["spot"] = {"value": None, "source": None, "note": "no Spot price"}
    plan = make_plan(
        Request(1000, 55, utilization=0.5),
        _setup(write_prices(tmp_path / "p.yaml", table)),
        results,
    )
    assert not plan.options[1].complete
    assert [b.first for b in plan.break_evens] == ["EKS on-demand"]


def test_an_unpriced_instance_type_is_refused(results: Path, prices: Path) -> None:
    setup = Setup(load_prices(prices), node_type="n.test", sagemaker_type="ml.unpriced")
    with pytest.raises(InvalidInputError, match=r"ml\.unpriced has no on-demand price.*not found"):
        make_plan(Request(100, 55), setup, results)


@pytest.mark.parametrize("rps", [0, -5, float("nan")])
def test_a_peak_rate_that_is_not_positive_is_refused(
    results: Path, prices: Path, rps: float
) -> None:
    with pytest.raises(InvalidParameterError, match=r"--peak-rps > 0"):
        make_plan(Request(rps, 55), _setup(prices), results)
