"""The recommendations recipe: candidates, a LightGBM lambdarank ranker, a gate, a version.

Three times, one window (``RecsConfig.window_days``) apart, end the data::

    ... at_train | window (ranker's labels) | at_eval | window (holdout) | latest

The ranker learns from the window after ``at_train`` with candidates and features as of then;
it is judged on the window after ``at_eval``, beside the candidate order alone (EASE + iALS)
and popularity, on the same buyers. The registered version carries the ranker and candidates
refreshed as of the latest data (the catalog a buyer sees must be today's); the gate judges
``ndcg_at_10`` of the procedure on the holdout.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from couturier.domains.discovery._candidates import Candidates
from couturier.domains.discovery._ranker import OnnxRanker, lambdarank_onnx
from couturier.domains.discovery._ranking_metrics import (
    catalog_coverage,
    ndcg_at_k,
    popularity_bias,
    recall_at_k,
)
from couturier.domains.discovery._recs_training import (
    RANKER_FEATURES,
    Examples,
    RecsConfig,
    examples,
    fit_candidates,
    ranker_matrix,
)
from couturier.errors import InvalidInputError
from couturier.evaluation import Evaluation
from couturier.extras import require
from couturier.features import FeatureRepo
from couturier.features.types import SourceData
from couturier.registry import GatePolicy, ModelPackage, ModelRegistry

__all__ = [
    "MODEL_NAME",
    "POLICY",
    "RecsFit",
    "champion_on_holdout",
    "fit_recommendations",
    "recs_package",
]

MODEL_NAME = "discovery-recommendations"
POLICY = GatePolicy(
    metric="ndcg_at_10",
    min_improvement=0.0,
    max_slice_regression=0.05,
    min_slice_size=100,
    max_ece=None,  # a ranker's scores are not probabilities
    latency_budget_ms=5.0,
)


@dataclass(frozen=True)
class RecsFit:
    ranker: Any  # lightgbm.LGBMRanker
    candidates: Candidates  # as of the latest data: what serves
    evaluation: Evaluation
    sample: np.ndarray
    times: dict[str, str]
    train_rows: int
    holdout: Examples


def _times(src: SourceData, config: RecsConfig) -> tuple[pd.Timestamp, pd.Timestamp, pd.Timestamp]:
    # the last listing, not the last interaction: interest trails off after the listings end
    latest = pd.Timestamp(src.read("listings", ["created_at"])["created_at"].max())
    window = pd.Timedelta(days=config.window_days)
    return latest - 2 * window, latest - window, latest


def fit_recommendations(
    src: SourceData, repo: FeatureRepo, config: RecsConfig | None = None
) -> RecsFit:
    """Train the ranker one window before the holdout, judge it there, refresh candidates."""
    config = config or RecsConfig()
    lgb = require("lightgbm", extra="discovery", purpose="the recommendations ranker")
    at_train, at_eval, latest = _times(src, config)
    train = examples(src, repo, fit_candidates(src, at_train, config), at_train, config)
    if train.frame.empty or not (train.frame["label"] > 0).any():
        raise InvalidInputError(
            f"no buyer interacted with a candidate in the {config.window_days:g} days after "
            f"{at_train.isoformat()}; the marketplace is too small or too short to train on",
            field="market",
        )
    ranker = lgb.LGBMRanker(
        objective="lambdarank",
        n_estimators=150,
        learning_rate=0.05,
        num_leaves=15,
        min_child_samples=20,
        random_state=config.seed,
        n_jobs=1,
        verbose=-1,
    )
    x = ranker_matrix(train.frame)
    ranker.fit(x, train.frame["label"].to_numpy(), group=train.groups())
    holdout = examples(src, repo, fit_candidates(src, at_eval, config), at_eval, config)
    evaluation = evaluate_ranker(
        ranker, holdout, n_listings=len(holdout.frame["listing_id"].unique())
    )
    return RecsFit(
        ranker=ranker,
        candidates=fit_candidates(src, latest, config),
        evaluation=evaluation,
        sample=x[:64],
        times={
            "at_train": at_train.isoformat(),
            "at_eval": at_eval.isoformat(),
            "latest": latest.isoformat(),
        },
        train_rows=len(train.frame),
        holdout=holdout,
    )


def _orders(frame: pd.DataFrame, score: np.ndarray) -> dict[int, list[int]]:
    """Each buyer's candidate listings, best first by ``score``."""
    ranked = frame.assign(_s=score).sort_values(["buyer_id", "_s"], ascending=[True, False])
    return {
        int(str(b)): g["listing_id"].astype(int).tolist() for b, g in ranked.groupby("buyer_id")
    }


