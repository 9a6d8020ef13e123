"""The pricing domain's features, declared through the platform's feature interface.

Four batch views, served together as ``pricing_v1``. A training example (and a request) is
about a listing; the other keys (product, house, seller) come with it:

* ``pricing_listing`` (listing): what the listing says of itself: house, category, condition,
  photo count, the season, and what its description says is included (box, receipt, wear);
* ``product_market`` (product): the product line's reference price and how its sales and
  asking prices have run, as known at each day's start;
* ``house_market`` (house): the house's market as known at each day's start: its recent
  asking-price index over 3, 7 and 30 days (sellers price against the market, so this moves
  first), its sale-price index, volume and sell-through;
* ``seller_profile`` (seller): the seller's rating, prior sales and account creation.

Price indices are means of ``log(price / reference price)``. Every figure counts only what had
*arrived* (``created_at``) by the snapshot: a sale decided on Monday that reaches the platform on
Tuesday counts from Tuesday's snapshot on.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd

from couturier.features.snapshots import cumulative, trailing
from couturier.features.types import (
    CREATED_TS,
    EVENT_TS,
    EntitySpec,
    FeatureField,
    FeatureSet,
    FeatureViewSpec,
    SourceData,
)

__all__ = ["CONDITION_RANK", "FEATURES", "MIN_INDEX_EVENTS", "listing_row"]

LISTING = EntitySpec("listing", "listing_id", "a marketplace listing")
PRODUCT = EntitySpec("product", "product_id", "a product line of a house")
HOUSE = EntitySpec("house", "brand_id", "a luxury house")
SELLER = EntitySpec("seller", "seller_id", "a seller account")

CONDITION_RANK = {"new": 0, "excellent": 1, "good": 2, "fair": 3}
CATEGORY_CODE = {"bag": 0, "small_leather_goods": 1, "shoes": 2, "watch": 3, "scarf": 4}
#: what a description says is included, as the phrases sellers use (case-insensitive)
INCLUDED = {
    "has_box": ("original box",),
    "no_box": ("no box",),
    "has_receipt": ("receipt",),
    "signs_of_wear": ("signs of wear",),
    "hardware_shines": ("hardware shines",),
}
#: an index over fewer events than this is missing (NaN), not a guess
MIN_INDEX_EVENTS = 5
#: the 3-day asking index, the fastest to follow a market that moves, needs this many listings
MIN_FAST_INDEX_EVENTS = 15


# ---- pricing_listing: one function for the batch job and for a request ----------------------
def listing_row(
    *,
    category: str,
    condition: str,
    description: str,
    n_photos: int,
    listed_at: pd.Timestamp,
) -> dict[str, Any]:
    """The listing's own features. ``description`` may be empty (nothing is said included)."""
    text = description.lower()
    day = listed_at.dayofyear
    row: dict[str, Any] = {
        "category_code": CATEGORY_CODE[category],
        "condition_rank": CONDITION_RANK[condition],
        "n_photos": int(n_photos),
        "season_sin": math.sin(2 * math.pi * day / 365.25),
        "season_cos": math.cos(2 * math.pi * day / 365.25),
    }
    for name, phrases in INCLUDED.items():
        row[name] = int(any(p in text for p in phrases))
    return row


def _pricing_listing(src: SourceData) -> pd.DataFrame:
    listings = src.read(
        "listings",
        [
            "listing_id",
            "seller_id",
            "product_id",
            "brand_id",
            "category",
            "condition",
            "description",
            "n_photos",
            "created_at",
        ],
    )
    rows = [
        listing_row(category=c, condition=k, description=d or "", n_photos=n, listed_at=t)
        for c, k, d, n, t in zip(
            listings["category"],
            listings["condition"],
            listings["description"],
            listings["n_photos"],
            listings["created_at"],
            strict=True,
        )
    ]
    out = pd.DataFrame(rows, index=listings.index)
    for col in ("listing_id", "seller_id", "product_id", "brand_id"):
        out[col] = listings[col].astype("int64")
    out[EVENT_TS] = listings["created_at"]
    out[CREATED_TS] = listings["created_at"]
    return out


# ---- daily market snapshots -----------------------------------------------------------------
def _grid(src: SourceData) -> pd.DatetimeIndex:
    """Day boundaries from the first listing's day to the day after the last arrival."""
    listed = src.read("listings", ["created_at"])["created_at"]
    sold = src.read("sales", ["created_at"])["created_at"]
    last = max(listed.max(), sold.max()) if len(sold) else listed.max()
    return pd.date_range(listed.min().floor("D"), last.ceil("D"), freq="D")


def _mean(sums: np.ndarray, counts: np.ndarray, minimum: int = MIN_INDEX_EVENTS) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts >= minimum, sums / np.maximum(counts, 1), np.nan)


def _market_events(src: SourceData) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Listings and sales with their product's reference price and log price ratios."""
    products = src.read("products", ["product_id", "reference_price"])
    listings = src.read(
        "listings", ["listing_id", "product_id", "brand_id", "asking_price", "created_at"]
    ).merge(products, on="product_id")
    listings["log_ratio"] = np.log(listings["asking_price"] / listings["reference_price"])
    sales = src.read("sales", ["listing_id", "sale_price", "created_at"]).merge(
        listings[["listing_id", "product_id", "brand_id", "reference_price"]], on="listing_id"
    )
    sales["log_ratio"] = np.log(sales["sale_price"] / sales["reference_price"])
    return listings, sales


