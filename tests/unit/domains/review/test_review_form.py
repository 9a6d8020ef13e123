"""The verdict form's rules: each broken one named, nothing half-accepted."""

from __future__ import annotations

import pytest

from couturier.domains.authentication.review import parse_verdict
from couturier.errors import InvalidInputError


def test_a_verdict_with_a_report_in_the_experts_schema() -> None:
    form = parse_verdict(
        {
            "verdict": "counterfeit",
            "point.stitch_density": "fail",
            "measure.stitch_density": "9",
            "point.monogram_spacing": "pass",
            "measure.monogram_spacing": "21,37",  # a decimal comma is read
            "point.hardware": "fail",
            "point.logo_typeface": "",  # not checked: not in the report
            "note": "  loose stitching  ",
            "csrf": "x",
            "lease": "y",
        }
    )
    assert form.verdict == "counterfeit"
    assert form.note == "loose stitching"
    assert form.report == [
        {"control_point": "stitch_density", "result": "fail", "measurement": 9.0},
        {"control_point": "monogram_spacing", "result": "pass", "measurement": 21.4},
        {"control_point": "hardware", "result": "fail", "measurement": None},
    ]


@pytest.mark.parametrize(
    ("form", "field", "words"),
    [
        ({}, "verdict", "choose authentic"),
        ({"verdict": "fake"}, "verdict", "choose authentic"),
        ({"verdict": "authentic", "point.zipper": "pass"}, "point.zipper", "unknown control point"),
        ({"verdict": "authentic", "colour": "red"}, "colour", "unknown control point"),
        ({"verdict": "authentic", "point.hardware": "maybe"}, "point.hardware", "not one of"),
        (
            {"verdict": "authentic", "point.hardware": "pass", "measure.hardware": "3"},
            "measure.hardware",
            "pass/fail only",
        ),
        (
            {"verdict": "authentic", "point.stitch_density": "pass", "measure.stitch_density": "x"},
            "measure.stitch_density",
            "not a number",
        ),
        (
            {
                "verdict": "authentic",
                "point.stitch_density": "pass",
                "measure.stitch_density": "99",
            },
            "measure.stitch_density",
            "outside its physical range",
        ),
        (
            {"verdict": "authentic", "measure.stitch_density": "9"},
            "point.stitch_density",
            "no result",
        ),
        ({"verdict": "authentic", "note": "x" * 2001}, "note", "at most 2000"),
    ],
)
def test_each_broken_rule_is_named(form: dict[str, str], field: str, words: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_verdict(form)
    assert caught.value.context["field"] == field
    assert words in caught.value.message
