"""The demand model: what a listing is worth on a day, and how fast it sells at a price.

A listing's *market value* on day ``t`` (days since ``config.start``)::

    V(t) = reference_price * exp(PriceModel.MU[condition]) * house_index(brand, t) * completeness

and its daily *sale hazard* at the listed price ``p``::

    lambda(t, p) = LAMBDA0 * popularity(brand) * season(category, t)
                   * CONDITION_DEMAND[condition] * (p / V(t)) ** -ELASTICITY

The hazard is integrated on a daily grid from the listing time (its value at each day's midpoint,
held for the day), so with the price held from listing, the chance of a sale within ``H`` days is
``1 - exp(-demand_H * (p / V(t0)) ** -ELASTICITY)`` where ``demand_H`` (in ``truth``) sums the
first ``H`` days' hazard at ``p = V(t0)``. :func:`sale_probability` is that formula.

>>> from couturier.marketplace import expected_revenue, sale_probability
>>> round(float(sale_probability(1000.0, 1000.0, 0.69)), 3)
0.498
>>> float(expected_revenue([800.0, 1000.0], 1000.0, 0.69)[0]) > 0.0
True
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from scipy.optimize import brentq

from couturier.errors import InvalidInputError
from couturier.marketplace._oracle import PriceModel

if TYPE_CHECKING:
    from couturier.marketplace._scenarios import Scenario

__all__ = [
    "CONDITION_DEMAND",
    "DETAIL_LOG_VALUE",
    "ELASTICITY",
    "LAMBDA0",
    "LISTING_DAYS",
    "Market",
    "expected_revenue",
    "oracle_price",
    "popularity",
    "sale_probability",
    "season",
]

Floats = npt.NDArray[np.float64]

#: Price elasticity of the sale hazard: 10% over market value sells ~25% slower.
ELASTICITY = 3.0
#: Base daily sale hazard at market value: with it the median authentic listing priced at its
#: market value sells within 30 days with probability ~0.5 (calibrated on the default world).
LAMBDA0 = 0.021
#: Per-house market trend: log index = slope * day / 365, slope ~ N(0, HOUSE_TREND_SIGMA).
HOUSE_TREND_SIGMA = 0.3
#: Popularity is the house's share over the mean house's share, to this power.
POPULARITY_EXPONENT = 0.5
#: A listing unsold this many days after listing is withdrawn.
LISTING_DAYS = 180
#: Demand by condition (multiplies the hazard).
CONDITION_DEMAND: dict[str, float] = {"new": 1.2, "excellent": 1.1, "good": 1.0, "fair": 0.8}
#: Season: 1 + amplitude * cos(2 pi (day_of_year - peak) / 365), day_of_year 0 on 1 January.
SEASON: dict[str, tuple[float, float]] = {  # category: (amplitude, peak day of year)
    "bag": (0.3, 287.0),  # mid-October
    "small_leather_goods": (0.0, 0.0),  # flat
    "shoes": (0.3, 114.0),  # late April
    "watch": (0.3, 348.0),  # mid-December
    "scarf": (0.3, 14.0),  # mid-January
}
#: The description's detail sentence, in the generator's order, and what it does to the value
#: (a log multiplier): completeness is observable from the text, on purpose.
DETAIL_LOG_VALUE: dict[str, float] = {
    "Comes with the original box.": 0.10,
    "No box, dust bag included.": -0.04,
    "Receipt available on request.": 0.06,
    "Ships within two days, tracked and insured.": 0.0,
    "Minor signs of wear, see photos.": -0.08,
    "Corners are clean, hardware shines.": 0.03,
}
_DAY_US = np.timedelta64(86_400_000_000, "us")

# The revenue-maximizing price: with y = demand * (p / V) ** -ELASTICITY, d/dp of
# p * (1 - exp(-y)) vanishes where exp(y) = 1 + ELASTICITY * y, whatever the demand.
_Y_STAR = float(brentq(lambda y: np.exp(y) - 1.0 - ELASTICITY * y, 1e-3, 50.0, xtol=1e-14))


def sale_probability(
    price: npt.ArrayLike, market_value: npt.ArrayLike, demand: npt.ArrayLike
) -> Floats:
    """P(sold within the horizon of ``demand`` | the price held from listing).

    ``1 - exp(-demand * (price / market_value) ** -ELASTICITY)``, elementwise (numpy
    broadcasting). ``demand`` is a ``truth.demand_7d`` or ``truth.demand_30d`` value and
    ``market_value`` the listing's ``truth.market_value``.

    >>> p = sale_probability([900.0, 1000.0, 1100.0], 1000.0, 0.69)
    >>> bool(p[0] > p[1] > p[2])
    True
    """
    p, v, d = _checked(price, market_value, demand)
    return np.asarray(-np.expm1(-d * (p / v) ** -ELASTICITY), dtype=np.float64)


def expected_revenue(
    price: npt.ArrayLike, market_value: npt.ArrayLike, demand: npt.ArrayLike
) -> Floats:
    """``price * sale_probability(price, market_value, demand)``: what a price earns in
    expectation over the horizon of ``demand`` (nothing if unsold).

    >>> round(float(expected_revenue(1000.0, 1000.0, 0.69)), 1)
    498.4
    """
    p = np.asarray(price, dtype=np.float64)
    return np.asarray(p * sale_probability(p, market_value, demand), dtype=np.float64)


def oracle_price(market_value: npt.ArrayLike, demand: npt.ArrayLike) -> tuple[Floats, Floats]:
    """The price that maximizes :func:`expected_revenue`, and its sale probability.

    Exact: the optimum puts ``demand * (p / V) ** -ELASTICITY`` at the root ``y*`` of
    ``exp(y) = 1 + ELASTICITY * y`` (1.904 for an elasticity of 3), so the oracle's sale
    probability is ``1 - exp(-y*)`` (0.851) for every listing and its price is
    ``V * (demand / y*) ** (1 / ELASTICITY)``."""
    v = np.asarray(market_value, dtype=np.float64)
    d = np.asarray(demand, dtype=np.float64)
    price = v * (d / _Y_STAR) ** (1.0 / ELASTICITY)
    prob = np.full(np.shape(price), -np.expm1(-_Y_STAR))
    return np.asarray(price, dtype=np.float64), prob


def popularity(shares: npt.ArrayLike) -> Floats:
    """Each house's demand multiplier: its share over the mean house's, to the power 0.5."""
    s = np.asarray(shares, dtype=np.float64)
    return np.asarray((s / s.mean()) ** POPULARITY_EXPONENT, dtype=np.float64)


def season(category: str, day_of_year: npt.ArrayLike) -> Floats:
    """The category's seasonal demand multiplier on a (fractional, 0-based) day of the year."""
    amplitude, peak = SEASON[category]
    doy = np.asarray(day_of_year, dtype=np.float64)
    return np.asarray(1.0 + amplitude * np.cos(2.0 * np.pi * (doy - peak) / 365.0))