def evaluate_ranker(ranker: Any, holdout: Examples, n_listings: int) -> Evaluation:
    """nDCG@10 and recall@20 of the ranker, the candidate order and popularity, per buyer
    against every listing they interacted with in the window (also those no candidate held);
    the ranker's catalog coverage and popularity bias; its nDCG@10 per buyer segment."""
    frame = holdout.frame
    orders = {
        "": _orders(frame, ranker.predict(ranker_matrix(frame))),
        "candidates_": _orders(frame, -frame["product_rank"].to_numpy(float) - frame.index / 1e9),
        "popularity_": _orders(frame, frame["popularity"].to_numpy(float)),
    }
    buyers = sorted(holdout.relevant)
    overall: dict[str, float] = {"n": float(len(buyers))}
    for prefix, order in orders.items():
        recs = [order.get(b, []) for b in buyers]
        rel = [holdout.relevant[b] for b in buyers]
        overall[f"{prefix}ndcg_at_10"] = ndcg_at_k(recs, rel, 10)
        overall[f"{prefix}recall_at_20"] = recall_at_k(recs, rel, 20)
    top10 = [orders[""].get(b, [])[:10] for b in buyers]
    overall["catalog_coverage"] = catalog_coverage(top10, max(n_listings, 1))
    overall["popularity_bias"] = _popularity_bias(frame, top10)
    slices = {
        name: {
            "n": float(len(group)),
            "ndcg_at_10": ndcg_at_k(
                [orders[""].get(b, []) for b in group], [holdout.relevant[b] for b in group], 10
            ),
        }
        for name, group in buyer_segments(frame, buyers).items()
    }
    return Evaluation(overall=overall, slices=slices, holdout="last window")


#: A buyer with fewer interactions than this before the holdout is "new"; at least HEAVY, "heavy".
NEW, HEAVY = 5, 30


def buyer_segments(frame: pd.DataFrame, buyers: list[int]) -> dict[str, list[int]]:
    """Buyers by history (new, heavy) and by favourite category, as known before the holdout."""
    per_buyer = frame.drop_duplicates("buyer_id").set_index("buyer_id")
    history = (
        per_buyer[["buyer_views", "buyer_likes", "buyer_purchases"]]
        .apply(pd.to_numeric, errors="coerce")
        .fillna(0)
        .sum(axis=1)
    )
    out: dict[str, list[int]] = {
        "buyers=new": [b for b in buyers if history.get(b, 0) < NEW],
        "buyers=heavy": [b for b in buyers if history.get(b, 0) >= HEAVY],
    }
    for category, group in per_buyer.loc[buyers].groupby("favourite_category"):
        out[f"category={category}"] = [int(b) for b in group.index]
    return {k: v for k, v in out.items() if v}


def _popularity_bias(frame: pd.DataFrame, top10: list[list[int]]) -> float:
    """Mean popularity percentile (0 least, 1 most) of recommended listings among candidates."""
    pool = frame.drop_duplicates("listing_id")
    if len(pool) < 2:
        return 0.0
    position = {int(lid): i for i, lid in enumerate(pool["listing_id"])}
    shown = [[position[i] for i in row if i in position] for row in top10]
    return popularity_bias(shown, pool["popularity"].to_numpy(float))


def champion_on_holdout(registry: ModelRegistry, fit: RecsFit) -> Evaluation | None:
    """The champion's ranker scored on this fit's holdout (same candidates, same features),
    or ``None`` when there is no champion or it was trained on other features."""
    champion = registry.alias_version(MODEL_NAME, "champion")
    if champion is None:
        return None
    loaded = registry.load(MODEL_NAME, champion)
    if loaded.spec.get("features") != list(RANKER_FEATURES):
        return None
    n = len(fit.holdout.frame["listing_id"].unique())
    return evaluate_ranker(OnnxRanker(loaded.onnx_model), fit.holdout, n_listings=n)


def recs_package(fit: RecsFit) -> ModelPackage:
    return ModelPackage(
        name=MODEL_NAME,
        onnx_model=lambdarank_onnx(fit.ranker, len(RANKER_FEATURES)),
        features=list(RANKER_FEATURES),
        reference=lambda x: np.asarray(fit.ranker.predict(np.asarray(x, np.float64))).reshape(
            -1, 1
        ),
        sample=fit.sample,
        output="variable",
        description="marketplace recommendations: EASE + iALS product candidates, a LightGBM "
        "lambdarank ranker on feature-store features",
        artifacts=fit.candidates.to_artifacts(),
        extra={"recommendations": {**fit.times, "train_rows": fit.train_rows}},
    )
