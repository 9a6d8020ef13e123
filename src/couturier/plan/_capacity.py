"""Capacity per vCPU at a p99 target, from the committed benchmark results.

Each workload is a route the benchmarks loaded, with the load points they recorded: answers per
second and the p99 under that load, on a machine of known cores. The capacity at a target p99
is the highest measured load whose p99 meets it, divided by the machine's cores; nothing is
interpolated between loads or extrapolated past the highest one.

``/v1/authenticate`` scales with photos: the benchmark's request had a known number of them,
and the answer's own stage times split a request's work into the part that grows with photos
(decoding them, the image model) and the rest. At ``K`` photos a request costs
``f = (1 - s) + s * K / K0`` of the benchmark's, where ``s`` is that photo share and ``K0`` the
benchmark's photos; throughput divides by ``f`` and the p99 multiplies by it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from couturier.errors import InvalidInputError, InvalidParameterError

__all__ = [
    "RESULTS",
    "WORKLOADS",
    "Capacity",
    "LoadPoint",
    "PhotoSplit",
    "Workload",
    "capacity",
    "load_workload",
]

RESULTS = Path(__file__).resolve().parents[3] / "benchmarks" / "results"
# the answer's latency_ms stages that grow with the photos: decoding them and the image model
PER_PHOTO_STAGES = ("decode", "image_model")
_ALL_STAGES = ("decode", "features", "image_model", "retrieval_fusion")


@dataclass(frozen=True)
class LoadPoint:
    """One measured load: ``rps`` answers per second with ``p99_ms``, on ``cpus`` cores."""

    source: str  # "serving.json authenticate.half_load"
    setup: str  # how the load was offered
    rps: float
    p99_ms: float
    cpus: int
    photos: int | None = None  # photos per request, where the route takes photos

    @property
    def rps_per_vcpu(self) -> float:
        return self.rps / self.cpus


@dataclass(frozen=True)
class PhotoSplit:
    """The benchmark's photos per request and the share of a request's work they drive."""

    photos: int
    share: float
    source: str


@dataclass(frozen=True)
class Workload:
    name: str
    route: str
    points: tuple[LoadPoint, ...]
    split: PhotoSplit | None
    provenance: tuple[str, ...]  # one line per results file read


@dataclass(frozen=True)
class _Spec:
    file: str
    keys: tuple[str, ...]
    setup: str


WORKLOADS: dict[str, tuple[str, tuple[_Spec, ...]]] = {
    "authenticate": (
        "POST /v1/authenticate: the whole graph with its photos",
        (
            _Spec("serving.json", ("authenticate", "half_load"), "wrk, 1 connection, paced"),
            _Spec(
                "serving.json",
                ("authenticate", "half_load_bunched"),
                "wrk, 4 connections, paced",
            ),
            _Spec("production.json", ("in_process",), "8 clients, closed loop"),
            _Spec(
                "production.json",
                ("remote_tier",),
                "8 clients, image model in its own process",
            ),
        ),
    ),
    "tabular": (
        "POST /v2/models/{name}/infer: the tabular ONNX model (OIP)",
        (
            _Spec("serving.json", ("tabular", "couturier"), "wrk, 32 connections"),
            _Spec("serving.json", ("swaps", "load"), "wrk, 32 connections, 10 swaps"),
        ),
    ),
}


def _read(results: Path, name: str) -> dict[str, Any] | None:
    path = results / name
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InvalidInputError(
            f"benchmark results {path} do not parse as JSON ({exc.msg}, line {exc.lineno}); "
            "rewrite them with the benchmark that owns them (benchmarks/results/README.md)",
            field="results",
        ) from None
    return data if isinstance(data, dict) else None


def _dig(data: dict[str, Any], keys: tuple[str, ...]) -> Any:
    node: Any = data
    for key in keys:
        node = node.get(key) if isinstance(node, dict) else None
    return node


def _cpus(data: dict[str, Any]) -> int | None:
    cpus = _dig(data, ("provenance", "machine", "cpus")) or data.get("cpus")
    return int(cpus) if isinstance(cpus, int | float) and cpus > 0 else None


def _provenance(name: str, data: dict[str, Any]) -> str:
    p = data.get("provenance") or {}
    commit = str(p.get("commit") or "?")[:7] + (" (work tree changed)" if p.get("dirty") else "")
    return f"{name}: commit {commit}, {p.get('date', 'no date')}, {_cpus(data)} CPUs"


def _split(serving: dict[str, Any] | None) -> PhotoSplit | None:
    """Photos per request and the photo share, from serving.json's authenticate stages."""
    auth = (serving or {}).get("authenticate") or {}
    stages, photos = auth.get("stages_p50_ms") or {}, auth.get("photos")
    if not isinstance(photos, int) or photos < 1 or not all(s in stages for s in _ALL_STAGES):
        return None
    total = sum(float(stages[s]) for s in _ALL_STAGES)
    share = sum(float(stages[s]) for s in PER_PHOTO_STAGES) / total
    return PhotoSplit(
        photos,
        share,
        "serving.json authenticate.stages_p50_ms: (decode + image_model) / "
        "(decode + features + image_model + retrieval_fusion)",
    )


