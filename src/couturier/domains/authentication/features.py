"""The authentication domain's features, declared through the platform's feature interface.

Three batch views and one on-demand view, served together as ``authentication_v1``:

* ``listing_features`` (listing): what the listing itself says: price against the product's
  reference price, photo count, condition, text and serial-number signals.
* ``seller_stats`` (seller): a daily snapshot of the seller's record *as known that day*:
  account age, listings and sales over windows, expert verdicts that had arrived.
* ``product_stats`` (product): daily product and brand aggregates: recent listing volume and
  prices, counterfeit verdicts over 90 days, for the product and for its house.
* ``authentication_derived`` (on demand): ratios and transforms of the above, computed by one
  pandas function offline (training sets) and online (serving).

The labels (verdicts and the experts' control-point reports) are declared here too, as the
label view ``authentication_labels`` (``labels.py``): joined point-in-time for training, never
served.

Every count is over events whose *arrival* time (``created_at``) is at or before the snapshot:
a verdict decided on Monday that reaches the platform on Thursday counts from Thursday on.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd

from couturier.domains.authentication.labels import labels_view
from couturier.features.snapshots import cumulative, epoch_ns, trailing
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

__all__ = ["FEATURES", "derived_features", "listing_row_features"]

LISTING = EntitySpec("listing", "listing_id", "a marketplace listing")
SELLER = EntitySpec("seller", "seller_id", "a seller account")
PRODUCT = EntitySpec("product", "product_id", "a product line of a house")

_DAY = pd.Timedelta(days=1)
_CONDITION_RANK = {"new": 0, "excellent": 1, "good": 2, "fair": 3}


# ---- listing_features ---------------------------------------------------------------------
def listing_row_features(listings: pd.DataFrame) -> pd.DataFrame:
    """Per-listing features from listing fields joined with ``reference_price`` and
    ``serial_format``. One function for the batch job and for a request at serving time."""
    out = pd.DataFrame(index=listings.index)
    out["asking_price"] = listings["asking_price"].astype(float)
    out["price_ratio"] = listings["asking_price"] / listings["reference_price"]
    out["log_price_ratio"] = np.log(out["price_ratio"])
    out["n_photos"] = listings["n_photos"].astype("int64")
    out["condition_rank"] = listings["condition"].map(_CONDITION_RANK).astype("int64")
    out["title_length"] = listings["title"].str.len().astype("int64")
    out["description_length"] = listings["description"].str.len().astype("int64")
    stated = listings["serial_number"].notna()
    out["serial_stated"] = stated.astype("int64")
    valid = pd.Series(False, index=listings.index)
    for fmt, idx in listings.groupby("serial_format").groups.items():
        pattern = str(fmt).replace("A", "[A-Z]").replace("9", "[0-9]")
        serials = listings.loc[idx, "serial_number"]
        valid.loc[idx] = serials.fillna("").str.fullmatch(pattern)
    out["serial_malformed"] = (stated & ~valid).astype("int64")
    return out


def _listing_features(src: SourceData) -> pd.DataFrame:
    listings = src.read(
        "listings",
        [
            "listing_id",
            "seller_id",
            "product_id",
            "brand_id",
            "category",
            "created_at",
            "asking_price",
            "condition",
            "title",
            "description",
            "serial_number",
            "n_photos",
        ],
    )
    listings = listings.merge(src.read("products", ["product_id", "reference_price"])).merge(
        src.read("brands", ["brand_id", "serial_format"])
    )
    out = listing_row_features(listings)
    for col in ("listing_id", "seller_id", "product_id", "brand_id", "category"):
        out[col] = listings[col]
    out[EVENT_TS] = listings["created_at"]
    out[CREATED_TS] = listings["created_at"]
    return out


# ---- daily snapshot helpers -----------------------------------------------------------------
def _snapshot_grid(src: SourceData) -> pd.DatetimeIndex:
    """Day boundaries from the first listing's day to the day after the last arrival."""
    listed = src.read("listings", ["created_at"])["created_at"]
    verdicts = src.read("verdicts", ["created_at"])["created_at"]
    first = listed.min().floor("D")
    last = max(listed.max(), verdicts.max() if len(verdicts) else listed.max()).ceil("D")
    return pd.date_range(first, last, freq="D")


