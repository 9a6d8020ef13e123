"""Training marketplace recommendations: candidates as of a time, examples, the ranker.

Time is what keeps this honest. A model "as of ``at``" sees interactions that had *arrived*
by ``at`` (their ``created_at``); its examples are the buyers' interactions in the window that
follows, and its features come from the feature store point-in-time, as of ``at``. The ranker
is trained one window earlier than the holdout it is judged on, so the holdout is never seen.

Relevance is graded: a view 1, a like 2, a purchase 3 (the best of a buyer's interactions with
a listing in the window).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from couturier.domains.discovery._candidates import CANDIDATE_COLUMNS, Candidates
from couturier.domains.discovery._features import FEATURES, buyer_brand_key
from couturier.domains.discovery._ranker import on_float32_grid
from couturier.domains.discovery._recommenders import EASE, IALS
from couturier.features import FeatureRepo, build_training_set
from couturier.features.types import SourceData

__all__ = [
    "GRADES",
    "RANKER_FEATURES",
    "Examples",
    "RecsConfig",
    "available_listings",
    "examples",
    "fit_candidates",
    "ranker_matrix",
    "serving_matrix",
]

GRADES = {"view": 1, "like": 2, "purchase": 3}

#: The ranker's inputs, in order: the feature store's numbers and the candidate stage's.
RANKER_FEATURES: tuple[str, ...] = (
    "budget",
    "buyer_views",
    "buyer_likes",
    "buyer_purchases",
    "asking_price",
    "condition_rank",
    "listing_views",
    "listing_likes",
    "affinity",
    "brand_interactions",
    "price_to_budget",
    "favourite_brand_match",
    "favourite_category_match",
    "listing_age_days",
    *CANDIDATE_COLUMNS,
)


@dataclass(frozen=True)
class RecsConfig:
    window_days: float = 2.0  # the examples' window after ``at`` (most interest comes early)
    top_products: int = 12  # products per buyer from the candidate models
    candidates: int = 60  # listings per buyer the ranker sees
    max_buyers: int = 3000  # buyers sampled for the ranker's examples
    ease_l2: float = 20.0  # few products: a light ridge
    ials_factors: int = 16
    seed: int = 0


def _arrived(src: SourceData, at: pd.Timestamp) -> pd.DataFrame:
    inter = src.read("interactions", ["listing_id", "buyer_id", "kind", "created_at"])
    return inter[inter["created_at"] <= at]


def available_listings(src: SourceData, at: pd.Timestamp) -> pd.DataFrame:
    """Listings known at ``at`` and not sold by then, with their interactions so far."""
    listings = src.read(
        "listings",
        ["listing_id", "product_id", "brand_id", "category", "asking_price", "created_at"],
    )
    listings = listings[listings["created_at"] <= at]
    inter = _arrived(src, at)
    net = inter["kind"].map({"purchase": 1, "return": -1}).fillna(0)
    sold = net.groupby(inter["listing_id"]).sum()
    gone = set(sold[sold > 0].index)
    popularity = inter.groupby("listing_id").size()
    out = listings[~listings["listing_id"].isin(gone)]
    out = out.assign(
        popularity=out["listing_id"].map(popularity).fillna(0).astype(float),
        listed_at_s=out["created_at"].astype("int64") // 10**6,  # epoch seconds (us unit)
    ).drop(columns=["created_at"])
    return out.reset_index(drop=True)


def fit_candidates(src: SourceData, at: pd.Timestamp, config: RecsConfig) -> Candidates:
    """EASE and iALS on buyer x product as of ``at``; each buyer's top products."""
    inter = _arrived(src, at)
    inter = inter[inter["kind"] != "return"]
    products = src.read("listings", ["listing_id", "product_id"])
    inter = inter.merge(products, on="listing_id")
    n_products = int(src.read("products", ["product_id"])["product_id"].max()) + 1
    buyers = np.sort(inter["buyer_id"].unique())
    rows = np.searchsorted(buyers, inter["buyer_id"].to_numpy())
    x = sp.csr_matrix(
        (np.ones(len(inter), np.float32), (rows, inter["product_id"].to_numpy())),
        shape=(len(buyers), n_products),
    )
    x.data[:] = 1.0
    ease = EASE(l2=config.ease_l2).fit(x)
    ials = IALS(factors=config.ials_factors, random_state=config.seed).fit(x)
    users = np.arange(len(buyers))
    e, a = ease.score(users, x), ials.score(users, x)
    blend = _rank01(e) + _rank01(a)  # both models vote; neither's scale dominates
    p = min(config.top_products, n_products)
    top = np.argsort(-blend, axis=1, kind="stable")[:, :p]
    return Candidates(
        buyer_ids=buyers.astype(np.int64),
        top_products=top.astype(np.int64),
        ease=np.take_along_axis(e, top, axis=1).astype(np.float32),
        ials=np.take_along_axis(a, top, axis=1).astype(np.float32),
        listings=available_listings(src, at),
        product_popularity=np.asarray(x.sum(axis=0)).ravel().astype(np.float64),
    )


def _rank01(scores: np.ndarray) -> np.ndarray:
    """Each row's scores as ranks scaled to [0, 1] (1 = best)."""
    order = np.argsort(np.argsort(scores, axis=1, kind="stable"), axis=1, kind="stable")
    ranks: np.ndarray = order / max(scores.shape[1] - 1, 1)
    return ranks


