"""The authentication training recipe, as one function a pipeline can call.

data -> point-in-time training set -> train the components -> fit the fusion -> evaluate
(overall, slices, against the champion on the same holdout, and against the oracle when the
marketplace has the simulator's truth) -> package and register through the gates ->
evaluation report.

Each step lives in a module of its own, and ``run_recipe`` reads as their sequence:

* ``_recipe_data.py``: listings, photos and verdicts, checked; the time splits; ``Scored``;
* ``_recipe_training.py``: the listing and image models, the references, the fusion;
* ``_recipe_int8.py``: the image model's fp32 and int8 variants compared, and which serves;
* ``_recipe_evaluation.py``: the holdout through the graph, the champion's, the oracle's;
* ``_recipe_cards.py``: each model's gate policy and model card;
* ``_recipe_registration.py``: one run per model through its gate, the report, the first
  champion.

>>> report = run_recipe(market, repo, registry, config=RecipeConfig())  # doctest: +SKIP
>>> report.version, report.gate_passed, report.metrics["pr_auc"], report.oracle  # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from couturier.domain import RecipeReport
from couturier.domains.authentication import fusion, image_model, listing_model
from couturier.domains.authentication._recipe_cards import POLICY
from couturier.domains.authentication._recipe_data import (
    RecipeData,
    Scored,
    load_photos,
    photo_contexts,
    read_frame,
    read_listings,
)
from couturier.domains.authentication._recipe_evaluation import HoldoutResult, evaluate_holdout
from couturier.domains.authentication._recipe_int8 import ImageVariants, export_variants
from couturier.domains.authentication._recipe_registration import (
    Registrar,
    ReportSpec,
    lineage,
    promote_first_graph,
    register_graph,
    register_image,
    register_listing,
)
from couturier.domains.authentication._recipe_training import (
    FusionFit,
    ImageTraining,
    ListingTraining,
    PhotoOutputs,
    add_references,
    assemble_graph,
    fit_fusion,
    graph_package,
    score_photos,
    train_image,
    train_listing,
)
from couturier.domains.authentication.decision import CostModel
from couturier.domains.authentication.graph import AuthenticationGraph
from couturier.domains.authentication.image_model import ImageTrainConfig
from couturier.features import FeatureRepo
from couturier.marketplace import Marketplace
from couturier.registry import ModelRegistry, RegisteredVersion

__all__ = ["POLICY", "RecipeConfig", "Scored", "run_recipe", "score_period"]

#: The metrics a recipe report headlines, beside the oracle's when it is known.
_HEADLINE = ("pr_auc", "roc_auc", "recall_at_1pct_fpr", "ece", "expected_cost_per_1000")


@dataclass(frozen=True)
class RecipeConfig:
    """How the recipe splits, trains and decides. The defaults are what the benchmark ran."""

    holdout_share: float = 0.3  # newest listings, for judging only
    fusion_share: float = 0.25  # newest part of the training period: fusion and thresholds
    image_valid_share: float = 0.15  # newest part of the component period: early stopping
    image_valid_max_photos: int = 8000  # validation cost per epoch (all counterfeit listings kept)
    image: ImageTrainConfig = field(default_factory=ImageTrainConfig)
    int8_max_auc_drop: float = 0.005  # serve int8 when it loses at most this much ROC-AUC
    costs: CostModel = field(default_factory=CostModel)
    report: bool = True
    seed: int = 7


class StageClock:
    """Seconds per stage of the recipe, each told to ``log`` as it ends."""

    def __init__(self, log: Callable[[str], None] | None = None) -> None:
        self.say: Callable[[str], None] = log or (lambda message: None)
        self.seconds: dict[str, float] = {}
        self._start = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.seconds[stage] = round(now - self._start, 2)
        self._start = now
        self.say(f"{stage}: {self.seconds[stage]:.1f} s")


def run_recipe(
    market: Marketplace,
    repo: FeatureRepo,
    registry: ModelRegistry,
    *,
    actor: str = "recipe",
    config: RecipeConfig | None = None,
    log: Callable[[str], None] | None = None,
) -> RecipeReport:
    """Train, evaluate and register the authentication graph on ``market``; see the module.

    Needs listings, photos and verdicts; with the simulator's ``truth`` table the report also
    puts the oracle beside the model (``RecipeReport.oracle``, empty without it). ``log`` is
    told each stage's duration and each image-model epoch.
    """
    cfg = config or RecipeConfig()
    clock = StageClock(log)
    data = RecipeData.load(
        market,
        repo,
        holdout_share=cfg.holdout_share,
        fusion_share=cfg.fusion_share,
        image_valid_share=cfg.image_valid_share,
    )
    clock.lap("data")
    trained = _train(data, cfg, clock)
    holdout = evaluate_holdout(
        trained.graph,
        data,
        trained.photos,
        policy=trained.fusion.policy,
        costs=cfg.costs,
        registry=registry,
    )
    clock.lap("evaluate")
    reg = Registrar(registry, actor, lineage(market, data), data.splits.cutoff, holdout.champion)
    registered = _register(reg, data, trained, holdout, cfg, clock, repo.settings.paths.reports)
    clock.lap("register")
    promote_first_graph(
        registry, registered.graph, [registered.listing, registered.image], actor=actor
    )
    return _recipe_report(registry, reg, data, trained, holdout, registered, clock)


@dataclass
class _Trained:
    """What the training steps leave: both components, the graph built on them, its fusion."""

    listing: ListingTraining
    image: ImageTraining
    variants: ImageVariants
    graph: AuthenticationGraph
    photos: PhotoOutputs  # every photo through the serving variant, computed once
    retrieval_recall_at_10: float
    fusion: FusionFit


def _train(data: RecipeData, cfg: RecipeConfig, clock: StageClock) -> _Trained:
    listing = train_listing(data, seed=cfg.seed)
    clock.lap("listing_model")
    image = train_image(
        data, cfg.image, valid_max_photos=cfg.image_valid_max_photos, seed=cfg.seed, say=clock.say
    )
    clock.lap("image_model")
    variants = export_variants(image, data, max_auc_drop=cfg.int8_max_auc_drop, seed=cfg.seed)
    clock.lap("export_quantize")
    graph = assemble_graph(listing, variants.serving)
    photos = score_photos(graph, data)
    clock.lap("score_photos")
    recall = add_references(graph, data, image, photos, seed=cfg.seed)
    clock.lap("references")
    fit = fit_fusion(graph, data, photos, costs=cfg.costs, seed=cfg.seed)
    clock.lap("fusion")
    return _Trained(listing, image, variants, graph, photos, recall, fit)


@dataclass
class _Registered:
    listing: RegisteredVersion
    image: RegisteredVersion
    graph: RegisteredVersion
    metrics: dict[str, float]  # the graph's, as its run logged them
    report: Path | None


def _register(
    reg: Registrar,
    data: RecipeData,
    trained: _Trained,
    holdout: HoldoutResult,
    cfg: RecipeConfig,
    clock: StageClock,
    reports: Path,
) -> _Registered:
    """Components first, then the graph that names them, with the report on the graph's run."""
    listing_v = register_listing(reg, trained.listing, holdout)
    image_v = register_image(reg, trained.image, trained.variants, data, holdout, cfg.image)
    components = {
        listing_model.MODEL_NAME: listing_v.version,
        image_model.MODEL_NAME: image_v.version,
    }
    references = trained.graph.references
    variant = trained.variants.variant
    metrics = holdout.metrics(
        retrieval_recall_at_10=trained.retrieval_recall_at_10, int8=trained.variants.comparison
    )
    graph_v, report = register_graph(
        reg,
        graph_package(
            trained.fusion, references, components, image_variant=variant, costs=cfg.costs
        ),
        holdout,
        params={
            "model": "logistic-stack+platt",
            "fusion_rows": trained.fusion.rows,
            "holdout_rows": len(holdout.scored.frame),
            "references": len(references),
            "image_variant": variant,
        },
        metrics=metrics,
        policy=trained.fusion.policy,
        seconds=dict(clock.seconds),
        report=ReportSpec(references, data.photos, trained.fusion.policy, cfg.costs, reports)
        if cfg.report
        else None,
    )
    return _Registered(listing_v, image_v, graph_v, metrics, report)


