"""The authentication domain's labels: verdicts and the experts' control-point reports.

An expert's verdict may come with a report: for each control point they checked
(``couturier.marketplace.CONTROL_POINTS``), pass or fail, and a measurement for the measurable
ones. Both reach training through the platform's feature interface as one *label view*,
``authentication_labels`` (one row per verdict, the report pivoted into ``cp_<point>`` and
``cp_<point>_value`` columns), joined point-in-time by ``build_label_set``: a label counts only
from when it arrived (``created_at``), never from when it was decided.

Reports are checked before they count (:func:`check_reports`): a report naming an unknown
control point, a measurement outside its physical range, a result that is neither pass nor
fail, a point recorded twice, or a report for a listing or verdict that does not exist is
refused; the rejection names the row and the rule, and the rest of the batch is kept.

What the image model learns from them, per photo: :func:`photo_targets`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd

from couturier.domains.authentication._image_net import MEASURED, POINTS, VISIBLE
from couturier.domains.authentication.image_model import PointTargets
from couturier.features.types import (
    CREATED_TS,
    EVENT_TS,
    EntitySpec,
    FeatureField,
    FeatureViewSpec,
    SourceData,
)
from couturier.marketplace import CONTROL_POINTS, RESULTS, VIEWS, control_point

__all__ = [
    "LABEL_VIEW",
    "MeasureScale",
    "Rejection",
    "check_reports",
    "label_rows",
    "labels_view",
    "photo_targets",
    "result_column",
    "value_column",
]

log = logging.getLogger(__name__)

LABEL_VIEW = "authentication_labels"
_REPORT_COLUMNS = [
    "check_id",
    "verdict_id",
    "listing_id",
    "control_point",
    "result",
    "measurement",
]
#: A house's measurements are standardized by its own authentic reports when it has this many.
_MIN_HOUSE_MEASUREMENTS = 8
_DECIMALS = {p.name: p.decimals for p in CONTROL_POINTS}


def result_column(point: str) -> str:
    return f"cp_{point}"


def value_column(point: str) -> str:
    return f"cp_{point}_value"


@dataclass(frozen=True)
class Rejection:
    """A report row that was refused: which row, and the rule it broke."""

    row: int
    check_id: int
    rule: str

    @property
    def message(self) -> str:
        return f"control_points row {self.row} (check_id {self.check_id}) refused: {self.rule}"


def check_reports(
    reports: pd.DataFrame, verdicts: pd.DataFrame, listing_ids: Any
) -> tuple[pd.DataFrame, list[Rejection]]:
    """The rows of ``reports`` that may count, and a :class:`Rejection` for each other row.

    ``verdicts`` has ``verdict_id`` and ``listing_id``; ``listing_ids`` are the listings that
    exist. Each row is judged alone: one bad point does not drop the rest of its report. A
    point recorded more than once in a report is refused in every copy (which one is right
    cannot be told), after the other rules, so an invalid copy does not sink a valid one.
    """
    reports = reports.reset_index(drop=True)
    point = reports["control_point"].map(control_point)
    value = pd.to_numeric(reports["measurement"], errors="coerce")
    low = point.map(lambda p: p.low if p is not None and p.measurable else np.nan)
    high = point.map(lambda p: p.high if p is not None and p.measurable else np.nan)
    owner = reports["verdict_id"].map(verdicts.set_index("verdict_id")["listing_id"])
    rules: list[tuple[pd.Series, Callable[[pd.Series], str]]] = [  # the first broken is told
        (point.isna(), _unknown_point),
        (~reports["result"].isin(RESULTS), _unknown_result),
        (value.isna() & reports["measurement"].notna(), _not_a_number),
        (value.notna() & ~((value >= low) & (value <= high)), _out_of_range),
        (~reports["listing_id"].isin(pd.Index(np.asarray(listing_ids))), _no_listing),
        (owner.isna() | (owner != reports["listing_id"]), _no_verdict),
    ]
    bad = np.logical_or.reduce([mask.to_numpy(dtype=bool) for mask, _ in rules])
    repeated = np.zeros(len(reports), dtype=bool)
    repeated[~bad] = reports[~bad].duplicated(["verdict_id", "control_point"], keep=False)
    rules.append((pd.Series(repeated, index=reports.index), _repeated))
    bad = bad | repeated
    rejected = []
    for row in map(int, np.flatnonzero(bad)):
        told = next(say for mask, say in rules if mask.iat[row])
        rejected.append(Rejection(row, _check_id(reports, row), told(reports.iloc[row])))
    return reports[~bad].reset_index(drop=True), rejected


def _check_id(reports: pd.DataFrame, row: int) -> int:
    ids = pd.to_numeric(reports["check_id"], errors="coerce").to_numpy(dtype=float)
    return int(ids[row]) if np.isfinite(ids[row]) else -1


def _unknown_point(row: pd.Series) -> str:
    accepted = ", ".join(p.name for p in CONTROL_POINTS)
    return f"control point {row['control_point']!r} is unknown; accepted: {accepted}"


def _unknown_result(row: pd.Series) -> str:
    return f"result {row['result']!r} for {row['control_point']} is not one of {', '.join(RESULTS)}"


def _not_a_number(row: pd.Series) -> str:
    return f"measurement {row['measurement']!r} for {row['control_point']} is not a number"


def _out_of_range(row: pd.Series) -> str:
    point = control_point(str(row["control_point"]))
    if point is None:  # told first, by _unknown_point: here only for the type's sake
        return _unknown_point(row)
    why = point.check_measurement(float(row["measurement"]))
    if not point.measurable:
        return f"{why}; leave its measurement empty"
    return f"{why}; record the value as measured, in {point.unit}"


def _no_listing(row: pd.Series) -> str:
    return f"listing_id {row['listing_id']} does not exist; a report is about a listed item"


def _no_verdict(row: pd.Series) -> str:
    return (
        f"verdict_id {row['verdict_id']} is not a verdict on listing_id {row['listing_id']}; "
        "a report is filed with its verdict"
    )


def _repeated(row: pd.Series) -> str:
    return (
        f"{row['control_point']} is recorded more than once in verdict {row['verdict_id']}'s "
        "report; a report records each point once"
    )


def label_rows(src: SourceData) -> pd.DataFrame:
    """The label view's rows: each verdict with its expert and its report pivoted to columns.

    A row holds from the verdict's decision (``event_timestamp``) and counts from its arrival
    (``created_timestamp``). A report that arrived after its verdict gives the verdict a second
    row, with the report, created when the report's last row arrived: until then the verdict
    counts alone.
    """
    verdicts = src.read(
        "verdicts",
        ["verdict_id", "listing_id", "expert_id", "verdict", "decided_at", "created_at"],
    )
    reports = src.read("control_points", [*_REPORT_COLUMNS, "created_at"])
    if len(reports.columns) == 0:  # a marketplace from before the reports: verdicts alone
        reports = pd.DataFrame(
            {c: pd.Series(dtype=object) for c in _REPORT_COLUMNS}
            | {"created_at": pd.Series(dtype="datetime64[us, UTC]")}
        )
    listing_ids = src.read("listings", ["listing_id"])["listing_id"]
    kept, rejected = check_reports(reports, verdicts, listing_ids)
    for r in rejected[:20]:
        log.warning(r.message)
    if len(rejected) > 20:
        log.warning("%d more control_points rows refused", len(rejected) - 20)
    alone = verdicts[["verdict_id", "listing_id", "expert_id", "verdict"]].copy()
    for p in CONTROL_POINTS:
        alone[result_column(p.name)] = None
        if p.measurable:
            alone[value_column(p.name)] = np.nan
    alone[EVENT_TS] = verdicts["decided_at"]
    alone[CREATED_TS] = verdicts["created_at"]
    # one row per (verdict, point): check_reports refused the repeats
    results = kept.pivot(index="verdict_id", columns="control_point", values="result")
    values = kept.pivot(index="verdict_id", columns="control_point", values="measurement")
    arrived = kept.groupby("verdict_id")["created_at"].max()
    reported = alone[alone["verdict_id"].isin(results.index)].copy()
    for p in CONTROL_POINTS:
        if p.name in results.columns:
            reported[result_column(p.name)] = reported["verdict_id"].map(results[p.name])
            if p.measurable:
                measured = reported["verdict_id"].map(values[p.name])
                reported[value_column(p.name)] = pd.to_numeric(measured, errors="coerce")
    reported[CREATED_TS] = np.maximum(
        reported[CREATED_TS], reported["verdict_id"].map(arrived).astype(reported[CREATED_TS].dtype)
    )
    # the verdict alone, for the verdicts without a report and those whose report came later
    later = alone["verdict_id"].map(arrived) > alone[CREATED_TS]
    alone = alone[~alone["verdict_id"].isin(results.index) | later.to_numpy()]
    out = pd.concat([alone, reported], ignore_index=True)
    return out.drop(columns=["verdict_id"])


def labels_view(listing: EntitySpec) -> FeatureViewSpec:
    """The label view of ``listing`` (the feature set's root entity)."""
    fields = [
        FeatureField("verdict", "string", description="authentic or counterfeit"),
        FeatureField("expert_id", "int64", description="who judged it"),
    ]
    for p in CONTROL_POINTS:
        fields.append(FeatureField(result_column(p.name), "string", description=p.label))
        if p.measurable:
            fields.append(
                FeatureField(value_column(p.name), "float64", description=f"{p.label}, {p.unit}")
            )
    return FeatureViewSpec(
        name=LABEL_VIEW,
        entity=listing,
        fields=tuple(fields),
        ttl=timedelta(days=3650),
        compute=label_rows,
        description="expert verdicts and their control-point reports, as they arrived",
    )


@dataclass(frozen=True)
class MeasureScale:
    """Each house's normal for each measurable point: median and robust spread of the
    measurements in authentic verdicts' reports (the whole set's where a house has few)."""

    centre: dict[tuple[int, str], float]
    spread: dict[tuple[int, str], float]

    @classmethod
    def fit(cls, frame: pd.DataFrame) -> MeasureScale:
        """From labelled rows of ``frame`` (``brand_id``, ``verdict``, report columns)."""
        authentic = frame[frame["verdict"] == "authentic"]
        centre: dict[tuple[int, str], float] = {}
        spread: dict[tuple[int, str], float] = {}
        for point in MEASURED:
            values = authentic[value_column(point)]
            resolution = 10.0 ** -_DECIMALS[point]
            overall = _robust(values, resolution)
            for brand in frame["brand_id"].unique():
                mine = values[authentic["brand_id"] == brand]
                enough = mine.notna().sum() >= _MIN_HOUSE_MEASUREMENTS
                c, s = _robust(mine, resolution) if enough else overall
                centre[(int(brand), point)], spread[(int(brand), point)] = c, s
        return cls(centre, spread)

    def standardize(self, brand_ids: Any, point: str, values: Any) -> np.ndarray:
        brands = np.asarray(brand_ids, dtype=np.int64)
        c = np.array([self.centre.get((int(b), point), np.nan) for b in brands])
        s = np.array([self.spread.get((int(b), point), np.nan) for b in brands])
        return np.asarray((np.asarray(values, dtype=float) - c) / s)


def _robust(values: pd.Series, resolution: float) -> tuple[float, float]:
    """Median and robust spread (1.4826 x MAD), the spread at least the precision values are
    written to: whole stitches per inch put most of a house's authentic readings on one value,
    a MAD of 0, and a spread of 0 would make every other reading an outlier."""
    v = values.dropna().to_numpy(dtype=float)
    if len(v) == 0:
        return float("nan"), float("nan")
    median = float(np.median(v))
    mad = float(np.median(np.abs(v - median))) * 1.4826
    return median, max(mad, resolution)


def photo_targets(
    frame: pd.DataFrame, photos: pd.DataFrame, usable: pd.Series, scale: MeasureScale
) -> PointTargets:
    """Per photo, its listing's report as targets, kept only where the photo's view shows the
    point and only for listings where ``usable`` (over ``frame``'s rows) holds."""
    rows = frame.loc[usable].set_index("listing_id")
    at = photos["listing_id"].map(pd.Series(np.arange(len(rows)), index=rows.index))
    have = at.notna().to_numpy()
    idx = at.fillna(0).astype(int).to_numpy()
    view = photos["view"].map({v: i for i, v in enumerate(VIEWS)}).to_numpy()
    targets = PointTargets.none(len(photos))
    for k, point in enumerate(POINTS):
        result = rows[result_column(point)].to_numpy(dtype=object)[idx]
        shown = have & VISIBLE[view, k] & pd.notna(result)
        targets.fail[shown, k] = (result[shown] == "fail").astype(np.float32)
    brands = rows["brand_id"].to_numpy()[idx]
    for k, point in enumerate(MEASURED):
        z = scale.standardize(brands, point, rows[value_column(point)].to_numpy(float)[idx])
        shown = have & VISIBLE[view, POINTS.index(point)] & np.isfinite(z)
        targets.measure[shown, k] = z[shown].astype(np.float32)
    return targets