@dataclass(frozen=True)
class Examples:
    """Candidate rows (buyer, listing) with their features and graded labels."""

    frame: pd.DataFrame  # buyer_id, listing_id, RANKER_FEATURES..., label
    relevant: dict[int, set[int]]  # buyer -> listings they interacted with in the window

    def groups(self) -> np.ndarray:
        return self.frame.groupby("buyer_id", sort=False).size().to_numpy()


def window_labels(
    src: SourceData, at: pd.Timestamp, days: float, available: pd.DataFrame
) -> pd.DataFrame:
    """(buyer_id, listing_id, label): the best interaction in ``(at, at + days]`` with a
    listing that was available at ``at``."""
    inter = src.read("interactions", ["listing_id", "buyer_id", "kind", "created_at"])
    end = at + pd.Timedelta(days=days)
    inter = inter[(inter["created_at"] > at) & (inter["created_at"] <= end)]
    inter = inter[inter["listing_id"].isin(available["listing_id"])]
    inter = inter.assign(label=inter["kind"].map(GRADES)).dropna(subset=["label"])
    best = inter.groupby(["buyer_id", "listing_id"])["label"].max().reset_index()
    best["label"] = best["label"].astype("int64")
    return best


def examples(
    src: SourceData,
    repo: FeatureRepo,
    candidates: Candidates,
    at: pd.Timestamp,
    config: RecsConfig,
) -> Examples:
    """Every candidate of the buyers with something to learn from in the window after ``at``
    (sampled to ``config.max_buyers``), features as of ``at``."""
    labels = window_labels(src, at, config.window_days, candidates.listings)
    buyers = np.array([b for b in labels["buyer_id"].unique() if candidates.knows(int(b))])
    rng = np.random.default_rng(config.seed)
    if len(buyers) > config.max_buyers:
        buyers = rng.choice(buyers, config.max_buyers, replace=False)
    parts = []
    for b in np.sort(buyers):
        c = candidates.for_buyer(int(b), config.candidates)
        parts.append(c.assign(buyer_id=int(b)))
    if not parts:
        return Examples(pd.DataFrame(columns=["buyer_id", "listing_id", "label"]), {})
    frame = pd.concat(parts, ignore_index=True)
    frame = frame.merge(labels, on=["buyer_id", "listing_id"], how="left")
    frame["label"] = frame["label"].fillna(0).astype("int64")
    features = store_features(repo, frame, at, candidates.reference_s)
    relevant = {
        int(str(b)): set(g["listing_id"].astype(int))
        for b, g in labels[labels["buyer_id"].isin(buyers)].groupby("buyer_id")
    }
    return Examples(features, relevant)


def store_features(
    repo: FeatureRepo, frame: pd.DataFrame, at: pd.Timestamp, reference_s: float
) -> pd.DataFrame:
    """The feature store's features of each (buyer, listing) row as of ``at``, point-in-time;
    listing ages from ``reference_s`` (:attr:`Candidates.reference_s`)."""
    entities = pd.DataFrame(
        {
            "buyer_id": frame["buyer_id"].astype("int64"),
            "listing_id": frame["listing_id"].astype("int64"),
            "buyer_brand": buyer_brand_key(frame["buyer_id"], frame["brand_id"]),
            "event_timestamp": at,
        }
    )
    got = build_training_set(repo, entities).frame
    # a listing's price and listing time come with the candidate, as they do at serving
    keep = [c for c, _ in _store_columns() if c not in CANDIDATE_FACTS]
    out = frame.drop(columns=[c for c in keep if c in frame.columns]).reset_index(drop=True)
    out[keep] = got[keep].to_numpy()
    out["listing_age_days"] = (reference_s - out["listed_at_s"].astype(float)) / 86_400.0
    return out


#: What the candidate stage carries of a listing itself: read from it, never from the store,
#: offline and online alike (the store's declared defaults would mean nothing here).
CANDIDATE_FACTS = ("asking_price", "listed_at_s")


def _store_columns() -> list[tuple[str, str]]:
    return [(f.name, view) for view, f in FEATURES.all_fields]


def serving_matrix(
    candidates: pd.DataFrame, store_rows: list[dict[str, Any]], reference_s: float
) -> np.ndarray:
    """The ranker's input matrix at serving time, from the candidate stage's frame and the
    online store's rows (one per candidate): the same columns as :func:`ranker_matrix` builds
    from a training frame, without a DataFrame per request."""
    columns = []
    for name in RANKER_FEATURES:
        if name in CANDIDATE_COLUMNS or name in CANDIDATE_FACTS:
            columns.append(candidates[name].to_numpy(np.float64))
        elif name == "listing_age_days":
            listed = candidates["listed_at_s"].to_numpy(np.float64)
            columns.append((reference_s - listed) / 86_400.0)
        else:
            columns.append(np.array([_number(r.get(name)) for r in store_rows]))
    return _grid(np.column_stack(columns))


def _number(value: Any) -> float:
    try:
        return float(value) if value is not None else np.nan
    except (TypeError, ValueError):  # what pd.to_numeric(errors="coerce") makes NaN
        return np.nan


def ranker_matrix(frame: pd.DataFrame) -> np.ndarray:
    """The ranker's input matrix (float32, missing values as NaN) in RANKER_FEATURES order."""
    cols = [pd.to_numeric(frame[c], errors="coerce") for c in RANKER_FEATURES]
    return _grid(np.column_stack([c.to_numpy(dtype=np.float64) for c in cols]))


def _grid(x: np.ndarray) -> np.ndarray:
    """float32 on a grid where LightGBM (doubles) and ONNX Runtime (float32) split alike."""
    return on_float32_grid(x).astype(np.float32)