def first_verdicts(src: SourceData) -> pd.DataFrame:
    """One verdict per listing, the first to arrive: what the counts of a seller's, a product's
    and a house's verdicts count. A listing the review console judged twice (an audit's blind
    second opinion, a senior settling a disagreement) is one judged listing, not two."""
    verdicts = src.read("verdicts", ["listing_id", "verdict", "created_at"])
    first = verdicts.sort_values("created_at", kind="stable").drop_duplicates("listing_id")
    return first.sort_index()


def _daily_counts(
    keys: np.ndarray, times: pd.Series, n_keys: int, grid: pd.DatetimeIndex
) -> np.ndarray:
    """cum[k, d]: events of key k that arrived at or before snapshot d."""
    return cumulative(keys, times, n_keys, grid)[1]


# ---- seller_stats ---------------------------------------------------------------------------
def _seller_stats(src: SourceData) -> pd.DataFrame:
    grid = _snapshot_grid(src)
    sellers = src.read("sellers", ["seller_id", "created_at", "prior_sales", "rating"])
    n = int(sellers["seller_id"].max()) + 1
    listings = src.read("listings", ["listing_id", "seller_id", "created_at"])
    owner = listings.set_index("listing_id")["seller_id"]
    inter = src.read("interactions", ["listing_id", "kind", "created_at"])
    sales = inter[inter["kind"] == "purchase"]
    returns = inter[inter["kind"] == "return"]
    verdicts = first_verdicts(src)
    fake = verdicts[verdicts["verdict"] == "counterfeit"]

    listed = _daily_counts(listings["seller_id"].to_numpy(), listings["created_at"], n, grid)
    sold = _daily_counts(owner.loc[sales["listing_id"]].to_numpy(), sales["created_at"], n, grid)
    returned = _daily_counts(
        owner.loc[returns["listing_id"]].to_numpy(), returns["created_at"], n, grid
    )
    judged = _daily_counts(
        owner.loc[verdicts["listing_id"]].to_numpy(), verdicts["created_at"], n, grid
    )
    flagged = _daily_counts(owner.loc[fake["listing_id"]].to_numpy(), fake["created_at"], n, grid)

    seller_idx = sellers["seller_id"].to_numpy()
    created = epoch_ns(sellers["created_at"])
    exists = created[:, None] <= epoch_ns(grid)[None, :]  # (sellers, days)
    rows, days = np.nonzero(exists)
    k = seller_idx[rows]
    snap = grid[days]
    out = pd.DataFrame(
        {
            "seller_id": k.astype("int64"),
            "account_age_days": (epoch_ns(grid)[days] - created[rows]) / 86_400e9,
            "prior_sales": sellers["prior_sales"].to_numpy()[rows],
            "rating": sellers["rating"].to_numpy()[rows],
            "listings_7d": trailing(listed, 7)[k, days],
            "listings_30d": trailing(listed, 30)[k, days],
            "sales_30d": trailing(sold, 30)[k, days],
            "returns_30d": trailing(returned, 30)[k, days],
            "returns_total": returned[k, days],
            "verdicts_total": judged[k, days],
            "counterfeit_verdicts_total": flagged[k, days],
            "counterfeit_verdicts_90d": trailing(flagged, 90)[k, days],
            EVENT_TS: snap,
            CREATED_TS: snap,
        }
    )
    return out