def load_workload(name: str, results: Path = RESULTS) -> Workload:
    """The load points the benchmark results record for one workload (``WORKLOADS``)."""
    if name not in WORKLOADS:
        raise InvalidParameterError(
            f"workload {name!r} is unknown; known: {', '.join(WORKLOADS)}; pass one of them",
            field="workload",
        )
    route, specs = WORKLOADS[name]
    files = {s.file: _read(results, s.file) for s in specs}
    split = _split(files.get("serving.json")) if name == "authenticate" else None
    points = []
    for spec in specs:
        data = files[spec.file]
        got = None if data is None else _dig(data, spec.keys)
        cpus = None if data is None else _cpus(data)
        if not isinstance(got, dict) or cpus is None:
            continue
        rps, p99 = got.get("rps"), got.get("p99_ms")
        if not isinstance(rps, int | float) or not isinstance(p99, int | float) or rps <= 0:
            continue
        # production.json does not record its photos: its request is the same demo listing's
        photos = got.get("photos", split.photos if split else None)
        label = f"{spec.file} {'.'.join(spec.keys)}"
        points.append(LoadPoint(label, spec.setup, float(rps), float(p99), cpus, photos))
    if not points:
        wanted = ", ".join(f"{s.file} {'.'.join(s.keys)}" for s in specs)
        raise InvalidInputError(
            f"no load point for workload {name!r} in {results} (looked for {wanted}); the plan "
            "sizes only from measured loads; run the benchmarks (make bench) or pass --results",
            field="results",
        )
    provenance = tuple(_provenance(f, d) for f, d in files.items() if d is not None)
    return Workload(name, route, tuple(points), split, provenance)


@dataclass(frozen=True)
class Capacity:
    """What one vCPU serves at the target p99, and the measured load it comes from."""

    workload: Workload
    point: LoadPoint
    photos: int | None  # photos per listing planned for
    factor: float  # a request's work relative to the benchmark's
    p99_target_ms: float

    @property
    def rps_per_vcpu(self) -> float:
        return self.point.rps_per_vcpu / self.factor

    @property
    def p99_ms(self) -> float:
        """The chosen load's p99, scaled to the planned photos."""
        return self.point.p99_ms * self.factor


def photo_factor(split: PhotoSplit | None, photos: int | None) -> float:
    """A request's work at ``photos`` relative to the benchmark's: (1 - s) + s * K / K0."""
    if photos is None or split is None:
        return 1.0
    return (1 - split.share) + split.share * photos / split.photos


def _factor(split: PhotoSplit | None, photos: int | None, point: LoadPoint) -> float:
    """The planned request's work relative to the one this load point measured."""
    return photo_factor(split, photos) / photo_factor(split, point.photos)


def _check(workload: Workload, p99_ms: float, photos: int | None) -> None:
    if not p99_ms > 0:
        raise InvalidParameterError(
            f"p99 target {p99_ms:g} ms is not positive; the rule is --p99-ms > 0; pass the "
            "latency the 99th percentile must stay under, e.g. --p99-ms 100",
            field="p99_ms",
        )
    if photos is not None and workload.split is None:
        raise InvalidParameterError(
            f"--photos-per-listing {photos} does not apply to workload {workload.name!r}, whose "
            "requests carry no photos (or whose results record no photo split); drop the option",
            field="photos_per_listing",
        )
    if photos is not None and photos < 1:
        raise InvalidParameterError(
            f"photos per listing {photos} is below 1; the route needs at least one photo; "
            "pass --photos-per-listing 1 or more",
            field="photos_per_listing",
        )


def capacity(workload: Workload, p99_ms: float, photos: int | None = None) -> Capacity:
    """The highest measured load whose (photo-scaled) p99 is at most ``p99_ms``.

    Refuses a target below every measured p99, naming the lowest: nothing measured says what
    the route does there.
    """
    _check(workload, p99_ms, photos)
    scaled = [(p, _factor(workload.split, photos, p)) for p in workload.points]
    meeting = [(p, f) for p, f in scaled if p.p99_ms * f <= p99_ms]
    if not meeting:
        low, f = min(scaled, key=lambda pf: pf[0].p99_ms * pf[1])
        lowest = low.p99_ms * f
        at = "" if photos is None else f" with {photos} photos per listing"
        raise InvalidParameterError(
            f"p99 target {p99_ms:g} ms is below every measured p99 of {workload.route}{at}: "
            f"the lowest is {lowest:.2f} ms ({low.source}, {low.rps:g} req/s on "
            f"{low.cpus} vCPUs); the plan sizes only from a load whose measured p99 meets the "
            f"target; raise --p99-ms to at least {math.ceil(lowest * 10) / 10:g}, or measure "
            "a lighter load first",
            field="p99_ms",
        )
    best, f = max(meeting, key=lambda pf: pf[0].rps_per_vcpu / pf[1])
    return Capacity(workload, best, photos, f, p99_ms)
