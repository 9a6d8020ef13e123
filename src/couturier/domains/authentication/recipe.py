"""The authentication training recipe, as one function a pipeline can call.

data -> point-in-time training set -> train -> evaluate (overall, slices, against the oracle,
against the champion on the same holdout) -> package and register through the gate.

This first version trains the listing/seller model only; the image model, retrieval and fusion
of issue 5 join it here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from couturier.domain import RecipeReport
from couturier.domains.authentication import listing_model
from couturier.domains.authentication.decision import (
    CostModel,
    expected_cost_per_1000,
    fit_policy,
)
from couturier.evaluation import Evaluation, evaluate
from couturier.features import FeatureRepo, build_training_set
from couturier.marketplace import Marketplace
from couturier.registry import GatePolicy, ModelCard, ModelRegistry
from couturier.registry._packaging import session

__all__ = ["POLICY", "run_recipe"]

POLICY = GatePolicy(
    metric="pr_auc",
    min_improvement=0.0,
    max_slice_regression=0.05,
    min_slice_size=200,
    max_ece=0.05,
    latency_budget_ms=5.0,
)
HOLDOUT_SHARE = 0.3
COSTS = CostModel()
_PRICE_BANDS = [0.0, 500.0, 2000.0, 5000.0, np.inf]


def run_recipe(
    market: Marketplace, repo: FeatureRepo, registry: ModelRegistry, *, actor: str = "recipe"
) -> RecipeReport:
    listings = market.read("listings", ["listing_id", "brand_id", "created_at", "asking_price"])
    entities = listings[["listing_id", "created_at"]].rename(
        columns={"created_at": "event_timestamp"}
    )
    ts = build_training_set(repo, entities)
    frame = ts.frame.merge(
        listings[["listing_id", "asking_price"]].rename(columns={"asking_price": "price"}),
        on="listing_id",
    )
    verdicts = market.read("verdicts", ["listing_id", "verdict", "created_at"]).rename(
        columns={"created_at": "label_arrived_at"}
    )
    truth = market.read("truth", ["listing_id", "oracle_p_counterfeit"])
    frame = frame.merge(verdicts, on="listing_id", how="left").merge(truth, on="listing_id")
    frame["label"] = (frame["verdict"] == "counterfeit").astype(int)

    # train on what was labelled by the cutoff; judge on the later period's final verdicts
    times = frame["event_timestamp"]
    cutoff = pd.Timestamp(times.quantile(1 - HOLDOUT_SHARE))
    train_rows = (times < cutoff) & (frame["label_arrived_at"] <= cutoff)
    hold_rows = (times >= cutoff) & frame["verdict"].notna()
    x_train = listing_model.design_matrix(frame[train_rows])
    y_train = frame.loc[train_rows, "label"].to_numpy()
    hold = frame[hold_rows].reset_index(drop=True)
    x_hold = listing_model.design_matrix(hold)
    # decision thresholds from out-of-time predictions inside the training period
    split = int(len(x_train) * 0.8)  # frame rows are in time order
    early = listing_model.train(x_train[:split], y_train[:split], seed=market.config.seed)
    policy = fit_policy(early.predict_proba(x_train[split:])[:, 1], y_train[split:], COSTS)
    model = listing_model.train(x_train, y_train, seed=market.config.seed)
    score = model.predict_proba(x_hold)[:, 1]
    holdout_id = f"{ts.fingerprint[:16]}@{cutoff.isoformat()}"
    slices = _slices(hold)
    ev = evaluate(hold["label"], score, slices, holdout=holdout_id)
    oracle = evaluate(hold["label"], hold["oracle_p_counterfeit"], holdout=holdout_id).overall
    oracle_p = hold["oracle_p_counterfeit"].to_numpy()
    oracle["expected_cost_per_1000"] = expected_cost_per_1000(
        oracle_p, hold["label"], fit_policy(oracle_p, hold["label"], COSTS), COSTS
    )
    model_cost = expected_cost_per_1000(score, hold["label"], policy, COSTS)

    name = listing_model.MODEL_NAME
    champion = registry.alias_version(name, "champion")  # None for a model not yet registered
    champion_ev: Evaluation | None = None
    if champion is not None:
        loaded = registry.load(name, champion)
        sess = session(loaded.onnx_model)
        (p,) = sess.run(["probabilities"], {sess.get_inputs()[0].name: x_hold})
        champion_ev = evaluate(hold["label"], p[:, 1], slices, holdout=holdout_id)

    lineage = {
        **ts.lineage,
        "simulator_seed": market.config.seed,
        "simulator_scenario": market.config.scenario,
        "holdout": holdout_id,
    }
    params = {
        "model": "lightgbm",
        "train_rows": int(train_rows.sum()),
        "holdout_rows": len(hold),
        "features": len(listing_model.INPUTS),
    }
    with registry.start_run(
        "authentication", f"{name}-{cutoff.date()}", params=params, lineage=lineage
    ) as run:
        run.log_evaluation(ev)
        run.log_metrics({"expected_cost_per_1000": model_cost, **policy.as_dict()})
        run.log_metrics(oracle, prefix="oracle.")
        run.log_evaluation_plots(hold["label"], score, name)
        card = ModelCard(
            name=name,
            intended_use="rank new listings by counterfeit risk from listing, seller and product "
            "data; one input of the authentication decision, never the decision alone",
            limitations=[
                "sees no photos: most counterfeit signal is in the photos",
                "trained on simulated data; labels are expert verdicts with errors",
            ],
            evaluation=ev,
            lineage=lineage,
        )
        version = registry.register(
            listing_model.package(model, x_train[:500], policy.as_thresholds()),
            ev,
            run=run,
            policy=POLICY,
            champion_evaluation=champion_ev,
            card=card,
            actor=actor,
        )
    if champion is None and version.verdict.passed:
        registry.promote(
            name, version.version, "champion", actor=actor, reason="first version to pass its gate"
        )
        champion = version.version
    keys = ("pr_auc", "roc_auc", "recall_at_1pct_fpr", "ece", "expected_cost_per_1000")
    metrics = {**ev.overall, "expected_cost_per_1000": model_cost}
    return RecipeReport(
        model=name,
        version=version.version,
        gate_passed=version.verdict.passed,
        champion=registry.alias_version(name, "champion"),
        metrics={k: metrics[k] for k in keys if k in metrics},
        oracle={k: oracle[k] for k in keys if k in oracle},
        lineage=lineage,
    )


def _slices(hold: pd.DataFrame) -> dict[str, Any]:
    band = pd.cut(hold["price"], _PRICE_BANDS, labels=["<500", "500-2k", "2k-5k", ">5k"])
    return {
        "brand": hold["brand_id"].astype(int).to_numpy(),
        "category": hold["category"].astype(str).to_numpy(),
        "price_band": band.astype(str).to_numpy(),
    }