# ---- product_stats --------------------------------------------------------------------------
def _product_stats(src: SourceData) -> pd.DataFrame:
    grid = _snapshot_grid(src)
    products = src.read("products", ["product_id", "brand_id", "reference_price"])
    n_p = int(products["product_id"].max()) + 1
    n_b = int(products["brand_id"].max()) + 1
    listings = src.read(
        "listings", ["listing_id", "product_id", "brand_id", "asking_price", "created_at"]
    )
    listings = listings.merge(products[["product_id", "reference_price"]])
    verdicts = first_verdicts(src).merge(listings[["listing_id", "product_id", "brand_id"]])
    fake = verdicts[verdicts["verdict"] == "counterfeit"]

    def per(key: str, n: int) -> dict[str, np.ndarray]:
        listed = _daily_counts(listings[key].to_numpy(), listings["created_at"], n, grid)
        judged = _daily_counts(verdicts[key].to_numpy(), verdicts["created_at"], n, grid)
        flagged = _daily_counts(fake[key].to_numpy(), fake["created_at"], n, grid)
        return {
            "listed30": trailing(listed, 30),
            "judged90": trailing(judged, 90),
            "flagged90": trailing(flagged, 90),
        }

    prod, brand = per("product_id", n_p), per("brand_id", n_b)
    # mean log price ratio over 30 days: a windowed sum of log ratios / windowed count
    sums = np.zeros((n_p, len(grid)))
    idx = np.searchsorted(epoch_ns(grid), epoch_ns(listings["created_at"]))
    keep = idx < len(grid)
    log_ratio = np.log((listings["asking_price"] / listings["reference_price"]).to_numpy(float))
    np.add.at(sums, (listings["product_id"].to_numpy()[keep], idx[keep]), log_ratio[keep])
    window_sum = trailing(np.cumsum(sums, axis=1), 30)

    p = products["product_id"].to_numpy()
    b = products["brand_id"].to_numpy()
    grid_p, grid_d = np.meshgrid(np.arange(len(p)), np.arange(len(grid)), indexing="ij")
    pi, di = grid_p.ravel(), grid_d.ravel()
    pid, bid = p[pi], b[pi]
    listed30 = prod["listed30"][pid, di]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_log = np.where(listed30 > 0, window_sum[pid, di] / listed30, np.nan)
    return pd.DataFrame(
        {
            "product_id": pid.astype("int64"),
            "product_listings_30d": listed30,
            "product_mean_log_price_ratio_30d": mean_log,
            "product_verdicts_90d": prod["judged90"][pid, di],
            "product_counterfeit_verdicts_90d": prod["flagged90"][pid, di],
            "brand_listings_30d": brand["listed30"][bid, di],
            "brand_verdicts_90d": brand["judged90"][bid, di],
            "brand_counterfeit_verdicts_90d": brand["flagged90"][bid, di],
            EVENT_TS: grid[di],
            CREATED_TS: grid[di],
        }
    )


