"""The expert's control-point report: what they checked on the physical item and what they found.

With a verdict (``_generate.py``) comes, for a share of verdicts (``report_share``), a report in
the catalogue's schema (``_control_points.py``). The expert holds the item, so a report can cover
points no photo of the listing shows. Per point checked:

* a *reading*, in sigma units, of the flaw behind the point (``_FLAW_OF``): the true deviation
  plus the expert's bias and noise. Nothing written is the simulator's truth itself;
* the call: ``fail`` when ``|reading|`` exceeds the expert's threshold (for ``serial_code``:
  when the serial breaks the house format), flipped at the expert's misjudge rate;
* for a measurable point, the value the reading stands for, in physical units, at the precision
  an expert writes it to (``_measure``).

Experts visit the points in a random order and check each with their thoroughness until two
fails make the verdict clear, then only now and then (``after_clear``). Every draw comes from the
listing's ``report`` stream, the same draws whatever the branch; an expert's traits come from
their own ``experts`` stream, drawn once.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from couturier.marketplace._catalog import Brand
from couturier.marketplace._control_points import CONTROL_POINTS, ControlPoint
from couturier.marketplace._flaws import FLAWS, NATURAL_SIGMA
from couturier.marketplace._world import stream

__all__ = [
    "MM_PER_PX",
    "N_EXPERTS",
    "SPI_PER_STITCHES_PER_100PX",
    "Check",
    "Expert",
    "experts",
    "nominal",
    "report",
]

#: The experts who judge listings; a verdict names one by ``expert_id``.
N_EXPERTS = 24
#: Physical scales of the house signature (``_catalog.Brand``): the monogram close-up spans
#: about 115 mm of canvas in 96 px, so a 14-22 px cell is 17-26 mm; the stitching close-ups are
#: taken nearer, 100 px for 1.25 inch, so 9-15 stitches per 100 px are 7.2-12 stitches per inch.
MM_PER_PX = 1.2
SPI_PER_STITCHES_PER_100PX = 0.8
#: Two fails make the verdict clear: from then on the expert checks points only now and then.
CLEAR_AFTER_FAILS = 2

#: The flaw each control point looks at (None: the serial, checked against the house format).
_FLAW_OF: dict[str, str | None] = {
    "stitch_density": "stitch",
    "monogram_spacing": "spacing",
    "monogram_angle": "rotation",
    "logo_typeface": "glyph",
    "canvas_colour": "colour",
    "hardware": "hardware",
    "serial_code": None,
}
_FLAW_INDEX = np.array(
    [FLAWS.index(f) if (f := _FLAW_OF[p.name]) is not None else -1 for p in CONTROL_POINTS]
)
_SERIAL = _FLAW_INDEX < 0
_N = len(CONTROL_POINTS)


@dataclass(frozen=True)
class Expert:
    """One expert's fixed habits. Readings and thresholds are in sigma units of the flaw."""

    expert_id: int
    noise: float  # sd of a reading: 0.2-0.5
    bias: tuple[float, ...]  # per flaw (FLAWS order): -0.3..0.3
    threshold: float  # |reading| above it fails the point: 2.0-2.6
    misjudge: float  # the call is flipped this often: 0.01-0.04
    thoroughness: float  # P(check a point) before the verdict is clear: 0.85-0.95
    after_clear: float  # P(check a point) once it is: 0.2-0.4
    angle_step: float  # degrees the angle is written to: 0.1, or 0.5 for a third of experts


@dataclass(frozen=True)
class Check:
    """One checked point of a report."""

    index: int  # the point's position in CONTROL_POINTS
    control_point: str
    result: str  # "pass" or "fail"
    measurement: float | None


@lru_cache(maxsize=8)
def experts(seed: int) -> tuple[Expert, ...]:
    """The ``N_EXPERTS`` experts of the world ``seed``, each from a stream of their own."""
    out = []
    for e in range(N_EXPERTS):
        rng = stream(seed, "experts", e)
        out.append(
            Expert(
                expert_id=e,
                noise=float(rng.uniform(0.2, 0.5)),
                bias=tuple(float(b) for b in rng.uniform(-0.3, 0.3, len(FLAWS))),
                threshold=float(rng.uniform(2.0, 2.6)),
                misjudge=float(rng.uniform(0.01, 0.04)),
                thoroughness=float(rng.uniform(0.85, 0.95)),
                after_clear=float(rng.uniform(0.2, 0.4)),
                angle_step=0.5 if rng.random() < 1 / 3 else 0.1,
            )
        )
    return tuple(out)


def nominal(point: str, brand: Brand) -> float | None:
    """A measurable point's value on an item exactly at the house signature, physical units."""
    if point == "monogram_spacing":
        return brand.spacing_px * MM_PER_PX
    if point == "monogram_angle":
        return brand.rotation_deg
    if point == "stitch_density":
        return brand.stitches_per_100px * SPI_PER_STITCHES_PER_100PX
    return None


def report(
    rng: np.random.Generator,
    expert: Expert,
    brand: Brand,
    z: np.ndarray,
    malformed: bool,
    share: float,
) -> list[Check]:
    """The points ``expert`` checked on an item with flaws ``z`` (sigma units), in catalogue
    order; empty when this verdict comes without a report (``share`` of verdicts have one)."""
    u_share = rng.random()
    u_order, u_check, u_misjudge = rng.random((3, _N))
    eps = rng.standard_normal(_N)
    if u_share >= share:
        return []
    # the serial (flaw index -1) has no reading: masked out, its call is the format's
    bias = np.asarray(expert.bias)[_FLAW_INDEX]
    reading = np.where(_SERIAL, 0.0, z[_FLAW_INDEX] + bias + expert.noise * eps)
    fail = np.where(_SERIAL, malformed, np.abs(reading) > expert.threshold)
    fail = fail != (u_misjudge < expert.misjudge)
    checked = _checked(np.argsort(u_order, kind="stable"), u_check, fail, expert)
    return [
        Check(
            index=int(k),
            control_point=CONTROL_POINTS[k].name,
            result="fail" if fail[k] else "pass",
            measurement=_measure(CONTROL_POINTS[k], brand, float(reading[k]), expert),
        )
        for k in sorted(checked)
    ]


def _checked(order: np.ndarray, u_check: np.ndarray, fail: np.ndarray, expert: Expert) -> list[int]:
    """The points checked, visiting them in ``order``: each with the expert's thoroughness until
    the verdict is clear, then with ``after_clear``. At least the first one."""
    checked: list[int] = []
    fails = 0
    for k in order:
        p = expert.thoroughness if fails < CLEAR_AFTER_FAILS else expert.after_clear
        if u_check[k] < p:
            checked.append(int(k))
            fails += bool(fail[k])
    return checked or [int(order[0])]


def _measure(point: ControlPoint, brand: Brand, reading: float, expert: Expert) -> float | None:
    """What the expert writes down for a ``reading`` (sigma units): spacing and stitch density
    move relatively, the angle in degrees; rounded to the point's precision (the angle to the
    expert's step) and kept within its physical range."""
    base = nominal(point.name, brand)
    if base is None or point.low is None or point.high is None:
        return None
    k = FLAWS.index(str(_FLAW_OF[point.name]))
    sigma = float(NATURAL_SIGMA[k])
    value = (
        base + reading * sigma if point.name == "monogram_angle" else base * (1 + reading * sigma)
    )
    step = expert.angle_step if point.name == "monogram_angle" else 10.0**-point.decimals
    value = float(np.clip(value, point.low, point.high))
    return round(round(value / step) * step, point.decimals)
