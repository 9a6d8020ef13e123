"""One listing's sale: when it sells, at what price, after which price cuts (``_demand.py``).

The listing's own ``demand`` stream draws, always in this order and whatever the outcome: the
exponential threshold ``E``, the seller's patience (30 to 45 whole days), three price cuts
(8% to 15% each), and the buyer, view-lead and return draws the generator uses. The sale happens
when the hazard accumulated on the daily grid reaches ``E`` (linear within the day). An unsold
listing is cut after each patience period, at most three times, and withdrawn after
``LISTING_DAYS``. No price moves in the first 30 days, so "sold within 7 or 30 days at the
listed price" is a clean label.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from couturier.marketplace._demand import ELASTICITY, LISTING_DAYS, Floats

__all__ = ["PATIENCE_DAYS", "PRICE_CUT", "Sale", "simulate_sale"]

#: A seller waits this many whole days (uniform, inclusive) before each price cut.
PATIENCE_DAYS = (30, 45)
#: Each cut takes this share off the price (uniform), rounded to whole EUR.
PRICE_CUT = (0.08, 0.15)
MAX_CUTS = 3


@dataclass(frozen=True)
class Sale:
    """What happened to one listing. Times are in days since its listing time."""

    sold_after: float | None  # None: withdrawn unsold after LISTING_DAYS
    sale_price: float | None
    changes: tuple[tuple[float, float, float], ...]  # (after, old price, new price)
    u_buyer: float  # picks the buyer
    view_lead_minutes: float  # a buyer who had not viewed views this long before buying
    u_return: float
    return_days: float


def simulate_sale(
    rng: np.random.Generator, base_hazard: Floats, price: float, market_value: float
) -> Sale:
    """Walk the listing's daily hazards (``Market.base_hazard``) at its price, cutting it when
    the seller's patience runs out, until the accumulated hazard reaches an Exp(1) draw."""
    threshold = float(rng.exponential())
    patience = int(rng.integers(PATIENCE_DAYS[0], PATIENCE_DAYS[1] + 1))
    cuts = rng.uniform(PRICE_CUT[0], PRICE_CUT[1], MAX_CUTS)
    u_buyer, view_lead, u_return, return_days = (
        float(rng.random()),
        float(rng.uniform(5.0, 60.0)),
        float(rng.random()),
        float(rng.uniform(3.0, 20.0)),
    )
    prices = [price]
    for cut in cuts:
        if prices[-1] < 2.0:  # a cut lowers the price by at least 1 EUR, and never to 0
            break
        prices.append(float(min(prices[-1] - 1.0, round(prices[-1] * (1.0 - cut)))))
    step_price = np.full(LISTING_DAYS, price)
    for k in range(1, len(prices)):
        step_price[k * patience :] = prices[k]
    hazard = base_hazard * (step_price / market_value) ** -ELASTICITY
    cumulative = np.cumsum(hazard)
    day = int(np.searchsorted(cumulative, threshold))
    sold_after: float | None = None
    if day < LISTING_DAYS:
        before = float(cumulative[day - 1]) if day else 0.0
        sold_after = day + (threshold - before) / float(hazard[day])
    changes = tuple(
        (float(k * patience), prices[k - 1], prices[k])
        for k in range(1, len(prices))
        if sold_after is None or k * patience <= sold_after
    )
    return Sale(
        sold_after=sold_after,
        sale_price=float(step_price[day]) if sold_after is not None else None,
        changes=changes,
        u_buyer=u_buyer,
        view_lead_minutes=view_lead,
        u_return=u_return,
        return_days=return_days,
    )
