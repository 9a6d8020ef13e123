"""The pricing examples: every listing with its point-in-time features and what became of it.

Two kinds of example come out of one frame:

* **market value**: listings that sold within :data:`VALUE_WINDOW_DAYS` of being listed, and
  are at least that old at the cut-off (so a listing still waiting is not mistaken for one that
  never sells); the target is the sale price. Sellers cut prices only after 30 days, so this is
  the price such items sell at within a month, the suggestion's own horizon; a longer window
  would add the cut prices of slow sellers and keep the newest month out of training.
* **sale within H days**: listings at least ``H`` days old at the cut-off (30 for both
  horizons, so the two share one set); the label is whether it sold within ``H`` days. Sellers
  reprice only after 30 days, so the label is a sale at the listed price.

The cut-off is the latest arrival the marketplace holds (``Marketplace.at`` cuts it). Examples
are split by listing time: train, then calibration, then an embargo of :data:`MATURE_DAYS`,
then the holdout. In production the newest example a model learns from is at least 30 days
older than the first listing it prices (it had to mature); the embargo gives the holdout the
same distance, so a market that moves shows on the holdout as it will in service.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from couturier.errors import InvalidInputError
from couturier.features import FeatureRepo, TrainingSet, build_training_set
from couturier.marketplace import Marketplace

__all__ = ["MATURE_DAYS", "VALUE_WINDOW_DAYS", "PricingData", "load"]

VALUE_WINDOW_DAYS = 30
MATURE_DAYS = 30
_LISTING_COLUMNS = [
    "listing_id",
    "product_id",
    "brand_id",
    "category",
    "condition",
    "asking_price",
    "listed_at",
    "created_at",
]
_TRUTH = ["market_value", "demand_7d", "demand_30d", "oracle_price", "oracle_sale_p30"]


@dataclass
class PricingData:
    frame: pd.DataFrame  # one row per listing, listing-time order
    cutoff: pd.Timestamp
    training_set: TrainingSet
    #: calibration starts, the embargo starts, the holdout starts
    bounds: tuple[pd.Timestamp, pd.Timestamp, pd.Timestamp]

    def part(self, name: str) -> pd.Series:
        """``train``, ``calibration``, ``embargo`` (used by nothing) or ``holdout``."""
        t = self.frame["listed_at"]
        calibration, embargo, holdout = self.bounds
        masks = {
            "train": t < calibration,
            "calibration": (t >= calibration) & (t < embargo),
            "embargo": (t >= embargo) & (t < holdout),
            "holdout": t >= holdout,
        }
        return masks[name]

    @property
    def value_examples(self) -> pd.Series:
        """Sold within the window, that old, and not judged counterfeit by an expert (a fake
        sells cheap: its price is not the market value of the real thing)."""
        f = self.frame
        sold = (f["days_to_sale"] <= VALUE_WINDOW_DAYS) & (f["age_days"] >= VALUE_WINDOW_DAYS)
        return sold & ~f["judged_counterfeit"]

    @property
    def sale_examples(self) -> pd.Series:
        return self.frame["age_days"] >= MATURE_DAYS

    @property
    def has_truth(self) -> bool:
        return "market_value" in self.frame.columns


def load(market: Marketplace, repo: FeatureRepo, split: tuple[float, float]) -> PricingData:
    """Listings, their features as known when listed, their sales, and the time split."""
    listings = market.read("listings", _LISTING_COLUMNS)
    if listings.empty:
        raise InvalidInputError(
            f"the marketplace at {market.path} has no listings; simulate one first",
            field="listings",
        )
    sales = market.read("sales", ["listing_id", "sold_at", "sale_price", "created_at"])
    cutoff = max(
        listings["created_at"].max(),
        sales["created_at"].max() if len(sales) else listings["created_at"].max(),
    )
    entities = listings[["listing_id", "created_at"]].rename(
        columns={"created_at": "event_timestamp"}
    )
    ts = build_training_set(repo, entities)
    frame = ts.frame.merge(
        listings.drop(columns=["product_id", "brand_id"]), on="listing_id", how="left"
    )
    frame = frame.merge(sales.drop(columns=["created_at"]), on="listing_id", how="left")
    verdicts = market.read("verdicts", ["listing_id", "verdict"])
    fakes = set(verdicts.loc[verdicts["verdict"] == "counterfeit", "listing_id"])
    frame["judged_counterfeit"] = frame["listing_id"].isin(fakes)
    frame["days_to_sale"] = (frame["sold_at"] - frame["listed_at"]).dt.total_seconds() / 86_400
    frame["age_days"] = (cutoff - frame["listed_at"]).dt.total_seconds() / 86_400
    for h in (7, 30):
        frame[f"sold_{h}d"] = (frame["days_to_sale"] <= h).astype(int)
    if market.parts("truth"):
        truth = market.read("truth", ["listing_id", *_TRUTH])
        frame = frame.merge(truth, on="listing_id", how="left")
    frame = frame.sort_values("listed_at", kind="stable").reset_index(drop=True)
    data = PricingData(frame, cutoff, ts, (cutoff, cutoff, cutoff))
    data.bounds = _bounds(frame.loc[data.value_examples, "listed_at"], split, cutoff)
    return data


def _bounds(
    listed: pd.Series, split: tuple[float, float], cutoff: pd.Timestamp
) -> tuple[pd.Timestamp, pd.Timestamp, pd.Timestamp]:
    """The holdout is the last ``1 - split[1]`` of the examples; the embargo the 30 days before
    it; train and calibration share what is left in the ratio ``split[0] : split[1] - split[0]``."""
    times = pd.DatetimeIndex(listed).sort_values()
    times = times.tz_localize("UTC") if times.tz is None else times
    holdout = times[int(split[1] * len(times))] if len(times) else cutoff
    embargo = holdout - pd.Timedelta(days=MATURE_DAYS)
    before = times[times < embargo]
    if len(before) < 200:
        raise InvalidInputError(
            f"{len(before)} listings sold within {VALUE_WINDOW_DAYS} days before "
            f"{embargo:%Y-%m-%d} (the holdout, from {holdout:%Y-%m-%d}, keeps {MATURE_DAYS} "
            "days apart); the recipe needs at least 200; simulate more listings or days",
            field="listings",
        )
    calibration = before[int(split[0] / split[1] * len(before))]
    return calibration, embargo, holdout