def _per_key(
    frame: pd.DataFrame, key: str, n: int, grid: pd.DatetimeIndex
) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative (sum of log price ratios, count) per key and snapshot."""
    keys = frame[key].to_numpy(np.int64)
    return cumulative(keys, frame["created_at"], n, grid, frame["log_ratio"].to_numpy(float))


def _snapshot(
    ids: np.ndarray, key: str, grid: pd.DatetimeIndex, cols: Mapping[str, np.ndarray]
) -> pd.DataFrame:
    """One row per (id, day) from (keys, days) arrays."""
    kk, dd = np.meshgrid(np.arange(len(ids)), np.arange(len(grid)), indexing="ij")
    k, d = kk.ravel(), dd.ravel()
    out = pd.DataFrame({key: ids[k].astype("int64")})
    for name, values in cols.items():
        out[name] = values[ids[k], d]
    out[EVENT_TS] = grid[d]
    out[CREATED_TS] = grid[d]
    return out


def _product_market(src: SourceData) -> pd.DataFrame:
    grid = _grid(src)
    products = src.read("products", ["product_id", "reference_price"])
    ids = products["product_id"].to_numpy(np.int64)
    n = int(ids.max()) + 1
    listings, sales = _market_events(src)
    ask_sum, ask_n = _per_key(listings, "product_id", n, grid)
    sale_sum, sale_n = _per_key(sales, "product_id", n, grid)
    reference = np.full(n, np.nan)
    reference[ids] = products["reference_price"].to_numpy(float)
    return _snapshot(
        ids,
        "product_id",
        grid,
        {
            "reference_price": np.repeat(reference[:, None], len(grid), axis=1),
            "product_ask_index_30d": _mean(trailing(ask_sum, 30), trailing(ask_n, 30)),
            "product_sale_index_90d": _mean(trailing(sale_sum, 90), trailing(sale_n, 90)),
            "product_sales_90d": trailing(sale_n, 90),
        },
    )


def _house_market(src: SourceData) -> pd.DataFrame:
    grid = _grid(src)
    ids = src.read("brands", ["brand_id"])["brand_id"].to_numpy(np.int64)
    n = int(ids.max()) + 1
    listings, sales = _market_events(src)
    ask_sum, ask_n = _per_key(listings, "brand_id", n, grid)
    sale_sum, sale_n = _per_key(sales, "brand_id", n, grid)
    listed30, sold30 = trailing(ask_n, 30), trailing(sale_n, 30)
    with np.errstate(invalid="ignore", divide="ignore"):
        sell_through = np.where(listed30 > 0, sold30 / np.maximum(listed30, 1), np.nan)
    return _snapshot(
        ids,
        "brand_id",
        grid,
        {
            "house_ask_index_3d": _mean(
                trailing(ask_sum, 3), trailing(ask_n, 3), MIN_FAST_INDEX_EVENTS
            ),
            "house_ask_index_7d": _mean(trailing(ask_sum, 7), trailing(ask_n, 7)),
            "house_ask_index_30d": _mean(trailing(ask_sum, 30), listed30),
            "house_sale_index_30d": _mean(trailing(sale_sum, 30), sold30),
            "house_sales_30d": sold30,
            "house_sell_through_30d": sell_through,
        },
    )


def _seller_profile(src: SourceData) -> pd.DataFrame:
    sellers = src.read("sellers", ["seller_id", "created_at", "prior_sales", "rating"])
    out = sellers[["seller_id", "prior_sales", "rating"]].copy()
    out[EVENT_TS] = sellers["created_at"]
    out[CREATED_TS] = sellers["created_at"]
    return out


FEATURES = FeatureSet(
    service="pricing",
    version=1,
    root=LISTING,
    description="listing, product, house-market and seller signals for price suggestions",
    key_from={
        "product_id": "pricing_listing",
        "brand_id": "pricing_listing",
        "seller_id": "pricing_listing",
    },
    views=(
        FeatureViewSpec(
            name="pricing_listing",
            entity=LISTING,
            ttl=timedelta(days=3650),
            compute=_pricing_listing,
            description="what the listing says of itself",
            fields=(
                FeatureField("category_code", "int64"),
                FeatureField("condition_rank", "int64"),
                FeatureField("n_photos", "int64", default=0),
                FeatureField("season_sin", "float64"),
                FeatureField("season_cos", "float64"),
                *(FeatureField(name, "int64", default=0) for name in INCLUDED),
            ),
        ),
        FeatureViewSpec(
            name="product_market",
            entity=PRODUCT,
            ttl=timedelta(days=2),
            compute=_product_market,
            description="the product line's reference price and recent prices",
            fields=(
                FeatureField("reference_price", "float64"),
                FeatureField("product_ask_index_30d", "float64"),
                FeatureField("product_sale_index_90d", "float64"),
                FeatureField("product_sales_90d", "int64", default=0),
            ),
        ),
        FeatureViewSpec(
            name="house_market",
            entity=HOUSE,
            ttl=timedelta(days=2),
            compute=_house_market,
            description="the house's price indices, volume and sell-through",
            fields=(
                FeatureField("house_ask_index_3d", "float64"),
                FeatureField("house_ask_index_7d", "float64"),
                FeatureField("house_ask_index_30d", "float64"),
                FeatureField("house_sale_index_30d", "float64"),
                FeatureField("house_sales_30d", "int64", default=0),
                FeatureField("house_sell_through_30d", "float64"),
            ),
        ),
        FeatureViewSpec(
            name="seller_profile",
            entity=SELLER,
            ttl=timedelta(days=3650),
            compute=_seller_profile,
            description="the seller's rating and record",
            fields=(
                FeatureField("rating", "float64"),
                FeatureField("prior_sales", "int64", default=0),
            ),
        ),
    ),
)
