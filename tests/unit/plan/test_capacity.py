"""Capacity per vCPU at a p99 target from hand-written results (``_tables``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from couturier.errors import InvalidInputError, InvalidParameterError
from couturier.plan import capacity, load_workload, photo_factor


def test_the_highest_load_whose_p99_meets_the_target_per_vcpu(results: Path) -> None:
    w = load_workload("authenticate", results)
    # p99 <= 30 ms: 100 req/s on 2 CPUs (10 ms) and 90 (20 ms) qualify; 50 per vCPU wins
    c = capacity(w, 30)
    assert c.point.source == "serving.json authenticate.half_load"
    assert c.rps_per_vcpu == pytest.approx(50)
    # p99 <= 55 ms adds 400 req/s on 4 CPUs (50 ms): 100 per vCPU
    c = capacity(w, 55)
    assert c.point.source == "production.json in_process"
    assert c.rps_per_vcpu == pytest.approx(100)
    assert c.p99_ms == pytest.approx(50)


def test_a_target_below_every_measured_p99_is_refused_naming_the_lowest(results: Path) -> None:
    w = load_workload("authenticate", results)
    with pytest.raises(InvalidParameterError) as exc:
        capacity(w, 5)
    message = exc.value.message
    assert "below every measured p99" in message
    assert "10.00 ms (serving.json authenticate.half_load, 100 req/s on 2 vCPUs)" in message
    assert "raise --p99-ms to at least 10," in message
    assert exc.value.field == "p99_ms"


def test_photos_scale_the_image_share_of_the_work(results: Path) -> None:
    w = load_workload("authenticate", results)
    assert w.split is not None
    assert w.split.photos == 2
    assert w.split.share == pytest.approx((1 + 3) / (1 + 2 + 3 + 2))
    assert photo_factor(w.split, 4) == pytest.approx(0.5 + 0.5 * 4 / 2)
    # 4 photos: every p99 x 1.5; at 55 ms the 50 ms load (75 ms) drops out, 10 ms -> 15 ms stays
    c = capacity(w, 55, photos=4)
    assert c.point.source == "serving.json authenticate.half_load"
    assert c.rps_per_vcpu == pytest.approx(50 / 1.5)
    assert c.p99_ms == pytest.approx(15)
    # 1 photo: x 0.75; the 50 ms load now meets 40 ms (37.5 ms) at 100 / 0.75 per vCPU
    c = capacity(w, 40, photos=1)
    assert c.point.source == "production.json in_process"
    assert c.rps_per_vcpu == pytest.approx(100 / 0.75)
    with pytest.raises(InvalidParameterError, match=r"lowest is 15\.00 ms.*at least 15,"):
        capacity(w, 12, photos=4)


def test_a_load_point_that_records_its_photos_is_scaled_from_them(results: Path) -> None:
    data = json.loads((results / "production.json").read_text())
    data["in_process"]["photos"] = 4  # measured at 4 photos: at 2 it costs 1 / 1.5 as much
    (results / "production.json").write_text(json.dumps(data))
    c = capacity(load_workload("authenticate", results), 55)
    assert c.point.source == "production.json in_process"
    assert c.p99_ms == pytest.approx(50 / 1.5)
    assert c.rps_per_vcpu == pytest.approx(100 * 1.5)


def test_photos_do_not_apply_to_the_tabular_model(results: Path) -> None:
    w = load_workload("tabular", results)
    assert capacity(w, 11).rps_per_vcpu == pytest.approx(2000)
    with pytest.raises(InvalidParameterError, match="does not apply to workload 'tabular'"):
        capacity(w, 11, photos=3)


def test_a_missing_results_file_drops_its_points(results: Path) -> None:
    (results / "production.json").unlink()
    w = load_workload("authenticate", results)
    assert {p.source.split()[0] for p in w.points} == {"serving.json"}
    assert capacity(w, 1000).rps_per_vcpu == pytest.approx(50)


def test_no_results_at_all_is_refused_with_the_fix(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match=r"no load point.*make bench.*--results"):
        load_workload("authenticate", tmp_path)
    with pytest.raises(InvalidParameterError, match="workload 'pricing' is unknown"):
        load_workload("pricing", tmp_path)
