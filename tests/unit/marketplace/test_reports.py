"""The experts' control-point reports: who writes them, what they hold, and how experts differ.

A report comes with a verdict (``report_share`` of them) and lists, per point the expert checked,
``pass`` or ``fail`` and, for a measurable point, what they wrote down. These tests hold the
simulator to the story ``docs/simulator.md`` tells: counterfeits fail their factory's points,
each expert has their own noise and bias, and experts check fewer points once two fails made
the verdict clear.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import levene, mannwhitneyu

from couturier.errors import InvalidInputError, InvalidParameterError
from couturier.marketplace import (
    CONTROL_POINTS,
    RESULTS,
    VIEWS,
    Marketplace,
    SimulationConfig,
    control_point,
    simulate,
    validate,
)
from couturier.marketplace._flaws import DEFAULT_FACTORIES, FLAWS, NATURAL_SIGMA, VISIBILITY
from couturier.marketplace._reports import _FLAW_OF, Expert, experts, nominal
from couturier.marketplace._world import World

#: a world with many counterfeits and no pixels: fast, and enough reports per factory and expert
PREVALENCE = 0.3


def _world(tmp: Path, name: str, **params: object) -> Marketplace:
    base: dict[str, object] = {"listings": 300, "seed": 3, "render_photos": False}
    return simulate(SimulationConfig.of(**{**base, **params}), tmp / name, workers=1)


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> Marketplace:
    """3,000 listings, 30% counterfeit: about 2,400 reports, 100 per expert."""
    cfg = SimulationConfig.of(
        listings=3000, prevalence=PREVALENCE, render_photos=False, chunk_size=1000
    )
    return simulate(cfg, tmp_path_factory.mktemp("reports") / "run", workers=1)


@pytest.fixture(scope="module")
def checks(reports: Marketplace) -> pd.DataFrame:
    """Every checked point with the truth of its listing and a ``fail`` flag."""
    truth = reports.read("truth", ["listing_id", "is_counterfeit", "factory_id", "flaw_spacing"])
    df = reports.read("control_points").merge(truth, on="listing_id")
    df["fail"] = df["result"] == "fail"
    return df


def _per_report(checks: pd.DataFrame) -> pd.DataFrame:
    return checks.groupby("verdict_id").agg(checked=("fail", "size"), fails=("fail", "sum"))


def test_the_table_follows_its_schema(reports: Marketplace) -> None:
    table = reports.read("control_points")
    validate("control_points", table)
    assert len(table) == reports.counts["control_points"] > 0
    assert set(table["control_point"]) == {p.name for p in CONTROL_POINTS}
    assert set(table["result"]) == set(RESULTS)


@pytest.mark.parametrize(
    ("column", "value", "rule"),
    [
        ("control_point", "vibes", "control_point"),
        ("result", "maybe", "result"),
        ("measurement", 99.0, "measurement_in_range_at_precision"),  # spacing 99 mm
        ("check_id", 10**9, "check_id_of_verdict"),
    ],
)
def test_a_broken_report_is_refused(
    reports: Marketplace, column: str, value: float | str, rule: str
) -> None:
    table = reports.read("control_points")
    row = table.index[table["control_point"] == "monogram_spacing"][0]
    table.loc[row, column] = value
    with pytest.raises(InvalidInputError, match=rule):
        validate("control_points", table)


def test_a_pass_fail_point_takes_no_measurement(reports: Marketplace) -> None:
    table = reports.read("control_points")
    table.loc[table.index[table["control_point"] == "hardware"][0], "measurement"] = 1.0
    with pytest.raises(InvalidInputError, match="measurement_in_range_at_precision"):
        validate("control_points", table)


def test_reports_come_with_verdicts_and_carry_their_times(reports: Marketplace) -> None:
    verdicts = reports.read("verdicts")
    table = reports.read("control_points")
    joined = table.merge(verdicts, on="verdict_id", suffixes=("", "_v"))
    assert len(joined) == len(table)  # every report belongs to a verdict
    for column in ("listing_id", "expert_id", "decided_at", "created_at"):
        assert (joined[column] == joined[f"{column}_v"]).all(), column
    assert (table["check_id"] // 8 == table["verdict_id"]).all()
    # about report_share (0.8) of the verdicts come with one
    share = table["verdict_id"].nunique() / len(verdicts)
    assert abs(share - 0.8) < 4 * np.sqrt(0.8 * 0.2 / len(verdicts))


def test_no_verdict_no_report_and_report_share_zero_writes_none(tmp_path: Path) -> None:
    half = _world(tmp_path, "half", verdict_coverage=0.5)
    judged = set(half.read("verdicts")["verdict_id"])
    assert 0 < half.read("control_points")["listing_id"].nunique() < len(judged)
    assert set(half.read("control_points")["listing_id"]) <= judged
    every = _world(tmp_path, "every", verdict_coverage=0.5, report_share=1.0)
    assert set(every.read("control_points")["verdict_id"]) == judged
    none = _world(tmp_path, "none", verdict_coverage=0.5, report_share=0.0)
    assert none.counts["control_points"] == 0
    assert len(none.read("control_points")) == 0
    for table in ("listings", "truth", "verdicts", "interactions", "sales", "price_changes"):
        assert none.read_arrow(table).equals(half.read_arrow(table)), table


def test_report_share_outside_zero_to_one_is_refused() -> None:
    with pytest.raises(InvalidParameterError, match=r"<= 1\.0") as info:
        SimulationConfig.of(report_share=1.5)
    assert info.value.field == "report_share"


def test_measurements_lie_in_their_range_at_their_precision(checks: pd.DataFrame) -> None:
    for point in CONTROL_POINTS:
        m = checks.loc[checks["control_point"] == point.name, "measurement"]
        if not point.measurable:
            assert m.isna().all(), point.name
            continue
        assert m.notna().all() and len(m) > 0, point.name
        assert all(point.check_measurement(float(v)) is None for v in m), point.name
        scaled = m * 10**point.decimals
        assert np.allclose(scaled, scaled.round()), point.name
    density = checks.loc[checks["control_point"] == "stitch_density", "measurement"]
    assert (density == density.round()).all()  # whole stitches per inch
    # an expert who writes the angle to half a degree writes nothing finer
    halves = {e.expert_id for e in experts(7) if e.angle_step == 0.5}
    assert 0 < len(halves) < 24
    angle = checks[(checks["control_point"] == "monogram_angle")]
    by_halves = angle.loc[angle["expert_id"].isin(halves), "measurement"]
    assert np.allclose(by_halves * 2, (by_halves * 2).round())
    assert not np.allclose(angle["measurement"] * 2, (angle["measurement"] * 2).round())


def test_house_signatures_measure_plausibly() -> None:
    world = World(SimulationConfig.of(listings=10, brands=10))
    for brand in world.brands:
        assert 15.0 <= (nominal("monogram_spacing", brand) or 0.0) <= 30.0
        assert 7.0 <= (nominal("stitch_density", brand) or 0.0) <= 12.0
        assert nominal("monogram_angle", brand) == brand.rotation_deg
        assert nominal("hardware", brand) is None


def test_every_points_views_are_the_views_that_show_its_flaw() -> None:
    assert set(_FLAW_OF) == {p.name for p in CONTROL_POINTS}
    for point in CONTROL_POINTS:
        flaw = _FLAW_OF[point.name]
        shown = (
            ()
            if flaw is None
            else tuple(v for k, v in enumerate(VIEWS) if VISIBILITY[k, FLAWS.index(flaw)])
        )
        assert point.views == shown, point.name
        assert control_point(point.name) is point
    assert control_point("serial_code") is not None
    assert control_point("serial_code").views == ()  # type: ignore[union-attr]


def test_counterfeits_fail_their_factorys_flawed_points(checks: pd.DataFrame) -> None:
    authentic = checks[~checks["is_counterfeit"]].groupby("control_point")["fail"].mean()
    assert (authentic < 0.12).all(), authentic  # tolerance, noise and misjudging only
    fakes = checks[checks["is_counterfeit"]]
    flawed = 0
    for factory in DEFAULT_FACTORIES:
        mine = fakes[fakes["factory_id"] == factory.factory_id]
        for point, flaw in _FLAW_OF.items():
            if flaw is None or abs(factory.delta[FLAWS.index(flaw)]) < 2.2:
                continue
            rows = mine[mine["control_point"] == point]
            assert len(rows) > 40, (factory.name, point)
            rate = rows["fail"].mean()
            assert rate > max(0.3, 4 * authentic[point]), (factory.name, point, rate)
            flawed += 1
    assert flawed == 14  # every default factory but the superfake, at 2.2 sigma or more
    # a crude factory's serials break the format half the time; the expert notices
    crude = fakes[(fakes["factory_id"] == 0) & (fakes["control_point"] == "serial_code")]
    assert crude["fail"].mean() > max(0.3, 4 * authentic["serial_code"])


def test_experts_measure_with_their_own_noise_and_bias(
    reports: Marketplace, checks: pd.DataFrame
) -> None:
    """The spacing an expert writes, against the item's true spacing, in sigma units: its spread
    is the expert's noise, its mean their bias (the 0.1 mm rounding adds ~0.05 sigma)."""
    brands = reports.read("brands", ["brand_id", "spacing_px"])
    listings = reports.read("listings", ["listing_id", "brand_id"])
    spacing = checks[checks["control_point"] == "monogram_spacing"].merge(listings).merge(brands)
    sigma = NATURAL_SIGMA[FLAWS.index("spacing")]
    true_mm = spacing["spacing_px"] * 1.2 * (1 + spacing["flaw_spacing"])
    spacing["error"] = (spacing["measurement"] / true_mm - 1) / sigma
    per = spacing.groupby("expert_id")["error"].agg(["std", "mean", "size"])
    assert (per["size"] > 40).all()
    assert per["std"].max() > 1.6 * per["std"].min()
    assert levene(*[g.to_numpy() for _, g in spacing.groupby("expert_id")["error"]]).pvalue < 1e-6
    people: tuple[Expert, ...] = experts(reports.config.seed)
    noise = np.array([people[e].noise for e in per.index])
    bias = np.array([people[e].bias[FLAWS.index("spacing")] for e in per.index])
    assert np.corrcoef(per["std"], noise)[0, 1] > 0.8
    assert np.corrcoef(per["mean"], bias)[0, 1] > 0.8


