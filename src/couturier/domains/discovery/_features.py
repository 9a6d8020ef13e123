"""The discovery domain's features, declared through the platform's feature interface.

Three batch views and one on-demand view, served together as ``discovery_v1``. A training
example (and a request) is about a buyer, a candidate listing and the buyer's affinity to that
listing's house, so its join keys are ``buyer_id``, ``listing_id`` and ``buyer_brand``:

* ``buyer_activity`` (buyer): the buyer's budget and tastes, and their views, likes and
  purchases as known at each moment they changed;
* ``listing_activity`` (listing): what the listing is (price, house, product, condition) and
  how the market has treated it: views, likes, and whether it has sold;
* ``buyer_brand_affinity`` (buyer x house, one integer key): how often this buyer has looked
  at, liked or bought this house;
* ``discovery_derived`` (on demand): price against budget, and whether the listing is of the
  buyer's favourite house and category.

Rows are written when a value changes (each interaction), not on a daily grid: a listing that
nobody looks at costs one row. Every count is over interactions whose *arrival* time
(``created_at``) is at or before the row's time.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd

from couturier.errors import InvalidInputError
from couturier.features.types import (
    CREATED_TS,
    EVENT_TS,
    DerivedFeatures,
    EntitySpec,
    FeatureField,
    FeatureSet,
    FeatureViewSpec,
    SourceData,
)

__all__ = [
    "BRAND_SLOTS",
    "FEATURES",
    "MAX_BUYER_ID",
    "buyer_brand_key",
    "derived_features",
]

BUYER = EntitySpec("buyer", "buyer_id", "a buyer account")
LISTING = EntitySpec("listing", "listing_id", "a marketplace listing")
BUYER_BRAND = EntitySpec(
    "buyer_brand", "buyer_brand", "a buyer and a house: buyer_id * BRAND_SLOTS + brand_id"
)

#: ``buyer_brand = buyer_id * BRAND_SLOTS + brand_id``: one int64 key for a pair (a Feast view
#: has one entity here); the simulator has at most 64 houses.
BRAND_SLOTS = 1024
_CONDITION_RANK = {"new": 0, "excellent": 1, "good": 2, "fair": 3}
_WEIGHT = {"view": 1.0, "like": 3.0, "purchase": 5.0, "return": -5.0}


#: The largest buyer id whose ``buyer_brand`` key fits in int64.
MAX_BUYER_ID = (2**63 - 1) // BRAND_SLOTS - 1


def buyer_brand_key(buyer_id: Any, brand_id: Any) -> Any:
    """The ``buyer_brand`` join key of a buyer and a house (scalars or arrays)."""
    buyers = np.asarray(buyer_id, dtype=np.int64)
    if buyers.size and int(buyers.max()) > MAX_BUYER_ID:
        raise InvalidInputError(
            f"buyer_id {int(buyers.max())} is above {MAX_BUYER_ID}, the largest whose buyer x "
            "house key fits in 64 bits; buyer ids must stay below it",
            field="buyer_id",
        )
    return buyers * BRAND_SLOTS + np.asarray(brand_id, np.int64)


def _cumulative(events: pd.DataFrame, key: str, kinds: tuple[str, ...]) -> pd.DataFrame:
    """Per key, a row at each arrival with the running count of each kind of interaction."""
    events = events.sort_values(["created_at", "interaction_id"], kind="stable")
    out = pd.DataFrame({key: events[key].to_numpy()})
    for kind in kinds:
        hit = (events["kind"] == kind).astype("int64").to_numpy()
        out[f"{kind}s"] = pd.Series(hit).groupby(out[key].to_numpy()).cumsum().to_numpy()
    out[EVENT_TS] = events["created_at"].to_numpy()
    # several interactions of one key in the same microsecond: keep the last running count
    return out.drop_duplicates([key, EVENT_TS], keep="last")


def _interactions(src: SourceData) -> pd.DataFrame:
    inter = src.read(
        "interactions", ["interaction_id", "listing_id", "buyer_id", "kind", "created_at"]
    )
    listings = src.read("listings", ["listing_id", "brand_id"])
    return inter.merge(listings, on="listing_id", how="inner")


# ---- buyer_activity -----------------------------------------------------------------------
def _buyer_activity(src: SourceData) -> pd.DataFrame:
    buyers = src.read(
        "buyers", ["buyer_id", "joined_at", "favourite_brand_id", "favourite_category", "budget"]
    )
    counts = _cumulative(_interactions(src), "buyer_id", ("view", "like", "purchase"))
    counts = counts.rename(
        columns={"views": "buyer_views", "likes": "buyer_likes", "purchases": "buyer_purchases"}
    )
    joined = pd.DataFrame(
        {"buyer_id": buyers["buyer_id"], "buyer_views": 0, "buyer_likes": 0, "buyer_purchases": 0}
    )
    joined[EVENT_TS] = buyers["joined_at"]
    rows = pd.concat([joined, counts], ignore_index=True)
    out = rows.merge(buyers.drop(columns=["joined_at"]), on="buyer_id", how="inner")
    out["budget"] = out["budget"].astype(float)
    out = out.rename(columns={"favourite_brand_id": "favourite_brand"})
    out[CREATED_TS] = out[EVENT_TS]
    return out.sort_values([EVENT_TS, "buyer_id"], kind="stable").reset_index(drop=True)


# ---- listing_activity ---------------------------------------------------------------------
def _listing_activity(src: SourceData) -> pd.DataFrame:
    listings = src.read(
        "listings",
        [
            "listing_id",
            "product_id",
            "brand_id",
            "category",
            "asking_price",
            "condition",
            "created_at",
        ],
    )
    counts = _cumulative(_interactions(src), "listing_id", ("view", "like", "purchase", "return"))
    counts["sold"] = (counts["purchases"] > counts["returns"]).astype("int64")
    counts = counts.drop(columns=["purchases", "returns"])
    counts = counts.rename(columns={"views": "listing_views", "likes": "listing_likes"})
    listed = pd.DataFrame(
        {"listing_id": listings["listing_id"], "listing_views": 0, "listing_likes": 0, "sold": 0}
    )
    listed[EVENT_TS] = listings["created_at"]
    rows = pd.concat([listed, counts], ignore_index=True)
    facts = listings.drop(columns=["created_at"]).assign(
        condition_rank=listings["condition"].map(_CONDITION_RANK).astype("int64"),
        listed_at_s=listings["created_at"].astype("int64") // 10**6,  # epoch seconds (us unit)
    )
    out = rows.merge(facts.drop(columns=["condition"]), on="listing_id", how="inner")
    out["asking_price"] = out["asking_price"].astype(float)
    out[CREATED_TS] = out[EVENT_TS]
    return out.sort_values([EVENT_TS, "listing_id"], kind="stable").reset_index(drop=True)


# ---- buyer_brand_affinity -----------------------------------------------------------------
def _buyer_brand_affinity(src: SourceData) -> pd.DataFrame:
    inter = _interactions(src)
    inter["buyer_brand"] = buyer_brand_key(inter["buyer_id"], inter["brand_id"])
    inter = inter.sort_values(["created_at", "interaction_id"], kind="stable")
    weight = inter["kind"].map(_WEIGHT).astype(float).to_numpy()
    out = pd.DataFrame({"buyer_brand": inter["buyer_brand"].to_numpy()})
    out["affinity"] = pd.Series(weight).groupby(out["buyer_brand"].to_numpy()).cumsum().to_numpy()
    out["brand_interactions"] = out.groupby("buyer_brand").cumcount().to_numpy() + 1
    out[EVENT_TS] = inter["created_at"].to_numpy()
    out = out.drop_duplicates(["buyer_brand", EVENT_TS], keep="last")
    out[CREATED_TS] = out[EVENT_TS]
    return out.reset_index(drop=True)


# ---- discovery_derived --------------------------------------------------------------------
def derived_features(inputs: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """Price against the buyer's budget; the buyer's favourite house and category (1/0, or
    missing when either side is unknown: a declared default -1 or "unknown" must not match
    another default). Self-contained (Feast runs its source): one code path offline and online."""
    import math

    def match(a: Any, b: Any) -> float | None:
        unknown = (None, -1, "unknown")
        return None if a in unknown or b in unknown else float(a == b)

    out: dict[str, list[Any]] = {
        "price_to_budget": [],
        "favourite_brand_match": [],
        "favourite_category_match": [],
    }
    for price, budget, brand, fav_brand, cat, fav_cat in zip(
        inputs["asking_price"],
        inputs["budget"],
        inputs["brand_id"],
        inputs["favourite_brand"],
        inputs["category"],
        inputs["favourite_category"],
        strict=True,
    ):
        ok = price is not None and budget is not None and budget > 0
        out["price_to_budget"].append(math.log(price / budget) if ok else None)
        out["favourite_brand_match"].append(match(brand, fav_brand))
        out["favourite_category_match"].append(match(cat, fav_cat))
    return out


FEATURES = FeatureSet(
    service="discovery",
    version=1,
    root=BUYER,
    description="buyer, listing and buyer x house features for ranking recommendations",
    views=(
        FeatureViewSpec(
            name="buyer_activity",
            entity=BUYER,
            ttl=timedelta(days=3650),
            compute=_buyer_activity,
            description="the buyer's budget, tastes and running interaction counts",
            fields=(
                FeatureField("budget", "float64"),
                FeatureField("favourite_brand", "int64", default=-1),
                FeatureField("favourite_category", "string", default="unknown"),
                FeatureField("buyer_views", "int64", default=0),
                FeatureField("buyer_likes", "int64", default=0),
                FeatureField("buyer_purchases", "int64", default=0),
            ),
        ),
        FeatureViewSpec(
            name="listing_activity",
            entity=LISTING,
            ttl=timedelta(days=3650),
            compute=_listing_activity,
            description="what the listing is, and its running views, likes and sold flag",
            fields=(
                FeatureField("product_id", "int64", default=-1),
                FeatureField("brand_id", "int64", default=-1),
                FeatureField("category", "string", default="unknown"),
                FeatureField("asking_price", "float64"),
                FeatureField("condition_rank", "int64", default=2),
                FeatureField("listed_at_s", "int64", default=0),
                FeatureField("listing_views", "int64", default=0),
                FeatureField("listing_likes", "int64", default=0),
                FeatureField("sold", "int64", default=0),
            ),
        ),
        FeatureViewSpec(
            name="buyer_brand_affinity",
            entity=BUYER_BRAND,
            ttl=timedelta(days=3650),
            compute=_buyer_brand_affinity,
            description="weighted running interactions of a buyer with a house",
            fields=(
                FeatureField("affinity", "float64", default=0.0),
                FeatureField("brand_interactions", "int64", default=0),
            ),
        ),
    ),
    derived=(
        DerivedFeatures(
            name="discovery_derived",
            inputs=("buyer_activity", "listing_activity"),
            transform=derived_features,
            description="price against budget; favourite house and category matches",
            fields=(
                FeatureField("price_to_budget", "float64"),
                FeatureField("favourite_brand_match", "float64"),
                FeatureField("favourite_category_match", "float64"),
            ),
        ),
    ),
)
