"""The pricing domain's parts on small synthetic data: the house market's snapshots, the time
split with its embargo, the examples' rules, and the Mondrian corrections."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from couturier.domains.pricing import _data
from couturier.domains.pricing._features import FEATURES, MIN_FAST_INDEX_EVENTS
from couturier.domains.pricing._train import GLOBAL, PricingConfig, fit_market_value
from couturier.errors import InvalidInputError

DAY = pd.Timedelta(days=1)
START = pd.Timestamp("2026-01-01", tz="UTC")


class _Source:
    """A SourceData of hand-made tables."""

    def __init__(self, **tables: pd.DataFrame) -> None:
        self.tables = tables

    def read(self, table: str, columns: list[str] | None = None) -> pd.DataFrame:
        frame = self.tables[table]
        return frame[columns] if columns else frame


def _market(listed_days: list[float], ratios: list[float] | None = None) -> _Source:
    n = len(listed_days)
    listings = pd.DataFrame(
        {
            "listing_id": np.arange(n),
            "product_id": np.zeros(n, dtype=int),
            "brand_id": np.zeros(n, dtype=int),
            "asking_price": 1000.0 * np.asarray(ratios or [0.8] * n),
            "created_at": [START + d * DAY for d in listed_days],
        }
    )
    sales = pd.DataFrame(
        {
            "listing_id": [0],
            "sale_price": [700.0],
            "created_at": [START + 2.5 * DAY],
        }
    )
    return _Source(
        listings=listings,
        sales=sales,
        products=pd.DataFrame({"product_id": [0], "reference_price": [1000.0]}),
        brands=pd.DataFrame({"brand_id": [0]}),
    )


def _house_market(src: _Source) -> pd.DataFrame:
    return FEATURES.view("house_market").compute(src).set_index("event_timestamp")


def test_the_house_market_counts_only_what_had_arrived_by_each_snapshot() -> None:
    # 20 listings at 0.8 of the reference on day 0.5, 20 at 0.5 on day 3.5
    src = _market([0.5] * 20 + [3.5] * 20, [0.8] * 20 + [0.5] * 20)
    snap = _house_market(src)
    day3, day4 = snap.loc[START + 3 * DAY], snap.loc[START + 4 * DAY]
    assert day3["house_ask_index_3d"] == pytest.approx(np.log(0.8))  # day 3.5 not arrived
    assert day4["house_ask_index_3d"] == pytest.approx(np.log(0.5))  # day 0.5 left the window
    assert day4["house_ask_index_7d"] == pytest.approx((np.log(0.8) + np.log(0.5)) / 2)
    assert day4["house_ask_index_30d"] == pytest.approx((np.log(0.8) + np.log(0.5)) / 2)
    assert snap.loc[START + 2 * DAY, "house_sales_30d"] == 0  # the sale arrives on day 2.5
    assert snap.loc[START + 3 * DAY, "house_sales_30d"] == 1


def test_the_fast_index_needs_enough_listings() -> None:
    src = _market([0.5] * (MIN_FAST_INDEX_EVENTS - 1))
    assert _house_market(src)["house_ask_index_3d"].isna().all()
    src = _market([0.5] * MIN_FAST_INDEX_EVENTS)
    assert _house_market(src)["house_ask_index_3d"].notna().any()


def test_the_holdout_keeps_thirty_days_from_what_the_models_learn() -> None:
    listed = pd.Series(START + pd.to_timedelta(np.linspace(0, 120, 1200), unit="D"))
    calibration, embargo, holdout = _data._bounds(listed, (0.6, 0.8), START + 200 * DAY)
    assert holdout == listed.iloc[960]
    assert embargo == holdout - 30 * DAY
    before = (listed < embargo).sum()
    assert (listed < calibration).sum() == pytest.approx(0.75 * before, abs=2)


def test_a_world_too_short_for_the_embargo_is_refused_with_what_to_do() -> None:
    listed = pd.Series(START + pd.to_timedelta(np.linspace(0, 35, 1000), unit="D"))
    with pytest.raises(InvalidInputError, match="simulate more listings or days"):
        _data._bounds(listed, (0.6, 0.8), START + 100 * DAY)


def test_value_examples_are_old_enough_sold_in_time_and_not_judged_fake() -> None:
    frame = pd.DataFrame(
        {
            "days_to_sale": [5.0, 45.0, 5.0, 5.0, np.nan],
            "age_days": [40.0, 60.0, 10.0, 40.0, 40.0],
            "judged_counterfeit": [False, False, False, True, False],
        }
    )
    data: Any = _data.PricingData(frame, START, None, (START, START, START))  # type: ignore[arg-type]
    assert data.value_examples.tolist() == [True, False, False, False, False]
    assert data.sale_examples.tolist() == [True, True, False, True, True]


def test_mondrian_corrections_follow_each_category_that_has_the_sales() -> None:
    rng = np.random.default_rng(0)
    n = 3000
    x = rng.normal(size=(n, 3)).astype(np.float32)
    category = rng.integers(0, 3, n)
    noise = np.where(category == 1, 0.6, 0.2)  # category 1 is three times as noisy
    y = 0.5 * x[:, 0] + rng.normal(size=n) * noise
    train, cal = slice(0, 2000), slice(2000, None)
    # the train window's category 1 is as calm as the rest: only its calibration shows the noise
    y_train = 0.5 * x[train, 0] + rng.normal(size=2000) * 0.2
    small = category[cal].copy()
    small[(small == 2) & (rng.random(1000) < 0.8)] = 0  # category 2: too few to calibrate alone
    fitted = fit_market_value(
        x[train], y_train, x[cal], y[cal], small, PricingConfig(n_estimators=60, min_segment=150)
    )
    assert set(fitted.offsets) == {GLOBAL, "0", "1"}
    assert min(fitted.offsets["1"]) > max(fitted.offsets["0"]) + 0.3


def test_the_ece_noise_floor_is_what_sampling_alone_gives() -> None:
    from couturier.domains.pricing._recipe import ece_noise_floor
    from couturier.evaluation import expected_calibration_error

    rng = np.random.default_rng(1)
    p = rng.uniform(0.1, 0.9, 600)
    calibrated = rng.random(600) < p
    floor = ece_noise_floor(p)
    assert 0.02 < floor < 0.08  # 15 bins on 600 rows: far from zero
    assert abs(expected_calibration_error(calibrated, p) - floor) < 0.03
    shifted = rng.random(600) < np.clip(p + 0.15, 0, 1)  # outcomes 15 points above the odds
    assert expected_calibration_error(shifted, p) - floor > 0.09
