"""The recipe's data: what a marketplace has (listings, photos, verdicts), checked, and its splits.

Time splits, oldest to newest (listing time; labels must have arrived by the cutoff)::

    |------ component period ------|-- fusion fold --|========= holdout =========|
    |  listing model, image model, |  stacking,      |  final verdicts; nothing  |
    |  references (its newest part |  calibration,   |  here is used to fit      |
    |  stops the image model)      |  thresholds     |  anything                 |
                                                     ^ cutoff

Every photo and listing is checked before any training starts, so bad input stops the recipe
at once, naming the row, the field and the rule.

Only the simulator has a ``truth`` table (the factory, the flaws, the oracle's probability).
When a marketplace has one, its ``oracle_p_counterfeit`` and ``factory_id`` join the frame so
the report can put the oracle beside the model; training, evaluation and registration never
read them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from couturier.domains.authentication import image_model
from couturier.domains.authentication.graph import GraphScores
from couturier.domains.authentication.photos import decode_photo
from couturier.errors import InvalidInputError
from couturier.features import FeatureRepo, TrainingSet, build_label_set, build_training_set
from couturier.marketplace import CATEGORIES, Marketplace

__all__ = [
    "ORACLE",
    "RecipeData",
    "Scored",
    "Splits",
    "has_truth",
    "holdout_cutoff",
    "load_photos",
    "photo_contexts",
    "read_frame",
    "read_listings",
    "slices",
]

#: The column the oracle's probability arrives in, from the simulator's ``truth`` table.
ORACLE = "oracle_p_counterfeit"
_TRUTH = (ORACLE, "factory_id")
#: Where labels arrive: a verdict, and its expert's control-point report.
_LABEL_TABLES = ("verdicts", "control_points")
_REQUIRED = ("listing_id", "brand_id", "category", "asking_price", "created_at", "n_photos")
_PRICE_BANDS = [0.0, 500.0, 2000.0, 5000.0, np.inf]


@dataclass
class Scored:
    """One period scored through a graph, with what evaluation needs beside the scores."""

    frame: pd.DataFrame  # one row per listing: ids, label, slices, price (and oracle, if known)
    scores: GraphScores
    photos: pd.DataFrame  # one row per photo: photo_id, listing_id, view, image (bytes)


def has_truth(market: Marketplace) -> bool:
    """Whether ``market`` holds the simulator's ``truth`` table (a real marketplace does not).

    Reading a table that was never written gives an empty frame, not an error, so absence is
    told by the table's parts on disk.
    """
    return bool(market.parts("truth"))


def read_listings(market: Marketplace) -> pd.DataFrame:
    """Every listing with the fields the recipe needs, refusing one that breaks a rule."""
    listings = market.read("listings", list(_REQUIRED))
    for column in _REQUIRED:
        bad = listings[column].isna()
        if bad.any():
            row = listings.loc[bad].index[0]
            raise InvalidInputError(
                f"listing row {row} (listing_id {listings.at[row, 'listing_id']}) has no "
                f"{column}; every listing needs {', '.join(_REQUIRED)}; fix or drop it",
                field=column,
            )
    price = listings["asking_price"]
    if (price <= 0).any() or not np.isfinite(price).all():
        row = listings.index[~((price > 0) & np.isfinite(price))][0]
        raise InvalidInputError(
            f"listing_id {listings.at[row, 'listing_id']} asks {price[row]}; prices are finite "
            "and > 0",
            field="asking_price",
        )
    unknown = set(listings["category"]) - set(CATEGORIES)
    if unknown:
        raise InvalidInputError(
            f"category {sorted(unknown)[0]!r} is unknown; accepted: {', '.join(CATEGORIES)}",
            field="category",
        )
    return listings


def holdout_cutoff(listings: pd.DataFrame, holdout_share: float) -> pd.Timestamp:
    """Where the holdout starts: the newest ``holdout_share`` of the listings are in it."""
    return pd.Timestamp(listings["created_at"].quantile(1 - holdout_share))


def read_frame(
    market: Marketplace,
    repo: FeatureRepo,
    listings: pd.DataFrame,
    cutoff: pd.Timestamp | None = None,
) -> tuple[pd.DataFrame, TrainingSet]:
    """The point-in-time training set, one row per listing in listing-time order, with its
    labels and, from ``truth`` when the marketplace has it, the oracle's probability and the
    factory.

    Labels (the verdict, ``label``, and the expert's report, ``labels.result_column``) come
    from the label view as known at ``cutoff`` for the listings before it, which is all a
    model trained then could learn from, and as known today for the others (the holdout's
    final verdicts). ``cutoff=None``: every label as known today. NaN ``verdict``: none yet.
    """
    entities = listings[["listing_id", "created_at"]].rename(
        columns={"created_at": "event_timestamp"}
    )
    ts = build_training_set(repo, entities)
    frame = ts.frame.merge(
        listings[["listing_id", "asking_price"]].rename(columns={"asking_price": "price"}),
        on="listing_id",
    )
    arrivals = [market.read(t, ["created_at"])["created_at"] for t in _LABEL_TABLES]
    today = pd.concat([listings["created_at"], *arrivals]).max()
    as_of = pd.Series(today, index=entities.index)
    if cutoff is not None:
        before_cutoff = entities["event_timestamp"] < cutoff
        as_of[before_cutoff] = cutoff
    known = build_label_set(repo, entities.assign(event_timestamp=as_of))
    known = known.drop(columns=["event_timestamp"]).drop_duplicates("listing_id")
    frame = frame.merge(known, on="listing_id", how="left")
    if has_truth(market):
        truth = market.read("truth", ["listing_id", *_TRUTH])
        frame = frame.merge(truth, on="listing_id", how="left")
    frame["label"] = (frame["verdict"] == "counterfeit").astype(int)
    return frame.sort_values("event_timestamp", kind="stable").reset_index(drop=True), ts


def load_photos(market: Marketplace, listing_ids: Any) -> tuple[pd.DataFrame, np.ndarray]:
    """The photos of ``listing_ids``, checked and decoded (``photo_id`` named on failure)."""
    wanted = pd.Index(np.asarray(listing_ids))
    parts = [
        part[part["listing_id"].isin(wanted)]
        for part in market.iter_parts("photos", ["photo_id", "listing_id", "view", "image"])
    ]
    photos = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    missing = wanted.difference(pd.Index(photos.get("listing_id", [])))
    if len(missing):
        raise InvalidInputError(
            f"listing_id {missing[0]} has no photo; a listing needs 1-4 photos (was the market "
            "simulated with render_photos=False?)",
            field="photos",
        )
    images = np.empty((len(photos), 96, 96, 3), dtype=np.uint8)
    for i, (pid, data) in enumerate(zip(photos["photo_id"], photos["image"], strict=True)):
        images[i] = decode_photo(data, field=f"photo_id {pid}")
    return photos, images


def photo_contexts(photos: pd.DataFrame, brand_of: pd.Series) -> np.ndarray:
    """Each photo's context code (house x view), its house looked up by listing."""
    return image_model.context_codes(photos["listing_id"].map(brand_of), photos["view"])


def slices(frame: pd.DataFrame) -> dict[str, Any]:
    """The slices every evaluation reports and the gate compares: house, category, price band."""
    band = pd.cut(frame["price"], _PRICE_BANDS, labels=["<500", "500-2k", "2k-5k", ">5k"])
    return {
        "brand": frame["brand_id"].astype(int).to_numpy(),
        "category": frame["category"].astype(str).to_numpy(),
        "price_band": band.astype(str).to_numpy(),
    }


@dataclass(frozen=True)
class Splits:
    """The time splits, as boolean masks over the frame's rows (see the module docstring)."""

    cutoff: pd.Timestamp  # the holdout starts here
    fusion_start: pd.Timestamp  # the fusion fold starts here
    valid_start: pd.Timestamp  # the image model's early-stopping photos start here
    component: pd.Series  # labelled, before the fusion fold: the components train here
    fusion_fold: pd.Series  # labelled, from fusion_start to the cutoff
    holdout: pd.Series  # judged listings from the cutoff on

    @classmethod
    def of(
        cls,
        frame: pd.DataFrame,
        *,
        cutoff: pd.Timestamp,
        fusion_share: float,
        image_valid_share: float,
    ) -> Splits:
        """Cut ``frame`` (in listing-time order, its labels as known at ``cutoff`` before it:
        ``read_frame``) by the shares of its listings."""
        times = frame["event_timestamp"]
        labelled = (times < cutoff) & frame["verdict"].notna()
        fusion_start = pd.Timestamp(times[labelled].quantile(1 - fusion_share))
        component = labelled & (times < fusion_start)
        valid_start = pd.Timestamp(times[component].quantile(1 - image_valid_share))
        return cls(
            cutoff=cutoff,
            fusion_start=fusion_start,
            valid_start=valid_start,
            component=component,
            fusion_fold=labelled & (times >= fusion_start),
            holdout=(times >= cutoff) & frame["verdict"].notna(),
        )

    @property
    def used(self) -> pd.Series:
        return self.component | self.fusion_fold | self.holdout


@dataclass
class RecipeData:
    """Everything the recipe trains and judges on, read once: listings, photos, splits."""

    frame: pd.DataFrame  # see read_frame
    training_set: TrainingSet
    splits: Splits
    photos: pd.DataFrame  # the photos of every listing in a split, in the store's order
    images: np.ndarray  # decoded, one per row of photos
    contexts: np.ndarray  # house x view code, one per row of photos

    @classmethod
    def load(
        cls,
        market: Marketplace,
        repo: FeatureRepo,
        *,
        holdout_share: float,
        fusion_share: float,
        image_valid_share: float,
    ) -> RecipeData:
        """Read, check and split ``market``; decode the photos of every listing in a split."""
        listings = read_listings(market)
        cutoff = holdout_cutoff(listings, holdout_share)
        frame, ts = read_frame(market, repo, listings, cutoff)
        splits = Splits.of(
            frame,
            cutoff=cutoff,
            fusion_share=fusion_share,
            image_valid_share=image_valid_share,
        )
        photos, images = load_photos(market, frame.loc[splits.used, "listing_id"])
        contexts = photo_contexts(photos, frame.set_index("listing_id")["brand_id"])
        return cls(frame, ts, splits, photos, images, contexts)

    @property
    def holdout_id(self) -> str:
        """Names the holdout (training-set fingerprint @ cutoff): champion and candidate match."""
        return f"{self.training_set.fingerprint[:16]}@{self.splits.cutoff.isoformat()}"

    @property
    def has_oracle(self) -> bool:
        return ORACLE in self.frame.columns

    @property
    def photo_listing(self) -> np.ndarray:
        return self.photos["listing_id"].to_numpy()

    @property
    def photo_label(self) -> np.ndarray:
        """Each photo's label: its listing's verdict."""
        return self.photos["listing_id"].map(self.frame.set_index("listing_id")["label"]).to_numpy()

    @property
    def photo_time(self) -> pd.Series:
        return self.photos["listing_id"].map(self.frame.set_index("listing_id")["event_timestamp"])

    def photos_of(self, mask: pd.Series) -> np.ndarray:
        """Which photos belong to the listings where ``mask`` (over the frame) is True."""
        return self.photos["listing_id"].isin(self.frame.loc[mask, "listing_id"]).to_numpy()
