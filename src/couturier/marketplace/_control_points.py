"""The control points an authentication expert checks, and the schema of their reports.

With each verdict an expert may file a report: for each control point they checked, ``pass`` or
``fail``, and for the measurable ones the value they wrote down. This catalogue is part of the
marketplace's data model: the simulator's experts write these reports, the authentication
domain learns from them, and the review console (``/review``) lets people write them, all in
this schema.

``views`` are the photo views that show the point (what a model can see of it); the expert
inspects the physical item, so a report can cover a point no photo of the listing shows
(``serial_code`` is never photographed).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CONTROL_POINTS", "RESULTS", "ControlPoint", "control_point"]

#: What a checked point is recorded as.
RESULTS: tuple[str, ...] = ("pass", "fail")


@dataclass(frozen=True)
class ControlPoint:
    """One point of the expert's checklist. A measurable point has a unit, the precision an
    expert writes it to (``decimals``) and its physical range ``[low, high]``."""

    name: str
    label: str  # how a person reads it: "stitch density"
    views: tuple[str, ...]  # photo views that show it
    unit: str | None = None  # None: pass/fail only
    decimals: int = 0
    low: float | None = None
    high: float | None = None

    @property
    def measurable(self) -> bool:
        return self.unit is not None

    def check_measurement(self, value: float | None) -> str | None:
        """Why ``value`` cannot be this point's measurement, or None when it can."""
        if value is None:
            return None
        if not self.measurable:
            return f"{self.name} is pass/fail only; it takes no measurement"
        if not (self.low is not None and self.high is not None and self.low <= value <= self.high):
            return (
                f"{self.name} = {value} {self.unit} is outside its physical range "
                f"[{self.low}, {self.high}] {self.unit}"
            )
        return None


CONTROL_POINTS: tuple[ControlPoint, ...] = (
    ControlPoint(
        "stitch_density", "stitch density", ("hardware", "label"), "stitches/inch", 0, 3.0, 24.0
    ),
    ControlPoint("monogram_spacing", "monogram spacing", ("front", "monogram"), "mm", 1, 5.0, 60.0),
    ControlPoint(
        "monogram_angle", "monogram placement", ("front", "monogram"), "degrees", 1, -90.0, 90.0
    ),
    ControlPoint("logo_typeface", "logo and typeface", ("monogram", "label")),
    ControlPoint("canvas_colour", "canvas colour", ("front", "monogram", "label")),
    ControlPoint("hardware", "hardware engraving and colour", ("front", "hardware")),
    ControlPoint("serial_code", "serial or date-code format", ()),
)

_BY_NAME = {p.name: p for p in CONTROL_POINTS}


def control_point(name: str) -> ControlPoint | None:
    """The control point called ``name``, or None when there is none."""
    return _BY_NAME.get(name)