# ---- on-demand ------------------------------------------------------------------------------
def derived_features(inputs: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """Ratios and transforms, computed the same way for training sets and online requests.

    Columns in, columns out (lists), in plain Python: one row online costs microseconds, and
    Feast runs the same function over a training set's columns. Self-contained (imports and
    constants inside): Feast stores this function's source and runs it from there.
    """
    import math

    prior_verdicts, prior_rate = 2.0, 0.04  # two pseudo-verdicts at the base prevalence

    def num(value: Any) -> float | None:
        if value is None:
            return None
        x = float(value)
        return None if math.isnan(x) else x

    def rate(flagged: Any, judged: Any) -> float:
        return ((num(flagged) or 0.0) + prior_verdicts * prior_rate) / (
            (num(judged) or 0.0) + prior_verdicts
        )

    out: dict[str, list[Any]] = {
        "seller_counterfeit_rate": [],
        "log_account_age_days": [],
        "new_seller": [],
        "price_vs_recent_mean": [],
        "brand_counterfeit_rate_90d": [],
    }
    for age, sv, sf, lpr, pm, bv, bf in zip(
        inputs["account_age_days"],
        inputs["verdicts_total"],
        inputs["counterfeit_verdicts_total"],
        inputs["log_price_ratio"],
        inputs["product_mean_log_price_ratio_30d"],
        inputs["brand_verdicts_90d"],
        inputs["brand_counterfeit_verdicts_90d"],
        strict=True,
    ):
        a, x, m = num(age), num(lpr), num(pm)
        out["seller_counterfeit_rate"].append(rate(sf, sv))
        out["log_account_age_days"].append(math.log1p(max(a, 0.0)) if a is not None else None)
        out["new_seller"].append(int(a is not None and a < 30))
        out["price_vs_recent_mean"].append(x - m if x is not None and m is not None else None)
        out["brand_counterfeit_rate_90d"].append(rate(bf, bv))
    return out


FEATURES = FeatureSet(
    service="authentication",
    version=1,
    root=LISTING,
    description="listing, seller and product signals for counterfeit detection",
    key_from={"seller_id": "listing_features", "product_id": "listing_features"},
    labels=(labels_view(LISTING),),
    views=(
        FeatureViewSpec(
            name="listing_features",
            entity=LISTING,
            ttl=timedelta(days=3650),
            compute=_listing_features,
            description="what the listing itself says",
            fields=(
                FeatureField("brand_id", "int64", default=-1),
                FeatureField("category", "string", default="unknown"),
                FeatureField("asking_price", "float64"),
                FeatureField("price_ratio", "float64"),
                FeatureField("log_price_ratio", "float64"),
                FeatureField("n_photos", "int64", default=0),
                FeatureField("condition_rank", "int64"),
                FeatureField("title_length", "int64", default=0),
                FeatureField("description_length", "int64", default=0),
                FeatureField("serial_stated", "int64", default=0),
                FeatureField("serial_malformed", "int64", default=0),
            ),
        ),
        FeatureViewSpec(
            name="seller_stats",
            entity=SELLER,
            ttl=timedelta(days=2),
            compute=_seller_stats,
            description="the seller's record as known at each day's start",
            fields=(
                FeatureField("account_age_days", "float64", default=0.0),
                FeatureField("prior_sales", "int64", default=0),
                FeatureField("rating", "float64"),
                FeatureField("listings_7d", "int64", default=0),
                FeatureField("listings_30d", "int64", default=0),
                FeatureField("sales_30d", "int64", default=0),
                FeatureField("returns_30d", "int64", default=0),
                FeatureField("returns_total", "int64", default=0),
                FeatureField("verdicts_total", "int64", default=0),
                FeatureField("counterfeit_verdicts_total", "int64", default=0),
                FeatureField("counterfeit_verdicts_90d", "int64", default=0),
            ),
        ),
        FeatureViewSpec(
            name="product_stats",
            entity=PRODUCT,
            ttl=timedelta(days=2),
            compute=_product_stats,
            description="product and house aggregates as known at each day's start",
            fields=(
                FeatureField("product_listings_30d", "int64", default=0),
                FeatureField("product_mean_log_price_ratio_30d", "float64"),
                FeatureField("product_verdicts_90d", "int64", default=0),
                FeatureField("product_counterfeit_verdicts_90d", "int64", default=0),
                FeatureField("brand_listings_30d", "int64", default=0),
                FeatureField("brand_verdicts_90d", "int64", default=0),
                FeatureField("brand_counterfeit_verdicts_90d", "int64", default=0),
            ),
        ),
    ),
    derived=(
        DerivedFeatures(
            name="authentication_derived",
            inputs=("listing_features", "seller_stats", "product_stats"),
            transform=derived_features,
            description="ratios and transforms, one code path offline and online",
            fields=(
                FeatureField("seller_counterfeit_rate", "float64"),
                FeatureField("log_account_age_days", "float64"),
                FeatureField("new_seller", "int64"),
                FeatureField("price_vs_recent_mean", "float64"),
                FeatureField("brand_counterfeit_rate_90d", "float64"),
            ),
        ),
    ),
)
