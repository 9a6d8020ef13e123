"""The demand model's promises: sales agree with the stated probabilities, prices only fall,
every sale is a purchase, and the oracle price is the best a pricing model can do."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from couturier.errors import InvalidInputError
from couturier.marketplace import (
    ELASTICITY,
    Marketplace,
    SimulationConfig,
    expected_revenue,
    sale_probability,
    simulate,
)
from couturier.marketplace._demand import (
    DETAIL_LOG_VALUE,
    LISTING_DAYS,
    Market,
    oracle_price,
    popularity,
    season,
)
from couturier.marketplace._oracle import PriceModel
from couturier.marketplace._sales import simulate_sale
from couturier.marketplace._scenarios import SCENARIOS
from couturier.marketplace._world import World

DAY = pd.Timedelta(days=1)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Marketplace:
    """3,000 listings without photos: enough to check sale rates to a few points."""
    cfg = SimulationConfig.of(listings=3000, render_photos=False, seed=5)
    return simulate(cfg, tmp_path_factory.mktemp("demand") / "run", workers=1)


@pytest.fixture(scope="module")
def frame(world: Marketplace) -> pd.DataFrame:
    """One row per listing: its price, market, demand, and its sale (NaT when unsold)."""
    listings = world.read("listings", ["listing_id", "brand_id", "listed_at", "asking_price"])
    sales = world.read("sales", ["listing_id", "sold_at", "sale_price", "buyer_id"])
    df = listings.merge(world.read("truth")).merge(sales, on="listing_id", how="left")
    df["days_to_sale"] = _days(df["sold_at"] - df["listed_at"])
    return df


def _days(delta: pd.Series) -> pd.Series:
    days: pd.Series = delta.dt.total_seconds() / 86_400
    return days


def _observed(df: pd.DataFrame, world: Marketplace, horizon: int) -> pd.DataFrame:
    """Listings whose first ``horizon`` days ended inside the simulated period."""
    end = pd.Timestamp(world.config.start) + world.config.days * DAY
    return df[df["listed_at"] + horizon * DAY <= end]


@pytest.mark.parametrize("horizon", [7, 30])
def test_realized_sales_agree_with_the_stated_probabilities(
    world: Marketplace, frame: pd.DataFrame, horizon: int
) -> None:
    # no price moves in the first 30 days, so the formula is exact in expectation
    df = _observed(frame, world, horizon)
    predicted = sale_probability(df["asking_price"], df["market_value"], df[f"demand_{horizon}d"])
    sold = (df["days_to_sale"] < horizon).to_numpy()
    se = np.sqrt(np.sum(predicted * (1 - predicted))) / len(df)
    assert len(df) > 2000
    assert abs(sold.mean() - predicted.mean()) < 3.5 * se
    # and calibrated: in each fifth of the predicted probability too
    bins = pd.qcut(predicted, 5, labels=False)
    for b in range(5):
        p, y = predicted[bins == b], sold[bins == b]
        assert abs(y.mean() - p.mean()) < 3.5 * np.sqrt(np.sum(p * (1 - p))) / len(p), b


def test_a_typical_authentic_listing_at_market_value_sells_within_30_days_half_the_time(
    frame: pd.DataFrame,
) -> None:
    authentic = frame[~frame["is_counterfeit"]]
    at_value = sale_probability(authentic["market_value"], authentic["market_value"], 1.0)
    assert np.all(at_value == pytest.approx(1 - np.exp(-1.0)))
    typical = float(np.median(-np.expm1(-authentic["demand_30d"])))
    assert 0.4 < typical < 0.6


def test_demand_falls_with_price() -> None:
    prices = np.linspace(500.0, 3000.0, 200)
    p = sale_probability(prices, 1000.0, 0.7)
    assert np.all(np.diff(p) < 0)
    assert np.all((p > 0) & (p < 1))
    # the elasticity: 1% more expensive, ELASTICITY% less hazard
    hazard = -np.log1p(-sale_probability([1000.0, 1010.0], 1000.0, 0.7))
    assert hazard[1] / hazard[0] == pytest.approx(1.01**-ELASTICITY)
    revenue = expected_revenue(prices, 1000.0, 0.7)
    np.testing.assert_allclose(revenue, prices * p)


def test_the_oracle_price_earns_the_most_any_price_can(frame: pd.DataFrame) -> None:
    rows = frame.sample(50, random_state=0)
    columns = ["market_value", "demand_30d", "oracle_price", "oracle_sale_p30"]
    for v, d, best, p30 in rows[columns].to_numpy():
        grid = v * np.exp(np.linspace(-2.0, 2.0, 4001))
        top = float(expected_revenue(best, v, d))
        assert np.max(expected_revenue(grid, v, d)) <= top * (1 + 1e-9)
        assert float(sale_probability(best, v, d)) == pytest.approx(p30)
    # the optimum puts demand * (p / V) ** -ELASTICITY at the same point for every listing
    assert frame["oracle_sale_p30"].round(12).nunique() == 1
    price, p30 = oracle_price([1000.0, 1000.0], [0.35, 0.7])
    assert price[0] < price[1] and p30[0] == p30[1]


def test_prices_and_demands_that_make_no_sense_are_refused() -> None:
    with pytest.raises(InvalidInputError, match=r"price=-5\.0.*> 0"):
        sale_probability([100.0, -5.0], 1000.0, 0.7)
    with pytest.raises(InvalidInputError, match="market_value"):
        expected_revenue(100.0, 0.0, 0.7)
    with pytest.raises(InvalidInputError, match="demand"):
        sale_probability(100.0, 1000.0, float("nan"))


def test_price_changes_only_lower_the_price_after_30_days_at_most_three_times(
    world: Marketplace, frame: pd.DataFrame
) -> None:
    changes = world.read("price_changes").merge(frame[["listing_id", "listed_at", "sold_at"]])
    assert len(changes) > 300
    assert (changes["new_price"] < changes["old_price"]).all()
    after = _days(changes["changed_at"] - changes["listed_at"])
    assert after.min() >= 30.0 and after.max() < LISTING_DAYS
    assert changes.groupby("listing_id").size().max() <= 3
    # a chain: each change starts from the price the last one left, the first from the ask
    changes = changes.sort_values("change_id")
    first = changes.groupby("listing_id").head(1).merge(frame[["listing_id", "asking_price"]])
    assert (first["old_price"] == first["asking_price"]).all()
    prev = changes.groupby("listing_id")["new_price"].shift()
    assert (changes["old_price"][prev.notna()] == prev.dropna()).all()
    cut = 1 - changes["new_price"] / changes["old_price"]
    assert cut.between(0.07, 0.16).all()  # 8% to 15%, rounded to whole EUR
    # a sold listing's price no longer moves
    assert not (changes["changed_at"] > changes["sold_at"]).any()


def test_every_sale_is_a_purchase_at_the_price_of_the_moment(
    world: Marketplace, frame: pd.DataFrame
) -> None:
    sales = world.read("sales")
    inter = world.read("interactions")
    bought = inter[inter["kind"] == "purchase"]
    assert len(sales) == len(bought) and sales["listing_id"].is_unique
    joined = sales.merge(bought, on="listing_id")
    assert (joined["sold_at"] == joined["occurred_at"]).all()
    assert (joined["buyer_id_x"] == joined["buyer_id_y"]).all()
    # the price then: the asking price, or the last cut before the sale
    changes = world.read("price_changes", ["listing_id", "changed_at", "new_price"])
    sold = frame.dropna(subset=["sold_at"])
    last = (
        changes.merge(sold[["listing_id", "sold_at"]])
        .query("changed_at <= sold_at")
        .sort_values("changed_at")
        .groupby("listing_id")["new_price"]
        .last()
    )
    expected = sold.set_index("listing_id")["asking_price"]
    expected.update(last)
    assert (sold.set_index("listing_id")["sale_price"] == expected).all()
    assert (sold["days_to_sale"] >= 0).all() and (sold["days_to_sale"] < LISTING_DAYS).all()
    # the buyer viewed the listing before buying it
    views = inter[inter["kind"] == "view"]
    seen = views.merge(joined[["listing_id", "buyer_id_x", "sold_at"]], on="listing_id")
    seen = seen[(seen["buyer_id"] == seen["buyer_id_x"]) & (seen["occurred_at"] <= seen["sold_at"])]
    assert seen["listing_id"].nunique() == len(sales)


def test_counterfeits_sell_like_anything_at_their_price(frame: pd.DataFrame) -> None:
    # buyers cannot tell: a counterfeit's demand is that of its product, and cheaper sells faster
    fake = frame[frame["is_counterfeit"]]
    real = frame[~frame["is_counterfeit"]]
    assert (fake["days_to_sale"] < 30).mean() > (real["days_to_sale"] < 30).mean()


def test_the_market_value_is_the_reference_times_condition_house_index_and_completeness(
    world: Marketplace, frame: pd.DataFrame
) -> None:
    products = world.read("products", ["product_id", "reference_price"])
    listings = world.read("listings", ["listing_id", "product_id", "condition", "description"])
    df = frame.merge(listings).merge(products)
    detail = df["description"].map(
        lambda text: next(v for s, v in DETAIL_LOG_VALUE.items() if s in text)
    )
    mu = df["condition"].map(PriceModel.MU)
    log_index = np.log(df["market_value"] / df["reference_price"]) - mu - detail
    day = _days(df["listed_at"] - pd.Timestamp(world.config.start))
    slopes = World(world.config).market.slopes
    for brand, slope in enumerate(slopes):
        rows = df["brand_id"] == brand
        np.testing.assert_allclose(log_index[rows], slope * day[rows] / 365.0, atol=1e-9)
    # sellers ask around the market value: authentic items N(0, 0.22) in log
    real = df[~df["is_counterfeit"]]
    log_ask = np.log(real["asking_price"] / real["market_value"])
    assert abs(log_ask.mean()) < 0.02 and 0.19 < log_ask.std() < 0.25


def test_seasons_popularity_and_a_price_shock_move_the_hazard_as_documented() -> None:
    assert season("scarf", 14.0) == pytest.approx(1.3)
    assert season("scarf", 14.0 + 365 / 2) == pytest.approx(0.7)
    assert np.all(season("small_leather_goods", np.arange(365.0)) == 1.0)
    assert popularity([0.1, 0.3, 0.6]).tolist() == pytest.approx(np.sqrt([0.3, 0.9, 1.8]))
    start = datetime(2026, 1, 1, tzinfo=UTC)
    slopes, shares = np.zeros(2), np.array([0.5, 0.5])
    calm = Market(start, slopes, shares, SCENARIOS["none"](50.0))
    shock = Market(start, slopes, shares, SCENARIOS["price_shock"](50.0))
    assert calm.day_of_year(np.array([0.0, 31.5, 365.0])).tolist() == [0.0, 31.5, 0.0]
    a, b = calm.base_hazard(0, "bag", "good", 40.0), shock.base_hazard(0, "bag", "good", 40.0)
    np.testing.assert_allclose(b[:10], a[:10])  # days 40..50: before the shock
    np.testing.assert_allclose(b[10:], a[10:] * 0.8**ELASTICITY)  # worth less: sells slower
    np.testing.assert_allclose(shock.base_hazard(1, "bag", "good", 40.0), a)  # another house
    assert shock.house_index(0, 60.0) == pytest.approx(0.8)


def test_a_listing_nobody_wants_is_cut_three_times_then_withdrawn() -> None:
    rng = np.random.default_rng(0)
    sale = simulate_sale(rng, np.zeros(LISTING_DAYS), 1000.0, 1000.0)
    assert sale.sold_after is None and sale.sale_price is None
    assert len(sale.changes) == 3
    times = [after for after, _, _ in sale.changes]
    assert 30 <= times[0] <= 45 and times == [times[0] * k for k in (1, 2, 3)]
    hot = simulate_sale(np.random.default_rng(0), np.full(LISTING_DAYS, 50.0), 1000.0, 1000.0)
    assert hot.sold_after is not None and hot.sold_after < 1.0 and hot.changes == ()
    assert hot.sale_price == 1000.0


def test_sales_and_price_changes_travel_in_time(world: Marketplace) -> None:
    when = world.config.start + pd.Timedelta(days=60).to_pytimedelta()
    seen = world.at(when)
    for table in ("sales", "price_changes"):
        full, part = world.read(table), seen.read(table)
        assert 0 < len(part) < len(full), table
        assert (part["created_at"] <= when).all()
        assert (full["created_at"] <= when).sum() == len(part)