class Market:
    """One world's market: its houses' trends and popularity, on the real calendar.

    ``slopes`` are the houses' yearly log trends, ``shares`` their popularity shares; the
    scenario may move a house's index (``price_shock``)."""

    def __init__(self, start: datetime, slopes: Floats, shares: Floats, scenario: Scenario) -> None:
        self.start = np.datetime64(start.replace(tzinfo=None), "us")
        self.slopes = slopes
        self.popularity = popularity(shares)
        self.scenario = scenario

    def house_index(self, brand_id: int, days: npt.ArrayLike) -> Floats:
        """The house's market index on ``days`` (days since the start): 1 on day 0."""
        t = np.asarray(days, dtype=np.float64)
        trend = np.exp(float(self.slopes[brand_id]) * t / 365.0)
        return np.asarray(trend * self.scenario.house_factor(brand_id, t), dtype=np.float64)

    def log_shift(self, brand_id: int, detail: str, day: float) -> float:
        """log(house index * completeness): where the market moves a listing's value and price."""
        index = float(self.house_index(brand_id, day))
        return float(np.log(index) + DETAIL_LOG_VALUE[detail])

    @staticmethod
    def value(reference: float, condition: str, shift: float) -> float:
        """The market value V from the reference price, the condition and :meth:`log_shift`."""
        return float(reference * np.exp(PriceModel.MU[condition] + shift))

    def day_of_year(self, days: npt.ArrayLike) -> Floats:
        """The 0-based fractional day of the year of ``days`` since the start, by the calendar."""
        us = np.round(np.asarray(days, dtype=np.float64) * 86_400_000_000)
        when = self.start + us.astype("timedelta64[us]")
        since_new_year = when - when.astype("datetime64[Y]").astype("datetime64[us]")
        return np.asarray(since_new_year / _DAY_US, dtype=np.float64)

    def base_hazard(self, brand_id: int, category: str, condition: str, day: float) -> Floats:
        """Daily hazards for the ``LISTING_DAYS`` days from ``day`` at a price of ``V(day)``:
        ``LAMBDA0 * popularity * season * condition * (V(t_d) / V(day)) ** ELASTICITY`` at each
        day's midpoint ``t_d``. At price ``p`` multiply by ``(p / V(day)) ** -ELASTICITY``."""
        mids = day + np.arange(LISTING_DAYS) + 0.5
        moved = self.house_index(brand_id, mids) / float(self.house_index(brand_id, day))
        scale = LAMBDA0 * float(self.popularity[brand_id]) * CONDITION_DEMAND[condition]
        hazard = scale * season(category, self.day_of_year(mids)) * moved**ELASTICITY
        return np.asarray(hazard, dtype=np.float64)


def _checked(
    price: npt.ArrayLike, market_value: npt.ArrayLike, demand: npt.ArrayLike
) -> tuple[Floats, Floats, Floats]:
    p = np.asarray(price, dtype=np.float64)
    v = np.asarray(market_value, dtype=np.float64)
    d = np.asarray(demand, dtype=np.float64)
    for name, x, rule in (("price", p, p > 0), ("market_value", v, v > 0), ("demand", d, d >= 0)):
        if not np.all(rule):
            bad = x[~rule] if x.ndim else x
            raise InvalidInputError(
                f"{name}={float(np.ravel(bad)[0])!r} is refused: {name} must be "
                f"{'>= 0' if name == 'demand' else '> 0'} (a NaN is refused too); "
                "drop or fix the row before pricing it",
                field=name,
            )
    return p, v, d
