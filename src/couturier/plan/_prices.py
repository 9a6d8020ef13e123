"""The price file: every figure with its source and the day it was read, or null with a note.

The file (``deploy/prices/aws-us-east-1.yaml``) has a ``sources`` table, each entry an address,
the day its stored copy was read and any date the page shows; every figure names one of them.
A figure without a value carries ``source: null`` and a note saying why: the plan then marks
that line unpriced, or refuses when the line is one it cannot do without.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from couturier.errors import InvalidInputError

__all__ = ["PRICES", "Figure", "InstanceType", "PriceBook", "Source", "load_prices"]

PRICES = Path(__file__).resolve().parents[3] / "deploy" / "prices" / "aws-us-east-1.yaml"
_FIX = "fix the price file (docs/plan.md says what each entry holds) or pass --prices FILE"


@dataclass(frozen=True)
class Source:
    """Where figures come from: an address, the day it was read, any date the page shows."""

    key: str
    url: str
    read: str
    page_date: str | None = None


@dataclass(frozen=True)
class Figure:
    """One number of the price file, with its source; ``value`` is None when unpriced."""

    name: str  # its place in the file, e.g. "ec2.c6i.xlarge.on_demand"
    value: float | None
    unit: str
    source: Source | None
    note: str = ""


@dataclass(frozen=True)
class InstanceType:
    name: str
    vcpus: Figure
    memory_gib: Figure
    on_demand: Figure
    spot: Figure | None = None


@dataclass(frozen=True)
class PriceBook:
    """A loaded price file. ``instance("ec2", name)`` refuses a type it does not list."""

    path: Path
    region: str
    currency: str
    hours_per_month: Figure
    ec2: dict[str, InstanceType]
    sagemaker: dict[str, InstanceType]
    services: dict[str, Figure]
    sources: dict[str, Source] = field(default_factory=dict)

    def figures(self) -> Iterator[Figure]:
        yield self.hours_per_month
        for table in (self.ec2, self.sagemaker):
            for t in table.values():
                yield from (t.vcpus, t.memory_gib, t.on_demand)
                if t.spot is not None:
                    yield t.spot
        yield from self.services.values()

    def instance(self, kind: str, name: str) -> InstanceType:
        table = self.ec2 if kind == "ec2" else self.sagemaker
        if name not in table:
            option = "--instance-type" if kind == "ec2" else "--sagemaker-instance-type"
            raise InvalidInputError(
                f"{kind} instance type {name!r} is not in the price file {self.path}; "
                f"it lists {', '.join(sorted(table))}; pass one of those to {option}, or add "
                "the type with its prices and their sources",
                field=option.removeprefix("--").replace("-", "_"),
            )
        return table[name]

    def service(self, key: str) -> Figure:
        if key not in self.services:
            raise InvalidInputError(
                f"the price file {self.path} has no services.{key}; {_FIX}", field="prices"
            )
        return self.services[key]


def _bad(path: Path, where: str, rule: str) -> InvalidInputError:
    return InvalidInputError(f"price file {path}: {where} {rule}; {_FIX}", field="prices")


def _source(path: Path, key: str, raw: Any) -> Source:
    if not isinstance(raw, dict):
        raise _bad(path, f"sources.{key}", "is not a mapping of url, read and page_date")
    url, read = raw.get("url"), raw.get("read")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise _bad(path, f"sources.{key}.url = {url!r}", "is not an http(s) address")
    if not isinstance(read, str) or not read.strip():
        raise _bad(path, f"sources.{key}.read", "is missing: say the day the page was read")
    page_date = raw.get("page_date")
    return Source(key, url, read, None if page_date is None else str(page_date))


def _figure(path: Path, name: str, raw: Any, sources: dict[str, Source]) -> Figure:
    if not isinstance(raw, dict) or "value" not in raw or "source" not in raw:
        raise _bad(path, name, "is not a figure: {value, unit, source, note}")
    value, key, note = raw["value"], raw["source"], str(raw.get("note") or "").strip()
    unit = str(raw.get("unit") or "")
    if value is None:
        if key is not None or not note:
            raise _bad(path, name, "has no value: it needs source: null and a note saying why")
        return Figure(name, None, unit, None, note)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise _bad(path, f"{name} = {value!r}", "is not a number >= 0")
    if key not in sources:
        known = ", ".join(sorted(sources)) or "none"
        raise _bad(
            path, f"{name} = {value} cites source {key!r}", f"which is not in sources ({known})"
        )
    return Figure(name, float(value), unit, sources[key], note)


def _instances(
    path: Path, kind: str, raw: Any, sources: dict[str, Source]
) -> dict[str, InstanceType]:
    if not isinstance(raw, dict):
        raise _bad(path, kind, "is not a mapping of instance types")
    out: dict[str, InstanceType] = {}
    for name, spec in raw.items():
        if not isinstance(spec, dict):
            raise _bad(path, f"{kind}.{name}", "is not a mapping of figures")

        def fig(part: str, spec: dict[str, Any] = spec, name: str = name) -> Figure:
            return _figure(path, f"{kind}.{name}.{part}", spec.get(part), sources)

        spot = fig("spot") if "spot" in spec else None
        out[str(name)] = InstanceType(
            str(name), fig("vcpus"), fig("memory_gib"), fig("on_demand"), spot
        )
    return out


def load_prices(path: Path = PRICES) -> PriceBook:
    """Read and check a price file; any figure without a source is an error, not a guess.

    >>> book = load_prices()
    >>> book.instance("ec2", "c6i.xlarge").on_demand.value
    0.17
    """
    if not path.is_file():
        raise InvalidInputError(
            f"price file {path} does not exist; the plan prices only from a dated, sourced "
            "file; pass --prices FILE, or restore deploy/prices/aws-us-east-1.yaml from git",
            field="prices",
        )
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0]
        raise _bad(path, "the YAML", f"does not parse ({first})") from None
    if not isinstance(raw, dict):
        raise _bad(path, "the top level", "is not a mapping")
    raw_sources = raw.get("sources") or {}
    if not isinstance(raw_sources, dict):
        raise _bad(path, "sources", "is not a mapping")
    sources = {str(k): _source(path, str(k), v) for k, v in raw_sources.items()}
    services = raw.get("services")
    if not isinstance(services, dict):
        raise _bad(path, "services", "is not a mapping of figures")
    return PriceBook(
        path=path,
        region=str(raw.get("region", "")),
        currency=str(raw.get("currency", "")),
        hours_per_month=_figure(path, "hours_per_month", raw.get("hours_per_month"), sources),
        ec2=_instances(path, "ec2", raw.get("ec2"), sources),
        sagemaker=_instances(path, "sagemaker", raw.get("sagemaker"), sources),
        services={str(k): _figure(path, f"services.{k}", v, sources) for k, v in services.items()},
        sources=sources,
    )
