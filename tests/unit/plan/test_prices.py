"""The price file: the committed one is complete and sourced; a bad one is refused by name."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from couturier.errors import InvalidInputError
from couturier.plan import PRICES, REPLICA, Setup, load_prices
from tests.unit.plan._tables import price_table, write_prices

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"
TERRAFORM = DEPLOY / "terraform" / "variables.tf"
DATE = re.compile(r"20\d\d-\d\d-\d\d")


def test_every_committed_figure_has_a_dated_source_or_a_null_with_a_note() -> None:
    book = load_prices(PRICES)
    figures = list(book.figures())
    assert len(figures) > 20
    for f in figures:
        if f.value is None:
            assert f.source is None and f.note, f.name
        else:
            assert f.source is not None, f.name
            assert f.source.url.startswith(("http://", "https://")), f.name
            assert DATE.search(f.source.read), f"{f.name}: {f.source.read!r} names no day"


def test_the_committed_file_prices_what_the_plan_uses_by_default() -> None:
    setup = Setup(load_prices(PRICES))
    node, endpoint = setup.node(), setup.endpoint()
    for figure in (node.on_demand, node.vcpus, node.memory_gib, endpoint.on_demand):
        assert figure.value is not None and figure.value > 0
    assert node.spot is not None and node.spot.value is not None
    assert node.spot.value < node.on_demand.value  # type: ignore[operator]
    for key in ("eks_control_plane", "nat_gateway", "rds_multi_az_factor"):
        assert setup.book.service(key).value is not None


def _terraform_default(name: str) -> str:
    text = TERRAFORM.read_text()
    block = text[text.index(f'variable "{name}"') :]
    match = re.search(r"^\s*default\s*=\s*(.+)$", block, re.MULTILINE)
    assert match is not None, name
    return match.group(1).strip()


def test_the_plans_defaults_are_the_terraform_defaults() -> None:
    setup = Setup(load_prices(PRICES))
    on_demand = _terraform_default("on_demand_nodes")
    assert f'instance_types = ["{setup.node_type}"]' in on_demand
    assert f"min = {setup.on_demand_floor}" in on_demand
    assert setup.node_type in _terraform_default("spot_nodes")
    assert int(_terraform_default("redis_replicas")) + 1 == setup.cache_nodes
    assert _terraform_default("nat_gateway_per_zone") == "false" and setup.nat_gateways == 1
    assert _terraform_default("redis_node_type") == f'"{setup.cache_type}"'
    assert _terraform_default("postgres_instance_class") == f'"{setup.database_class}"'


def test_a_replica_is_the_serving_pods_request_in_the_values_file() -> None:
    values = yaml.safe_load((DEPLOY / "kubernetes" / "values.example.yaml").read_text())
    cpu, memory = str(values["resources"]["cpu"]), str(values["resources"]["memory"])
    vcpus = float(cpu[:-1]) / 1000 if cpu.endswith("m") else float(cpu)
    assert memory.endswith("Gi")
    assert (vcpus, float(memory[:-2])) == (REPLICA.vcpus, REPLICA.memory_gib)


def test_a_missing_file_is_refused_with_the_fix(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match=r"does not exist.*--prices FILE") as exc:
        load_prices(tmp_path / "nope.yaml")
    assert exc.value.field == "prices"


def _edit(tmp_path: Path, change: Any) -> Path:
    table = price_table()
    change(table)
    return write_prices(tmp_path / "edited.yaml", table)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda t: t["ec2"]["n.test"]["on_demand"].update(source="nowhere"),
            r"ec2\.n\.test\.on_demand = 0\.1 cites source 'nowhere'",
        ),
        (
            lambda t: t["services"]["nat_gateway"].update(value=None, source=None, note=""),
            r"services\.nat_gateway has no value: it needs source: null and a note",
        ),
        (
            lambda t: t["services"]["nat_gateway"].update(value=None),
            r"services\.nat_gateway has no value",
        ),
        (lambda t: t["sources"]["test-src"].pop("read"), r"sources\.test-src\.read is missing"),
        (
            lambda t: t["sources"]["test-src"].update(url="example.org"),
            r"sources\.test-src\.url = 'example\.org' is not an http",
        ),
        (
            lambda t: t["services"]["eks_control_plane"].update(value=-1),
            r"services\.eks_control_plane = -1 is not a number >= 0",
        ),
    ],
)
def test_an_unsourced_or_malformed_figure_is_refused_by_name(
    tmp_path: Path, change: Any, message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message):
        load_prices(_edit(tmp_path, change))


def test_an_unknown_instance_type_names_the_known_ones(prices: Path) -> None:
    book = load_prices(prices)
    with pytest.raises(InvalidInputError, match=r"'c9\.huge' is not in.*big\.test, n\.test") as exc:
        book.instance("ec2", "c9.huge")
    assert exc.value.field == "instance_type"
