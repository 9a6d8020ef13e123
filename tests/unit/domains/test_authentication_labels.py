"""The experts' reports as labels: which rows are refused and why, and what each photo learns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from couturier.domains.authentication import image_model, labels
from couturier.marketplace import CONTROL_POINTS

VERDICTS = pd.DataFrame({"verdict_id": [1, 2], "listing_id": [10, 20]})


def _report(**changes: object) -> dict[str, object]:
    row = {
        "check_id": 8,
        "verdict_id": 1,
        "listing_id": 10,
        "control_point": "stitch_density",
        "result": "fail",
        "measurement": 12.0,
    }
    return {**row, **changes}


@pytest.mark.parametrize(
    ("changes", "rule"),
    [
        ({"control_point": "zip_pull"}, "control point 'zip_pull' is unknown; accepted: stitch"),
        ({"result": "maybe"}, "result 'maybe' for stitch_density is not one of pass, fail"),
        ({"measurement": 400.0}, "outside its physical range [3.0, 24.0] stitches/inch"),
        ({"measurement": -1.0}, "outside its physical range"),
        (
            {"control_point": "canvas_colour", "measurement": 3.0},
            "canvas_colour is pass/fail only; it takes no measurement; leave its measurement",
        ),
        ({"listing_id": 99, "verdict_id": 9}, "listing_id 99 does not exist"),
        ({"verdict_id": 2}, "verdict_id 2 is not a verdict on listing_id 10"),
    ],
)
def test_a_bad_report_row_is_refused_naming_the_row_and_the_rule(
    changes: dict[str, object], rule: str
) -> None:
    good = _report(check_id=9, control_point="logo_typeface", result="pass", measurement=None)
    batch = pd.DataFrame([good, _report(**changes)])
    kept, rejected = labels.check_reports(batch, VERDICTS, [10, 20])
    assert kept["check_id"].tolist() == [9]  # the rest of the batch is kept
    assert len(rejected) == 1
    assert rejected[0].row == 1 and rejected[0].check_id == 8
    assert rule in rejected[0].message
    assert rejected[0].message.startswith("control_points row 1 (check_id 8) refused: ")


def test_a_point_recorded_twice_is_refused_in_both_copies() -> None:
    batch = pd.DataFrame([_report(), _report(check_id=12, result="pass")])
    kept, rejected = labels.check_reports(batch, VERDICTS, [10, 20])
    assert kept.empty  # which copy is right cannot be told
    assert [r.check_id for r in rejected] == [8, 12]
    assert "recorded more than once in verdict 1's report" in rejected[0].message


def test_an_invalid_copy_of_a_point_does_not_sink_the_valid_one() -> None:
    batch = pd.DataFrame([_report(measurement=400.0), _report(check_id=12)])
    kept, rejected = labels.check_reports(batch, VERDICTS, [10, 20])
    assert kept["check_id"].tolist() == [12]
    assert "outside its physical range" in rejected[0].message


def test_a_measurement_that_is_not_a_number_is_refused() -> None:
    kept, rejected = labels.check_reports(
        pd.DataFrame([_report(measurement="twelve")]), VERDICTS, [10]
    )
    assert kept.empty
    assert "measurement 'twelve' for stitch_density is not a number" in rejected[0].message


def test_measurements_at_the_edges_of_the_range_and_missing_ones_are_kept() -> None:
    batch = pd.DataFrame(
        [
            _report(measurement=3.0),
            _report(check_id=9, control_point="monogram_angle", measurement=-90.0),
            _report(check_id=10, control_point="monogram_spacing", measurement=None),
        ]
    )
    kept, rejected = labels.check_reports(batch, VERDICTS, [10])
    assert rejected == [] and len(kept) == 3


def _frame() -> pd.DataFrame:
    """Three judged listings of house 0 (two authentic with reports, one counterfeit) and
    one of house 1 without a report."""
    rows = []
    for listing_id, brand, verdict, spi, fail in [
        (1, 0, "authentic", 10.0, "pass"),
        (2, 0, "authentic", 12.0, "pass"),
        (3, 0, "counterfeit", 16.0, "fail"),
        (4, 1, "authentic", np.nan, None),
    ]:
        row = {"listing_id": listing_id, "brand_id": brand, "verdict": verdict}
        for p in CONTROL_POINTS:
            row[labels.result_column(p.name)] = None
            if p.measurable:
                row[labels.value_column(p.name)] = np.nan
        row[labels.result_column("stitch_density")] = fail
        row[labels.value_column("stitch_density")] = spi
        if listing_id == 3:
            row[labels.result_column("monogram_spacing")] = "fail"
        rows.append(row)
    return pd.DataFrame(rows)


def test_a_photo_learns_only_the_recorded_points_its_view_shows() -> None:
    frame = _frame()
    photos = pd.DataFrame(
        {"listing_id": [3, 3, 3, 4], "view": ["front", "label", "hardware", "label"]}
    )
    scale = labels.MeasureScale(
        {(0, "stitch_density"): 11.0, (1, "stitch_density"): 11.0},
        {(0, "stitch_density"): 2.0, (1, "stitch_density"): 2.0},
    )
    t = labels.photo_targets(frame, photos, frame["verdict"].notna(), scale)
    k = {p: i for i, p in enumerate(image_model.POINTS)}
    m = {p: i for i, p in enumerate(image_model.MEASURED)}
    front, label, hardware, other = range(4)
    # the front photo shows the monogram (failed), not the stitching (failed too)
    assert t.fail[front, k["monogram_spacing"]] == 1.0
    assert np.isnan(t.fail[front, k["stitch_density"]])
    # the label and hardware photos show the stitching: failed, 16 spi = +2.5 house units
    assert t.fail[label, k["stitch_density"]] == t.fail[hardware, k["stitch_density"]] == 1.0
    assert t.measure[label, m["stitch_density"]] == pytest.approx(2.5)
    assert np.isnan(t.measure[front, m["stitch_density"]])
    # unrecorded points and a listing without a report: nothing to learn but the verdict
    assert np.isnan(t.fail[label, k["logo_typeface"]])
    assert np.isnan(t.fail[other]).all() and np.isnan(t.measure[other]).all()
    assert t.reported == 3


def test_only_usable_listings_give_targets() -> None:
    frame = _frame()
    photos = pd.DataFrame({"listing_id": [3], "view": ["label"]})
    scale = labels.MeasureScale.fit(frame)
    t = labels.photo_targets(frame, photos, frame["listing_id"] != 3, scale)
    assert t.reported == 0  # listing 3's verdict had not arrived by the cutoff


def test_the_scale_is_each_houses_authentic_reports_or_everyones() -> None:
    frame = pd.concat([_frame()] * 4, ignore_index=True)  # 8 authentic readings of house 0
    scale = labels.MeasureScale.fit(frame)
    assert scale.centre[(0, "stitch_density")] == pytest.approx(11.0)  # authentic only
    assert scale.spread[(0, "stitch_density")] == pytest.approx(1.4826)
    # house 1 has no measurement: it borrows everyone's authentic scale
    assert scale.centre[(1, "stitch_density")] == pytest.approx(11.0)
    z = scale.standardize([0, 0], "stitch_density", [11.0, 14.0])
    assert z == pytest.approx([0.0, 3.0 / 1.4826])


def test_whole_stitch_counts_keep_a_spread_of_one_stitch() -> None:
    """Most of a house's authentic readings are one whole number: a MAD of 0 must not make the
    others infinitely far (the spread is at least the precision a value is written to)."""
    frame = _frame()
    frame = pd.concat([frame] * 5, ignore_index=True)
    frame.loc[frame["verdict"] == "authentic", labels.value_column("stitch_density")] = 10.0
    frame.loc[0, labels.value_column("stitch_density")] = 11.0
    scale = labels.MeasureScale.fit(frame)
    assert scale.spread[(0, "stitch_density")] == 1.0
    assert scale.standardize([0], "stitch_density", [13.0]) == pytest.approx([3.0])


def test_a_listing_judged_twice_counts_once_in_the_verdict_features() -> None:
    from couturier.domains.authentication.features import first_verdicts

    class Source:
        def read(self, table: str, columns: list[str] | None = None) -> pd.DataFrame:
            return pd.DataFrame(
                {
                    "listing_id": [1, 2, 1, 1],
                    "verdict": ["authentic", "counterfeit", "counterfeit", "counterfeit"],
                    "created_at": pd.to_datetime(
                        [
                            "2026-01-02 00:00",
                            "2026-01-01 00:00",
                            "2026-01-03 00:00",
                            "2026-01-01 12:00",
                        ],
                        utc=True,
                    ),
                }
            )[list(columns or [])]

    first = first_verdicts(Source())
    assert first[["listing_id", "verdict"]].values.tolist() == [
        [2, "counterfeit"],
        [1, "counterfeit"],  # the first to arrive: 2026-01-01 12:00
    ]