def test_experts_check_fewer_points_once_two_fails_made_the_verdict_clear(
    tmp_path: Path, checks: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reports with two fails or more list fewer points than reports with none. Selection pulls
    the other way (the more points an expert checks, the likelier two fails), so the same world
    with experts who never slow down must show no such gap."""
    per = _per_report(checks)
    clear, clean = per.loc[per["fails"] >= 2, "checked"], per.loc[per["fails"] == 0, "checked"]
    assert len(clear) > 300 and len(clean) > 300
    assert clean.mean() - clear.mean() > 1.0
    assert mannwhitneyu(clear, clean, alternative="less").pvalue < 1e-12

    steady = tuple(dataclasses.replace(e, after_clear=e.thoroughness) for e in experts(7))
    monkeypatch.setattr("couturier.marketplace._generate.experts", lambda seed: steady)
    m = _world(tmp_path, "steady", listings=3000, prevalence=PREVALENCE, seed=7)
    truth = m.read("truth", ["listing_id"])
    per = _per_report(
        m.read("control_points").merge(truth).assign(fail=lambda d: d.result == "fail")
    )
    assert (
        per.loc[per["fails"] >= 2, "checked"].mean() >= per.loc[per["fails"] == 0, "checked"].mean()
    )


def test_reports_do_not_move_before_a_scenario_starts(tmp_path: Path) -> None:
    params = {"listings": 500, "days": 20.0, "scenario_start_day": 10.0, "prevalence": 0.2}
    base = _world(tmp_path, "base", **params).read("control_points")
    camera = _world(tmp_path, "camera", scenario="camera_change", **params)
    pd.testing.assert_frame_equal(base, camera.read("control_points"))  # photos only
    adaptive = _world(tmp_path, "adaptive", scenario="adaptive_counterfeiters", **params)
    other = adaptive.read("control_points")
    listings = adaptive.read("listings", ["listing_id", "listed_at"])
    start = pd.Timestamp(adaptive.config.start) + pd.Timedelta(days=10)
    before = set(listings.loc[listings["listed_at"] < start, "listing_id"])
    fakes = set(adaptive.read("truth").query("is_counterfeit")["listing_id"])

    def kept(d: pd.DataFrame) -> pd.DataFrame:
        return d[d["listing_id"].isin(before) | ~d["listing_id"].isin(fakes)]

    pd.testing.assert_frame_equal(
        kept(base).reset_index(drop=True), kept(other).reset_index(drop=True)
    )
    assert not base.equals(other)  # the shrunken flaws of later counterfeits read differently


def test_a_report_counts_from_when_it_arrived(reports: Marketplace) -> None:
    table = reports.read("control_points", ["created_at"])
    when = pd.Timestamp(table["created_at"].median()).to_pydatetime()
    seen = reports.at(when).read("control_points", ["created_at"])
    assert len(seen) == (table["created_at"] <= when).sum() > 0
