"""The recipe's judgement: the holdout scored through the graph, stage by stage, and the
champion graph scored on the same holdout, so the gate compares like with like.

Nothing here fits anything. When the marketplace has the simulator's truth, the oracle is
evaluated on the same listings for the report; without it the oracle is simply absent.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pandas as pd

from couturier.domains.authentication import fusion, image_model, labels, listing_model
from couturier.domains.authentication._recipe_data import ORACLE, RecipeData, Scored, slices
from couturier.domains.authentication._recipe_training import PhotoOutputs, score_split
from couturier.domains.authentication.decision import (
    CostModel,
    DecisionPolicy,
    expected_cost_per_1000,
    fit_policy,
)
from couturier.domains.authentication.graph import AuthenticationGraph
from couturier.evaluation import Evaluation, evaluate
from couturier.registry import ModelRegistry

__all__ = [
    "HoldoutResult",
    "champion_evaluations",
    "control_point_accuracy",
    "evaluate_holdout",
    "oracle_metrics",
]


@dataclass
class HoldoutResult:
    """The holdout's scores and every evaluation made of them."""

    scored: Scored
    fusion: Evaluation  # the graph's calibrated probability: what the gate judges
    listing: Evaluation  # the listing model alone
    image: Evaluation  # the image model alone (a listing's maximum photo logit)
    expected_cost_per_1000: float
    stage_pr_auc: dict[str, float]  # what each stage reaches alone, and the fusion
    oracle: dict[str, float]  # the oracle's metrics; empty without the simulator's truth
    champion: dict[str, Evaluation]  # the champion graph's, by model name; empty without one
    control_points: dict[str, dict[str, float]]  # control_point_accuracy of the holdout

    @property
    def y(self) -> np.ndarray:
        return self.scored.frame["label"].to_numpy()

    def metrics(self, *, retrieval_recall_at_10: float, int8: dict[str, float]) -> dict[str, float]:
        """The graph's metrics as the run logs them and the recipe reports them."""
        return {
            **self.fusion.overall,
            "expected_cost_per_1000": self.expected_cost_per_1000,
            "retrieval_recall_at_10": retrieval_recall_at_10,
            **{f"int8_{k}": v for k, v in int8.items()},
            **{f"stage_pr_auc.{k}": v for k, v in self.stage_pr_auc.items()},
        }


def evaluate_holdout(
    graph: AuthenticationGraph,
    data: RecipeData,
    photos: PhotoOutputs,
    *,
    policy: DecisionPolicy,
    costs: CostModel,
    registry: ModelRegistry,
) -> HoldoutResult:
    """Score the holdout through ``graph`` and evaluate it overall, by slice and by stage."""
    scored = score_split(graph, data, photos, data.splits.holdout)
    test, scores = scored.frame, scored.scores
    holdout = data.holdout_id
    y = test["label"].to_numpy()
    cut = slices(test)
    ev = evaluate(y, scores.probability, cut, holdout=holdout)
    cost = expected_cost_per_1000(scores.probability, y, policy, costs)
    oracle = oracle_metrics(scored, holdout, costs)
    listing_ev = evaluate(y, scores.listing_p, cut, holdout=holdout)
    image_ev = evaluate(y, scores.stage_score("image_max_logit"), cut, holdout=holdout)
    retrieval = evaluate(y, scores.stage_score("retrieval_max_logit"), holdout=holdout)
    stage_pr_auc = {
        "listing_model": listing_ev.overall["pr_auc"],
        "image_model": image_ev.overall["pr_auc"],
        "retrieval": retrieval.overall["pr_auc"],
        "fusion": ev.overall["pr_auc"],
    }
    champion = champion_evaluations(registry, data, test, holdout)
    points = control_point_accuracy(scored)
    return HoldoutResult(
        scored, ev, listing_ev, image_ev, cost, stage_pr_auc, oracle, champion, points
    )


def control_point_accuracy(scored: Scored) -> dict[str, dict[str, float]]:
    """Per control point a photo can show, the model's suspicion against the experts' reports.

    On the listings whose report recorded the point and whose photos show it, ``auc`` is the
    ROC-AUC of the listing's suspicion (its photos' highest fail logit for the point) against
    the expert's fail (NaN when they all passed or all failed it); ``share_reported`` is the
    share of listings whose report recorded the point, ``fail_share`` how many of those failed.
    """
    from sklearn.metrics import roc_auc_score

    frame, stacked = scored.frame, scored.scores.stacked
    out: dict[str, dict[str, float]] = {}
    for point in image_model.POINTS:
        reading = stacked[:, fusion.INPUTS.index(f"point_{point}")].astype(float)
        result = frame[labels.result_column(point)] if len(frame) else pd.Series(dtype=object)
        recorded = result.notna().to_numpy()
        usable = recorded & np.isfinite(reading)
        fail = (result.to_numpy()[usable] == "fail").astype(int)
        both = 0 < fail.sum() < len(fail)
        out[point] = {
            "auc": float(roc_auc_score(fail, reading[usable])) if both else float("nan"),
            "share_reported": float(recorded.mean()) if len(recorded) else 0.0,
            "fail_share": float(fail.mean()) if len(fail) else float("nan"),
            "listings": int(usable.sum()),
        }
    return out


def oracle_metrics(scored: Scored, holdout: str, costs: CostModel) -> dict[str, float]:
    """What the oracle reaches on the same listings, with thresholds fitted to it; empty when
    the frame carries no oracle (a marketplace without the simulator's truth)."""
    if ORACLE not in scored.frame.columns:
        return {}
    y = scored.frame["label"].to_numpy()
    p = scored.frame[ORACLE].to_numpy()
    oracle = evaluate(y, p, holdout=holdout).overall
    oracle["expected_cost_per_1000"] = expected_cost_per_1000(p, y, fit_policy(p, y, costs), costs)
    return oracle


def champion_evaluations(
    registry: ModelRegistry, data: RecipeData, test: pd.DataFrame, holdout: str
) -> dict[str, Evaluation]:
    """The current champion graph's evaluations on the same holdout ``test`` (empty without
    a champion), by model name: the gate compares each candidate with its own champion."""
    if registry.alias_version(fusion.MODEL_NAME, "champion") is None:
        return {}
    champ = AuthenticationGraph.from_registry(registry, "champion", threads=os.cpu_count() or 1)
    rows = data.photos["listing_id"].isin(test["listing_id"]).to_numpy()
    s = champ.score(
        test["listing_id"].to_numpy(),
        listing_model.design_matrix(test),
        data.photo_listing[rows],
        data.images[rows],
        data.contexts[rows],
    )
    y = test["label"].to_numpy()
    cut = slices(test)
    return {
        fusion.MODEL_NAME: evaluate(y, s.probability, cut, holdout=holdout),
        listing_model.MODEL_NAME: evaluate(y, s.listing_p, cut, holdout=holdout),
        image_model.MODEL_NAME: evaluate(y, s.stage_score("image_max_logit"), cut, holdout=holdout),
    }
