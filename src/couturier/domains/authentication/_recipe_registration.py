"""Registration: one tracked run per model, each through its gate, components before the graph.

The listing and image models are registered first; the graph (the fusion head, named
``authentication``) names the component versions it was fitted on, so serving loads what was
evaluated. Each candidate is judged against its own champion on the same holdout. The first
graph to pass its gate becomes champion, with those of its components that passed theirs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from couturier.domains.authentication import fusion, image_model, listing_model
from couturier.domains.authentication._recipe_cards import CARDS, POLICIES
from couturier.domains.authentication._recipe_data import RecipeData
from couturier.domains.authentication._recipe_evaluation import HoldoutResult
from couturier.domains.authentication._recipe_int8 import ImageVariants
from couturier.domains.authentication._recipe_training import (
    ImageTraining,
    ListingTraining,
)
from couturier.domains.authentication.decision import CostModel, DecisionPolicy
from couturier.domains.authentication.evidence import ReferenceSet
from couturier.domains.authentication.image_model import ImageTrainConfig
from couturier.domains.authentication.report import write_report
from couturier.evaluation import Evaluation
from couturier.marketplace import Marketplace
from couturier.registry import ModelPackage, ModelRegistry, RegisteredVersion, Run

__all__ = [
    "EXPERIMENT",
    "Registrar",
    "ReportSpec",
    "lineage",
    "promote_first_graph",
    "register_graph",
    "register_image",
    "register_listing",
]

#: The MLflow experiment every run of this recipe is logged to.
EXPERIMENT = "authentication"


def lineage(market: Marketplace, data: RecipeData) -> dict[str, Any]:
    """Where a version came from: the training set, the marketplace, the holdout, the splits."""
    return {
        **data.training_set.lineage,
        "simulator_seed": market.config.seed,
        "simulator_scenario": market.config.scenario,
        "holdout": data.holdout_id,
        "fusion_fold_start": data.splits.fusion_start.isoformat(),
    }


@dataclass(frozen=True)
class Registrar:
    """Registers this recipe's models, one run each, with the lineage they share."""

    registry: ModelRegistry
    actor: str
    lineage: dict[str, Any]
    cutoff: pd.Timestamp
    champion: dict[str, Evaluation]  # the champion graph's evaluations on the same holdout

    @contextmanager
    def run(self, name: str, params: dict[str, Any], evaluation: Evaluation) -> Iterator[Run]:
        """A run named after the model and the holdout's cutoff, its evaluation logged."""
        with self.registry.start_run(
            EXPERIMENT, f"{name}-{self.cutoff.date()}", params=params, lineage=self.lineage
        ) as run:
            run.log_evaluation(evaluation)
            yield run

    def register(
        self, run: Run, package: ModelPackage, evaluation: Evaluation
    ) -> RegisteredVersion:
        """Register ``package`` through its model's gate, with its model card."""
        name = package.name
        return self.registry.register(
            package,
            evaluation,
            run=run,
            policy=POLICIES[name],
            champion_evaluation=self.champion.get(name),
            card=CARDS[name].card(name, evaluation, self.lineage),
            actor=self.actor,
        )


def register_listing(
    reg: Registrar, listing: ListingTraining, holdout: HoldoutResult
) -> RegisteredVersion:
    params = {"model": "lightgbm", "train_rows": listing.rows}
    with reg.run(listing_model.MODEL_NAME, params, holdout.listing) as run:
        return reg.register(run, listing.package, holdout.listing)


def register_image(
    reg: Registrar,
    image: ImageTraining,
    variants: ImageVariants,
    data: RecipeData,
    holdout: HoldoutResult,
    config: ImageTrainConfig,
) -> RegisteredVersion:
    """The fp32 model with its int8 variant beside it; the training history on the run."""
    trained = image.trained
    sample = image.rows[:32]
    package = image_model.package(
        trained.net,
        variants.fp32,
        variants.int8,
        data.images[sample],
        data.contexts[sample],
        variants.variant,
    )
    params = {
        "model": "cnn",
        "train_photos": int(image.train.sum()),
        "best_epoch": trained.best_epoch,
        "serving_variant": variants.variant,
        **{f"train.{k}": v for k, v in config.__dict__.items()},
    }
    with reg.run(image_model.MODEL_NAME, params, holdout.image) as run:
        run.log_metrics(
            {f"int8.{k}": v for k, v in variants.comparison.items()}
            | {"image_train_seconds": trained.seconds}
        )
        run.log_json(trained.history, "training/history.json")
        return reg.register(run, package, holdout.image)


@dataclass(frozen=True)
class ReportSpec:
    """What the evaluation report needs beside the holdout: it is written on the graph's run."""

    references: ReferenceSet
    photos: pd.DataFrame  # every photo the recipe read (the references' images come from here)
    policy: DecisionPolicy
    costs: CostModel
    folder: Path

    def write(
        self, holdout: HoldoutResult, metrics: dict[str, float], versions: dict[str, int]
    ) -> Path:
        return write_report(
            holdout.scored,
            self.references,
            self.photos,
            policy=self.policy,
            costs=self.costs,
            metrics=metrics,
            oracle=holdout.oracle,
            evaluation=holdout.fusion,
            stage_pr_auc=holdout.stage_pr_auc,
            control_points=holdout.control_points,
            versions=versions,
            folder=self.folder,
        )


def register_graph(
    reg: Registrar,
    package: ModelPackage,
    holdout: HoldoutResult,
    *,
    params: dict[str, Any],
    metrics: dict[str, float],
    policy: DecisionPolicy,
    seconds: dict[str, float],
    report: ReportSpec | None,
) -> tuple[RegisteredVersion, Path | None]:
    """The graph's run: metrics, the decision thresholds, the oracle's metrics (when known),
    stage timings and plots; then the gate, and the evaluation report on the same run."""
    with reg.run(fusion.MODEL_NAME, params, holdout.fusion) as run:
        run.log_metrics({**metrics, **policy.as_dict()})
        run.log_metrics(holdout.oracle, prefix="oracle.")
        run.log_metrics(seconds, prefix="seconds.")
        run.log_evaluation_plots(holdout.y, holdout.scored.scores.probability, fusion.MODEL_NAME)
        registered = reg.register(run, package, holdout.fusion)
        if report is None:
            return registered, None
        path = report.write(
            holdout, metrics, {fusion.MODEL_NAME: registered.version, **package.components}
        )
        run.log_file(path, "report")
        return registered, path


def promote_first_graph(
    registry: ModelRegistry,
    graph: RegisteredVersion,
    components: list[RegisteredVersion],
    *,
    actor: str,
) -> None:
    """With no champion graph yet, a graph that passed its gate becomes champion, and so do
    those of its components that passed theirs and have no champion."""
    if registry.alias_version(fusion.MODEL_NAME, "champion") is not None:
        return
    if not graph.verdict.passed:
        return
    for v in components:
        if v.verdict.passed and registry.alias_version(v.name, "champion") is None:
            registry.promote(v.name, v.version, "champion", actor=actor, reason="first graph")
    registry.promote(
        fusion.MODEL_NAME,
        graph.version,
        "champion",
        actor=actor,
        reason="first version to pass its gate",
    )
