"""Each drift scenario changes what it says, from its start day, and nothing else.

Every pair below is the same seed with and without the scenario. Before the start day every
table must match row for row; after it, only the columns the scenario names may differ. A price
shock moves the market itself, so for it "before" means by event time: a listing posted before
the shock but sold after it sells differently, as it would.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from couturier.marketplace import Marketplace, SimulationConfig, simulate

N, DAYS, START = 500, 20.0, 10.0
SHOCK_DAYS, SHOCK_START = 90.0, 50.0
CHUNKED = ("listings", "truth", "photos", "verdicts", "interactions", "sales", "price_changes")
#: each table's event time, for the price shock's "before"
EVENT_TIME = {
    "listings": "listed_at",
    "photos": "created_at",
    "verdicts": "decided_at",
    "interactions": "occurred_at",
    "sales": "sold_at",
    "price_changes": "changed_at",
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Marketplace]:
    root = tmp_path_factory.mktemp("scenarios")
    out = {}
    for name in (
        "none",
        "new_factory",
        "adaptive_counterfeiters",
        "camera_change",
        "fraud_ring",
        "seasonal_shift",
    ):
        cfg = SimulationConfig.of(
            listings=N, days=DAYS, scenario=name, scenario_start_day=START, prevalence=0.2, seed=11
        )
        out[name] = simulate(cfg, root / name, workers=1)
    return out


@pytest.fixture(scope="module")
def shock(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Marketplace]:
    """A longer period for the price shock: sellers cut prices 30 to 45 days after listing, so
    there are price changes before its start."""
    root = tmp_path_factory.mktemp("shock")
    out = {}
    for name in ("none", "price_shock"):
        cfg = SimulationConfig.of(
            listings=600, days=SHOCK_DAYS, scenario=name, scenario_start_day=SHOCK_START, seed=11
        )
        out[name] = simulate(cfg, root / name, workers=1)
    return out


def _frames(m: Marketplace, table: str) -> pd.DataFrame:
    df = m.read(table)
    key = {
        "photos": "photo_id",
        "verdicts": "verdict_id",
        "interactions": "interaction_id",
        "sales": "sale_id",
        "price_changes": "change_id",
    }
    return df.sort_values(key.get(table, "listing_id")).reset_index(drop=True)


def _after(m: Marketplace) -> set[int]:
    listings = m.read("listings", ["listing_id", "listed_at"])
    start = pd.Timestamp(m.config.start) + pd.Timedelta(days=m.config.scenario_start)
    return set(listings.loc[listings["listed_at"] >= start, "listing_id"])


def _diff_columns(base: pd.DataFrame, other: pd.DataFrame, rows: pd.Series) -> set[str]:
    """Columns that differ on the selected rows (tables aligned on the same keys)."""
    a, b = base[rows].reset_index(drop=True), other[rows].reset_index(drop=True)
    return {c for c in a.columns if not a[c].equals(b[c])}


def _same_before_start(runs: dict[str, Marketplace], name: str) -> None:
    base, other = runs["none"], runs[name]
    after = _after(base)
    for table in CHUNKED:
        a, b = _frames(base, table), _frames(other, table)
        a_pre = a[~a["listing_id"].isin(after)].reset_index(drop=True)
        b_pre = b[~b["listing_id"].isin(after)].reset_index(drop=True)
        pd.testing.assert_frame_equal(a_pre, b_pre, obj=f"{name}:{table} before the start day")


@pytest.mark.parametrize(
    "name",
    ["new_factory", "adaptive_counterfeiters", "camera_change", "fraud_ring", "seasonal_shift"],
)
def test_nothing_changes_before_the_start_day(runs: dict[str, Marketplace], name: str) -> None:
    _same_before_start(runs, name)


def test_camera_change_changes_photos_only(runs: dict[str, Marketplace]) -> None:
    base, cam = runs["none"], runs["camera_change"]
    for table in ("listings", "truth", "verdicts", "interactions", "sales", "price_changes"):
        pd.testing.assert_frame_equal(_frames(base, table), _frames(cam, table))
    a, b = _frames(base, "photos"), _frames(cam, "photos")
    after = a["listing_id"].isin(_after(base))
    assert _diff_columns(a, b, after) == {"image"}
    assert (a.loc[after, "image"] != b.loc[after, "image"]).mean() > 0.95


def test_new_factory_changes_counterfeits_only(runs: dict[str, Marketplace]) -> None:
    base, new = runs["none"], runs["new_factory"]
    after = _after(base)
    ta, tb = _frames(base, "truth"), _frames(new, "truth")
    fake_after = ta["is_counterfeit"] & ta["listing_id"].isin(after)
    assert (tb.loc[fake_after, "factory_id"] == 5).mean() > 0.25  # newcomer's share ~40%
    assert 5 not in set(ta["factory_id"])
    assert (ta["is_counterfeit"] == tb["is_counterfeit"]).all()
    # authentic items: their flaws, photos and listing are untouched
    real = ~ta["is_counterfeit"]
    flaw_cols = [c for c in ta.columns if c.startswith("flaw_")]
    pd.testing.assert_frame_equal(ta.loc[real, flaw_cols], tb.loc[real, flaw_cols])
    la, lb = _frames(base, "listings"), _frames(new, "listings")
    assert _diff_columns(la, lb, ~la["listing_id"].isin(after)) == set()
    assert _diff_columns(la, lb, la["listing_id"].isin(after)) <= {"serial_number", "description"}
    fakes = set(ta.loc[ta["is_counterfeit"], "listing_id"])
    pa_, pb = _frames(base, "photos"), _frames(new, "photos")
    assert _diff_columns(pa_, pb, ~pa_["listing_id"].isin(fakes)) == set()


def test_adaptive_counterfeiters_shrink_flaws_of_counterfeits_only(
    runs: dict[str, Marketplace],
) -> None:
    base, adapt = runs["none"], runs["adaptive_counterfeiters"]
    after = _after(base)
    ta, tb = _frames(base, "truth"), _frames(adapt, "truth")
    fake_after = ta["is_counterfeit"] & ta["listing_id"].isin(after)
    assert (tb.loc[fake_after, "severity_scale"] < 1.0).all()
    # a shrunken flaw is closer to the signature: smaller deviation for the factory's flaws
    assert (
        tb.loc[fake_after, "flaw_stitch"].abs().mean()
        < ta.loc[fake_after, "flaw_stitch"].abs().mean()
    )
    assert (ta["is_counterfeit"] == tb["is_counterfeit"]).all()
    pd.testing.assert_frame_equal(_frames(base, "listings"), _frames(adapt, "listings"))
    for table in ("verdicts", "interactions", "sales", "price_changes"):
        pd.testing.assert_frame_equal(_frames(base, table), _frames(adapt, table))
    fakes = set(ta.loc[ta["is_counterfeit"], "listing_id"])
    pa_, pb = _frames(base, "photos"), _frames(adapt, "photos")
    assert _diff_columns(pa_, pb, ~pa_["listing_id"].isin(fakes)) == set()
    # the oracle knows the counterfeits got better: fakes after the start look less fake
    assert tb.loc[fake_after, "oracle_logit"].mean() < ta.loc[fake_after, "oracle_logit"].mean()


def test_fraud_ring_adds_sellers_and_takes_over_some_listings(
    runs: dict[str, Marketplace],
) -> None:
    base, ring = runs["none"], runs["fraud_ring"]
    sa, sb = base.read("sellers"), ring.read("sellers")
    assert len(sb) == len(sa) + 12
    pd.testing.assert_frame_equal(sa, sb.head(len(sa)))
    la, lb = _frames(base, "listings"), _frames(ring, "listings")
    ring_ids = set(sb["seller_id"].iloc[len(sa) :])
    by_ring = lb["seller_id"].isin(ring_ids)
    after = lb["listing_id"].isin(_after(base))
    assert not by_ring[~after].any()
    assert 0.08 < by_ring[after].mean() < 0.25  # ~15% of listings after the start
    # listings not taken over by the ring are identical
    pd.testing.assert_frame_equal(la[~by_ring], lb[~by_ring])
    tb = _frames(ring, "truth")
    assert tb.loc[by_ring, "fraud_ring"].all()
    assert tb.loc[by_ring, "seller_propensity"].eq(0.5).all()


def test_seasonal_shift_moves_the_category_mix_only(runs: dict[str, Marketplace]) -> None:
    base, season = runs["none"], runs["seasonal_shift"]
    after = _after(base)
    la, lb = _frames(base, "listings"), _frames(season, "listings")
    post = la["listing_id"].isin(after)
    scarf_a = (la.loc[post, "category"] == "scarf").mean()
    scarf_b = (lb.loc[post, "category"] == "scarf").mean()
    assert scarf_b > scarf_a * 1.8
    for col in ("seller_id", "listed_at", "created_at", "condition", "n_photos", "brand_id"):
        assert la[col].equals(lb[col]), col
    ta, tb = _frames(base, "truth"), _frames(season, "truth")
    assert ta["is_counterfeit"].equals(tb["is_counterfeit"])
    assert ta["seller_propensity"].equals(tb["seller_propensity"])


def test_price_shock_changes_nothing_before_its_start(shock: dict[str, Marketplace]) -> None:
    base, shocked = shock["none"], shock["price_shock"]
    start = pd.Timestamp(base.config.start) + pd.Timedelta(days=SHOCK_START)
    for table, column in EVENT_TIME.items():
        a, b = _frames(base, table), _frames(shocked, table)
        a_pre = a[a[column] < start].reset_index(drop=True)
        b_pre = b[b[column] < start].reset_index(drop=True)
        assert len(a_pre) > 0, table
        pd.testing.assert_frame_equal(a_pre, b_pre, obj=f"price_shock:{table} before the start")
    # listings posted before the start: all that is known of them at listing time is the same;
    # only their future demand (whose window crosses the start) may differ, and only house 0's
    ta, tb = _frames(base, "truth"), _frames(shocked, "truth")
    brand = _frames(base, "listings")["brand_id"]
    pre = ~ta["listing_id"].isin(_after(base))
    future = {"demand_7d", "demand_30d", "oracle_price"}
    assert _diff_columns(ta, tb, pre) <= future
    assert _diff_columns(ta, tb, pre & (brand != 0)) == set()


def test_price_shock_lowers_one_house_value_by_a_fifth_and_touches_no_other(
    shock: dict[str, Marketplace],
) -> None:
    base, shocked = shock["none"], shock["price_shock"]
    la, lb = _frames(base, "listings"), _frames(shocked, "listings")
    ta, tb = _frames(base, "truth"), _frames(shocked, "truth")
    after = la["listing_id"].isin(_after(base))
    hit = after & (la["brand_id"] == 0)
    assert hit.sum() > 20
    ratio = tb.loc[hit, "market_value"] / ta.loc[hit, "market_value"]
    np.testing.assert_allclose(ratio, 0.8, rtol=1e-12)
    assert 0.75 < (lb.loc[hit, "asking_price"] / la.loc[hit, "asking_price"]).median() < 0.85
    # pre-start listings of house 0 still unsold at the start now sell slower
    crossing = ~after & (la["brand_id"] == 0)
    assert (tb.loc[crossing, "demand_30d"] <= ta.loc[crossing, "demand_30d"] + 1e-12).all()
    assert (tb.loc[crossing, "demand_30d"] < ta.loc[crossing, "demand_30d"]).any()
    # the shock moves prices and sales, not what the items are or what the experts say
    for table in ("photos", "verdicts"):
        pd.testing.assert_frame_equal(_frames(base, table), _frames(shocked, table))
    # every other house: every table the same, row for row
    others = set(la.loc[la["brand_id"] != 0, "listing_id"])
    for table in CHUNKED:
        a, b = _frames(base, table), _frames(shocked, table)
        pd.testing.assert_frame_equal(
            a[a["listing_id"].isin(others)].reset_index(drop=True),
            b[b["listing_id"].isin(others)].reset_index(drop=True),
            obj=f"price_shock:{table} of other houses",
        )
