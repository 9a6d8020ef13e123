"""The people and things that exist before any listing: houses, products, sellers, buyers.

Also the seller *propensity*: the probability that a listing is counterfeit given its seller's
observable record at listing time (account age, country, prior sales, rating). Its intercept is
calibrated once so that the average listing has the configured prevalence. Because the
propensity depends only on observable fields, a seller's past verdicts carry no extra information
in the default world, and the oracle stays a bar a model can approach (see ``docs/simulator.md``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from couturier.marketplace._catalog import CATEGORIES, Brand, Product, build_catalog
from couturier.marketplace._config import SimulationConfig
from couturier.marketplace._demand import HOUSE_TREND_SIGMA, Market
from couturier.marketplace._scenarios import RING_FAKE_RATE, RING_SELLERS, SCENARIOS, Scenario

__all__ = ["COUNTRIES", "World", "stream"]

COUNTRIES = ("FR", "IT", "GB", "DE", "US", "JP", "ES", "AE", "HK", "CN")
_COUNTRY_P = np.array([0.16, 0.14, 0.13, 0.10, 0.15, 0.10, 0.07, 0.05, 0.05, 0.05])
_COUNTRY_EFFECT = np.array([0.0, 0.0, 0.0, 0.0, 0.0, -0.3, 0.1, 0.45, 0.6, 0.6])
_CATEGORY_NAMES = tuple(CATEGORIES)

# stream ids: one independent random stream per aspect of a listing (see _generate.py)
STREAMS = {
    name: i
    for i, name in enumerate(
        (
            "world",
            "time",
            "seller",
            "ring",
            "auth",
            "factory",
            "flaws",
            "product",
            "listing",
            "photos",
            "verdict",
            "interactions",
            "calibration",
            "ring_sellers",
            "market",  # the houses' market trends (a world draw of its own: others stay put)
            "demand",  # a listing's sale: when, at what price, to whom, its price cuts
            "report",  # the expert's control-point report with a verdict (_reports.py)
            "experts",  # each expert's habits, drawn once per expert (_reports.py)
        )
    )
}


def stream(seed: int, name: str, index: int = 0) -> np.random.Generator:
    """The random stream ``name`` of item ``index``: independent of every other stream."""
    return np.random.default_rng([seed, STREAMS[name], index])


@dataclass(frozen=True)
class Sellers:
    seller_id: np.ndarray  # int64
    created_day: np.ndarray  # float, days since config.start (negative: before)
    country: np.ndarray  # int index into COUNTRIES
    prior_sales: np.ndarray  # int, sales before the period
    rating: np.ndarray  # float, NaN without sales
    activity: np.ndarray  # relative listing rate
    ring: np.ndarray  # bool: a fraud-ring account (fraud_ring scenario only)


@dataclass(frozen=True)
class Buyers:
    buyer_id: np.ndarray
    joined_day: np.ndarray
    country: np.ndarray
    favourite_brand: np.ndarray
    favourite_category: np.ndarray
    budget: np.ndarray


class World:
    """Everything fixed before the first listing, built deterministically from the config."""

    def __init__(self, config: SimulationConfig) -> None:
        self.config = config
        rng = stream(config.seed, "world")
        self.brands: list[Brand]
        self.products: list[Product]
        self.brands, self.products = build_catalog(config.brands, rng)
        self.brand_popularity = rng.dirichlet(np.full(config.brands, 4.0))
        self.brand_cumulative = np.cumsum(self.brand_popularity)
        self.brand_total = float(self.brand_popularity.sum())
        self.scenario: Scenario = SCENARIOS[config.scenario](config.scenario_start)
        slopes = stream(config.seed, "market").normal(0.0, HOUSE_TREND_SIGMA, config.brands)
        self.market = Market(config.start, slopes, self.brand_popularity, self.scenario)
        self.sellers = self._sellers(rng)
        self.buyers = self._buyers(rng)
        order = np.argsort(self.sellers.created_day[~self.sellers.ring], kind="stable")
        self._base_order = order
        self._base_created = self.sellers.created_day[order]
        self._base_cum = np.cumsum(self.sellers.activity[order])
        self._ring_ids = np.flatnonzero(self.sellers.ring)
        self._buyer_order = np.argsort(self.buyers.joined_day, kind="stable")
        self._buyer_joined = self.buyers.joined_day[self._buyer_order]
        # products per (brand, category) for sampling
        self.products_by = {
            (b.brand_id, c): np.array(
                [
                    p.product_id
                    for p in self.products
                    if p.brand_id == b.brand_id and p.category == c
                ]
            )
            for b in self.brands
            for c in _CATEGORY_NAMES
        }

    # ---- sellers and buyers ---------------------------------------------------------------
    def _sellers(self, rng: np.random.Generator) -> Sellers:
        c = self.config
        n = c.n_sellers
        before = rng.random(n) < 0.85
        created = np.where(
            before,
            -np.minimum(rng.lognormal(np.log(600.0), 0.9, n), 4000.0),  # at most ~11 years old
            rng.uniform(0.0, c.days, n),
        )
        country = rng.choice(len(COUNTRIES), size=n, p=_COUNTRY_P)
        rate = rng.lognormal(np.log(1.0 / 25.0), 0.8, n)  # sales per day before the period
        prior = rng.poisson(np.maximum(-created, 0.0) * rate)
        rating = np.where(prior > 0, np.clip(4.85 - rng.gamma(1.5, 0.18, n), 1.0, 5.0), np.nan)
        activity = rng.lognormal(0.0, 1.0, n)
        ring = np.zeros(n, dtype=bool)
        if c.scenario == "fraud_ring":
            r = stream(c.seed, "ring_sellers")
            start = c.scenario_start
            created = np.concatenate([created, start - r.uniform(0.0, 5.0, RING_SELLERS)])
            country = np.concatenate([country, r.choice([7, 8, 9], size=RING_SELLERS)])
            prior = np.concatenate([prior, np.zeros(RING_SELLERS, dtype=prior.dtype)])
            rating = np.concatenate([rating, np.full(RING_SELLERS, np.nan)])
            activity = np.concatenate([activity, np.ones(RING_SELLERS)])
            ring = np.concatenate([ring, np.ones(RING_SELLERS, dtype=bool)])
        return Sellers(
            seller_id=np.arange(len(created), dtype=np.int64),
            created_day=created,
            country=country,
            prior_sales=prior.astype(np.int64),
            rating=rating,
            activity=activity,
            ring=ring,
        )

    def _buyers(self, rng: np.random.Generator) -> Buyers:
        c = self.config
        n = c.n_buyers
        joined = np.where(
            rng.random(n) < 0.8, -rng.lognormal(np.log(400.0), 0.8, n), rng.uniform(0, c.days, n)
        )
        return Buyers(
            buyer_id=np.arange(n, dtype=np.int64),
            joined_day=joined,
            country=rng.choice(len(COUNTRIES), size=n, p=_COUNTRY_P),
            favourite_brand=rng.choice(c.brands, size=n, p=self.brand_popularity),
            favourite_category=rng.integers(0, len(_CATEGORY_NAMES), n),
            budget=np.round(rng.lognormal(np.log(1500.0), 0.9, n), 0),
        )

    def pick_seller(self, day: float, u: float) -> int:
        """A non-ring seller whose account exists on ``day``, weighted by activity."""
        m = max(1, int(np.searchsorted(self._base_created, day, side="right")))
        j = int(np.searchsorted(self._base_cum[:m], u * self._base_cum[m - 1], side="right"))
        return int(self._base_order[min(j, m - 1)])

    def pick_ring_seller(self, u: float) -> int:
        return int(self._ring_ids[int(u * len(self._ring_ids))])

    def eligible_buyers(self, day: float) -> np.ndarray:
        m = max(1, int(np.searchsorted(self._buyer_joined, day, side="right")))
        return self._buyer_order[:m]

    # ---- propensity -----------------------------------------------------------------------
    def raw_propensity(self, seller: int, day: float) -> float:
        """The seller part of the counterfeit logit, before the calibrated intercept."""
        s = self.sellers
        age = max(day - float(s.created_day[seller]), 0.0)
        rating = float(s.rating[seller])
        return float(
            1.5 * np.exp(-age / 45.0)
            + _COUNTRY_EFFECT[s.country[seller]]
            - 0.22 * np.log1p(float(s.prior_sales[seller]))
            - (0.9 * (rating - 4.6) if not np.isnan(rating) else 0.0)
        )

    @cached_property
    def intercept(self) -> float:
        """The intercept that makes the mean propensity equal the configured prevalence."""
        target = self.config.prevalence
        if target <= 0.0:
            return -np.inf
        if target >= 1.0:
            return np.inf
        rng = stream(self.config.seed, "calibration")
        days = rng.uniform(0.0, self.config.days, 20_000)
        raw = np.array(
            [
                self.raw_propensity(self.pick_seller(d, u), d)
                for d, u in zip(days, rng.random(20_000), strict=True)
            ]
        )
        lo, hi = -30.0, 30.0
        for _ in range(60):
            mid = (lo + hi) / 2
            if np.mean(1.0 / (1.0 + np.exp(-(mid + raw)))) < target:
                lo = mid
            else:
                hi = mid
        return (lo + hi) / 2

    def propensity(self, seller: int, day: float) -> float:
        if self.sellers.ring[seller]:
            return RING_FAKE_RATE
        z = self.intercept + self.raw_propensity(seller, day)
        return float(1.0 / (1.0 + np.exp(-z))) if np.isfinite(z) else float(z > 0)

    def category_index(self, name: str) -> int:
        return _CATEGORY_NAMES.index(name)