def _recipe_report(
    registry: ModelRegistry,
    reg: Registrar,
    data: RecipeData,
    trained: _Trained,
    holdout: HoldoutResult,
    registered: _Registered,
    clock: StageClock,
) -> RecipeReport:
    metrics, oracle = registered.metrics, holdout.oracle
    return RecipeReport(
        model=fusion.MODEL_NAME,
        version=registered.graph.version,
        gate_passed=registered.graph.verdict.passed,
        champion=registry.alias_version(fusion.MODEL_NAME, "champion"),
        metrics={k: float(metrics[k]) for k in _HEADLINE if k in metrics},
        oracle={k: float(oracle[k]) for k in _HEADLINE if k in oracle},
        lineage=reg.lineage,
        details={
            "components": {
                listing_model.MODEL_NAME: registered.listing.version,
                image_model.MODEL_NAME: registered.image.version,
            },
            "image_variant": trained.variants.variant,
            "int8": trained.variants.comparison,
            "retrieval_recall_at_10": trained.retrieval_recall_at_10,
            "stage_pr_auc": holdout.stage_pr_auc,
            "control_points": holdout.control_points,
            "supervision": "report" if trained.image.reported else "verdict",
            "reported_photos": trained.image.reported,
            "seconds": clock.seconds,
            "image_history": trained.image.trained.history,
            "report": str(registered.report) if registered.report else None,
            "cutoff": data.splits.cutoff.isoformat(),
            "metrics": {k: float(v) for k, v in metrics.items()},
            "oracle": oracle,
        },
    )


def score_period(
    market: Marketplace, repo: FeatureRepo, graph: AuthenticationGraph, since: pd.Timestamp
) -> Scored:
    """Score every judged listing from ``since`` on through ``graph`` (e.g. an unseen factory).

    The frame carries the oracle's probability and the factory when ``market`` has the
    simulator's truth.
    """
    frame, _ = read_frame(market, repo, read_listings(market))
    test = frame[(frame["event_timestamp"] >= since) & frame["verdict"].notna()]
    test = test.reset_index(drop=True)
    photos, images = load_photos(market, test["listing_id"])
    contexts = photo_contexts(photos, test.set_index("listing_id")["brand_id"])
    scores = graph.score(
        test["listing_id"].to_numpy(),
        listing_model.design_matrix(test),
        photos["listing_id"].to_numpy(),
        images,
        contexts,
    )
    return Scored(test, scores, photos)
