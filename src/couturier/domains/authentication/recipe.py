"""The authentication training recipe, as one function a pipeline can call.

data -> point-in-time training set -> train the components -> fit the fusion -> evaluate
(overall, slices, against the oracle, against the champion on the same holdout) -> package and
register through the gates -> evaluation report.

Time splits, oldest to newest (listing time; labels must have arrived by the cutoff)::

    |------ component period ------|-- fusion fold --|========= holdout =========|
    |  listing model, image model, |  stacking,      |  final verdicts; nothing  |
    |  references (its newest part |  calibration,   |  here is used to fit      |
    |  stops the image model)      |  thresholds     |  anything                 |
                                                     ^ cutoff

Every photo and listing is checked before any training starts, so bad input stops the recipe
at once, naming the row, the field and the rule.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from couturier.domain import RecipeReport
from couturier.domains.authentication import fusion, image_model, listing_model
from couturier.domains.authentication.decision import (
    CostModel,
    DecisionPolicy,
    expected_cost_per_1000,
    fit_policy,
)
from couturier.domains.authentication.evidence import ReferenceSet
from couturier.domains.authentication.graph import IMAGE_VARIANT, AuthenticationGraph, GraphScores
from couturier.domains.authentication.image_model import ImageTrainConfig
from couturier.domains.authentication.photos import decode_photo
from couturier.errors import InvalidInputError
from couturier.evaluation import Evaluation, evaluate
from couturier.features import FeatureRepo, build_training_set
from couturier.marketplace import Marketplace
from couturier.marketplace._catalog import CATEGORIES
from couturier.registry import (
    GatePolicy,
    ModelCard,
    ModelPackage,
    ModelRegistry,
    RegisteredVersion,
)

__all__ = ["POLICY", "RecipeConfig", "Scored", "run_recipe", "score_period"]

#: The decision model's gate: calibration is part of what it promises.
POLICY = GatePolicy(
    metric="pr_auc",
    min_improvement=0.0,
    max_slice_regression=0.05,
    min_slice_size=200,
    max_ece=0.03,
    latency_budget_ms=5.0,
)
#: Components are judged on ranking; the fusion calibrates them, so their ECE is not judged.
LISTING_POLICY = GatePolicy(metric="pr_auc", max_ece=1.0, latency_budget_ms=5.0, min_slice_size=200)
IMAGE_POLICY = GatePolicy(metric="pr_auc", max_ece=1.0, latency_budget_ms=25.0, min_slice_size=200)
_PRICE_BANDS = [0.0, 500.0, 2000.0, 5000.0, np.inf]
_REQUIRED = ("listing_id", "brand_id", "category", "asking_price", "created_at", "n_photos")


@dataclass(frozen=True)
class RecipeConfig:
    holdout_share: float = 0.3  # newest listings, for judging only
    fusion_share: float = 0.25  # newest part of the training period: fusion and thresholds
    image_valid_share: float = 0.15  # newest part of the component period: early stopping
    image_valid_max_photos: int = 8000  # validation cost per epoch (all counterfeit listings kept)
    image: ImageTrainConfig = field(default_factory=ImageTrainConfig)
    int8_max_auc_drop: float = 0.005  # serve int8 when it loses at most this much ROC-AUC
    costs: CostModel = field(default_factory=CostModel)
    report: bool = True
    seed: int = 7


@dataclass
class Scored:
    """One period scored through a graph, with what evaluation needs beside the scores."""

    frame: pd.DataFrame  # one row per listing: ids, label, oracle, slices, price
    scores: GraphScores
    photos: pd.DataFrame  # one row per photo: photo_id, listing_id, view, image (bytes)


# ---- data ---------------------------------------------------------------------------------
def _listings(market: Marketplace) -> pd.DataFrame:
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


def _frame(market: Marketplace, repo: FeatureRepo, listings: pd.DataFrame) -> tuple[Any, Any]:
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
    truth = market.read("truth", ["listing_id", "oracle_p_counterfeit", "factory_id"])
    frame = frame.merge(verdicts, on="listing_id", how="left").merge(truth, on="listing_id")
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


def _contexts(photos: pd.DataFrame, brand_of: pd.Series) -> np.ndarray:
    return image_model.context_codes(photos["listing_id"].map(brand_of), photos["view"])


# ---- the recipe ----------------------------------------------------------------------------
def run_recipe(
    market: Marketplace,
    repo: FeatureRepo,
    registry: ModelRegistry,
    *,
    actor: str = "recipe",
    config: RecipeConfig | None = None,
    log: Any = None,
) -> RecipeReport:
    cfg = config or RecipeConfig()
    say = log or (lambda message: None)
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[stage] = round(now - clock, 2)
        clock = now
        say(f"{stage}: {timings[stage]:.1f} s")

    listings = _listings(market)
    frame, ts = _frame(market, repo, listings)
    times = frame["event_timestamp"]
    cutoff = pd.Timestamp(times.quantile(1 - cfg.holdout_share))
    labelled = (times < cutoff) & (frame["label_arrived_at"] <= cutoff)
    fusion_start = pd.Timestamp(times[labelled].quantile(1 - cfg.fusion_share))
    component = labelled & (times < fusion_start)
    fusion_fold = labelled & (times >= fusion_start)
    hold = (times >= cutoff) & frame["verdict"].notna()
    valid_start = pd.Timestamp(times[component].quantile(1 - cfg.image_valid_share))
    used = component | fusion_fold | hold
    photos, images = load_photos(market, frame.loc[used, "listing_id"])
    brand_of = frame.set_index("listing_id")["brand_id"]
    contexts = _contexts(photos, brand_of)
    lap("data")

    # ---- listing model
    x_all = listing_model.design_matrix(frame)
    lgbm = listing_model.train(
        x_all[component.to_numpy()], frame.loc[component, "label"].to_numpy(), seed=cfg.seed
    )
    lap("listing_model")

    # ---- image model: train on the component period, stop early on its newest part
    at = frame.set_index("listing_id")
    photo_time = photos["listing_id"].map(at["event_timestamp"])
    photo_label = photos["listing_id"].map(at["label"]).to_numpy()
    in_component = photos["listing_id"].isin(frame.loc[component, "listing_id"]).to_numpy()
    valid = in_component & (photo_time >= valid_start).to_numpy()
    valid = _cap_validation(valid, photo_label, photos["listing_id"].to_numpy(), cfg)
    train_rows = in_component & (photo_time < valid_start).to_numpy()
    rows = np.flatnonzero(train_rows | valid)
    trained = image_model.train_image_model(
        images[rows],
        contexts[rows],
        photo_label[rows],
        photos["listing_id"].to_numpy()[rows],
        valid[rows],
        cfg.image,
        log=lambda h: say(
            f"  image epoch {h['epoch']}: loss {h['loss']:.3f}, "
            f"valid PR-AUC {h['valid_listing_pr_auc']:.3f} ({h['seconds']:.0f} s)"
        ),
    )
    lap("image_model")
    fp32 = image_model.export_onnx(trained.net)
    calib = np.random.default_rng(cfg.seed).choice(
        np.flatnonzero(train_rows), min(512, int(train_rows.sum())), replace=False
    )
    int8 = image_model.quantize_int8(fp32, {"image": images[calib], "context": contexts[calib]})
    quant = _compare_int8(fp32, int8, images, contexts, photos, photo_label, valid)
    variant = "int8" if quant["auc_drop"] <= cfg.int8_max_auc_drop else "fp32"
    lap("export_quantize")

    # ---- score every photo once, with the variant that will serve
    threads = os.cpu_count() or 1
    listing_package = listing_model.package(lgbm, x_all[component.to_numpy()][:500], {})
    graph = AuthenticationGraph(
        listing_package.onnx_model,
        int8 if variant == "int8" else fp32,
        None,
        ReferenceSet.empty(image_model.EMBEDDING_DIM),
        DecisionPolicy(0.5, 0.5),
        threads=threads,
    )
    photo_logit, embedding = graph.image_outputs(images, contexts)
    lap("score_photos")

    # ---- references: every verified photo of the component period
    ref_rows = in_component
    graph.references = ReferenceSet.build(
        photos["photo_id"].to_numpy()[ref_rows],
        photos["listing_id"].to_numpy()[ref_rows],
        embedding[ref_rows],
        contexts[ref_rows],
        photo_label[ref_rows].astype(bool),
    )
    hold_photo = np.flatnonzero(photos["listing_id"].isin(frame.loc[hold, "listing_id"]))
    queries = np.random.default_rng(cfg.seed).permutation(hold_photo)[:2000]
    retrieval_recall = graph.references.recall_at_k(embedding[queries], contexts[queries], 10)
    lap("references")

    # ---- fusion on the fusion fold, thresholds on its out-of-fold probabilities
    def period(mask: pd.Series) -> tuple[pd.DataFrame, GraphScores]:
        sub = frame[mask].reset_index(drop=True)
        prow = photos["listing_id"].isin(sub["listing_id"]).to_numpy()
        scores = graph.score(
            sub["listing_id"].to_numpy(),
            listing_model.design_matrix(sub),
            photos["listing_id"].to_numpy()[prow],
            contexts=contexts[prow],
            photo_outputs=(photo_logit[prow], embedding[prow]),
        )
        return sub, scores

    fold, fold_scores = period(fusion_fold)
    y_fold = fold["label"].to_numpy()
    fuser = fusion.fit_fusion(fold_scores.stacked, y_fold, seed=cfg.seed)
    policy = fit_policy(
        fusion.out_of_fold(fold_scores.stacked, y_fold, seed=cfg.seed), y_fold, cfg.costs
    )
    head = fusion.package(
        fuser,
        fold_scores.stacked[:500],
        policy.as_thresholds(),
        components={},
        artifacts={},
        extra={},
    )
    graph.set_fusion(head.onnx_model, policy)
    lap("fusion")

    # ---- evaluate on the holdout, through the graph
    test, scores = period(hold)
    holdout_id = f"{ts.fingerprint[:16]}@{cutoff.isoformat()}"
    y = test["label"].to_numpy()
    slices = _slices(test)
    ev = evaluate(y, scores.probability, slices, holdout=holdout_id)
    cost = expected_cost_per_1000(scores.probability, y, policy, cfg.costs)
    oracle_p = test["oracle_p_counterfeit"].to_numpy()
    oracle = evaluate(y, oracle_p, holdout=holdout_id).overall
    oracle["expected_cost_per_1000"] = expected_cost_per_1000(
        oracle_p, y, fit_policy(oracle_p, y, cfg.costs), cfg.costs
    )
    listing_ev = evaluate(y, scores.listing_p, slices, holdout=holdout_id)
    image_ev = evaluate(y, scores.stage_score("image_max_logit"), slices, holdout=holdout_id)
    stage_pr_auc = {
        "listing_model": listing_ev.overall["pr_auc"],
        "image_model": image_ev.overall["pr_auc"],
        "retrieval": evaluate(
            y, scores.stage_score("retrieval_max_logit"), holdout=holdout_id
        ).overall["pr_auc"],
        "fusion": ev.overall["pr_auc"],
    }
    champion = _champion(registry, test, photos, images, contexts, slices, holdout_id)
    lap("evaluate")

    # ---- register: components first, then the fusion that names them
    lineage = {
        **ts.lineage,
        "simulator_seed": market.config.seed,
        "simulator_scenario": market.config.scenario,
        "holdout": holdout_id,
        "fusion_fold_start": fusion_start.isoformat(),
    }

    def enter(
        package: ModelPackage,
        evaluation: Evaluation,
        policy_: GatePolicy,
        params: dict[str, Any],
        card: tuple[str, list[str]],
        log_more: Any = None,
        after: Any = None,
    ) -> RegisteredVersion:
        """One run per model: params, evaluation, extra logging, the gate, the card."""
        name = package.name
        with registry.start_run(
            "authentication", f"{name}-{cutoff.date()}", params=params, lineage=lineage
        ) as run:
            run.log_evaluation(evaluation)
            if log_more is not None:
                log_more(run)
            registered = registry.register(
                package,
                evaluation,
                run=run,
                policy=policy_,
                champion_evaluation=champion.get(name),
                card=ModelCard(
                    name=name,
                    intended_use=card[0],
                    limitations=card[1],
                    evaluation=evaluation,
                    lineage=lineage,
                ),
                actor=actor,
            )
            if after is not None:
                after(run, registered)
        return registered

    listing_v = enter(
        listing_package,
        listing_ev,
        LISTING_POLICY,
        {"model": "lightgbm", "train_rows": int(component.sum())},
        _LISTING_CARD,
    )
    sample = rows[:32]
    image_v = enter(
        image_model.package(trained.net, fp32, int8, images[sample], contexts[sample], variant),
        image_ev,
        IMAGE_POLICY,
        {
            "model": "cnn",
            "train_photos": int(train_rows.sum()),
            "best_epoch": trained.best_epoch,
            "serving_variant": variant,
            **{f"train.{k}": v for k, v in cfg.image.__dict__.items()},
        },
        _IMAGE_CARD,
        log_more=lambda run: (
            run.log_metrics(
                {f"int8.{k}": v for k, v in quant.items()}
                | {"image_train_seconds": trained.seconds}
            ),
            run.log_json(trained.history, "training/history.json"),
        ),
    )
    components = {
        listing_model.MODEL_NAME: listing_v.version,
        image_model.MODEL_NAME: image_v.version,
    }
    metrics = {
        **ev.overall,
        "expected_cost_per_1000": cost,
        "retrieval_recall_at_10": retrieval_recall,
        **{f"int8_{k}": v for k, v in quant.items()},
        **{f"stage_pr_auc.{k}": v for k, v in stage_pr_auc.items()},
    }

    def log_fusion(run: Any) -> None:
        run.log_metrics({**metrics, **policy.as_dict()})
        run.log_metrics(oracle, prefix="oracle.")
        run.log_metrics(timings, prefix="seconds.")
        run.log_evaluation_plots(y, scores.probability, fusion.MODEL_NAME)

    report_paths: list[Path] = []

    def write(run: Any, registered: RegisteredVersion) -> None:
        if not cfg.report:
            return
        from couturier.domains.authentication.report import write_report

        path = write_report(
            Scored(test, scores, photos[photos["listing_id"].isin(test["listing_id"])]),
            graph.references,
            photos,
            policy=policy,
            costs=cfg.costs,
            metrics=metrics,
            oracle=oracle,
            evaluation=ev,
            stage_pr_auc=stage_pr_auc,
            versions={fusion.MODEL_NAME: registered.version, **components},
            folder=repo.settings.paths.reports,
        )
        run.log_file(path, "report")
        report_paths.append(path)

    bundle = graph.references.to_artifacts()
    version = enter(
        replace(
            head,
            components=components,
            artifacts=bundle,
            extra={
                IMAGE_VARIANT: variant,
                "costs": cfg.costs.__dict__,
                "references": {
                    "photos": len(graph.references),
                    "fingerprint": ReferenceSet.fingerprint(bundle),
                    "k": 10,
                },
            },
        ),
        ev,
        POLICY,
        {
            "model": "logistic-stack+platt",
            "fusion_rows": len(fold),
            "holdout_rows": len(test),
            "references": len(graph.references),
            "image_variant": variant,
        },
        _FUSION_CARD,
        log_more=log_fusion,
        after=write,
    )
    report_path = report_paths[0] if report_paths else None
    lap("register")
    if registry.alias_version(fusion.MODEL_NAME, "champion") is None and version.verdict.passed:
        for name, v in ((listing_model.MODEL_NAME, listing_v), (image_model.MODEL_NAME, image_v)):
            if v.verdict.passed and registry.alias_version(name, "champion") is None:
                registry.promote(name, v.version, "champion", actor=actor, reason="first graph")
        registry.promote(
            fusion.MODEL_NAME,
            version.version,
            "champion",
            actor=actor,
            reason="first version to pass its gate",
        )
    keys = ("pr_auc", "roc_auc", "recall_at_1pct_fpr", "ece", "expected_cost_per_1000")
    return RecipeReport(
        model=fusion.MODEL_NAME,
        version=version.version,
        gate_passed=version.verdict.passed,
        champion=registry.alias_version(fusion.MODEL_NAME, "champion"),
        metrics={k: float(metrics[k]) for k in keys if k in metrics},
        oracle={k: float(oracle[k]) for k in keys if k in oracle},
        lineage=lineage,
        details={
            "components": components,
            "image_variant": variant,
            "int8": quant,
            "retrieval_recall_at_10": retrieval_recall,
            "stage_pr_auc": stage_pr_auc,
            "seconds": timings,
            "image_history": trained.history,
            "report": str(report_path) if report_path else None,
            "cutoff": cutoff.isoformat(),
            "metrics": {k: float(v) for k, v in metrics.items()},
            "oracle": oracle,
        },
    )


def score_period(
    market: Marketplace, repo: FeatureRepo, graph: AuthenticationGraph, since: pd.Timestamp
) -> Scored:
    """Score every judged listing from ``since`` on through ``graph`` (e.g. an unseen factory)."""
    listings = _listings(market)
    frame, _ = _frame(market, repo, listings)
    test = frame[(frame["event_timestamp"] >= since) & frame["verdict"].notna()]
    test = test.reset_index(drop=True)
    photos, images = load_photos(market, test["listing_id"])
    contexts = _contexts(photos, test.set_index("listing_id")["brand_id"])
    scores = graph.score(
        test["listing_id"].to_numpy(),
        listing_model.design_matrix(test),
        photos["listing_id"].to_numpy(),
        images,
        contexts,
    )
    return Scored(test, scores, photos)


# ---- helpers ---------------------------------------------------------------------------------
def _cap_validation(
    valid: np.ndarray, label: np.ndarray, listing: np.ndarray, cfg: RecipeConfig
) -> np.ndarray:
    """Keep every counterfeit validation listing and as many authentic ones as the cap allows."""
    if valid.sum() <= cfg.image_valid_max_photos:
        return valid
    rng = np.random.default_rng(cfg.seed)
    authentic = np.unique(listing[valid & (label == 0)])
    room = cfg.image_valid_max_photos - int((valid & (label == 1)).sum())
    keep = rng.permutation(authentic)[: max(room // 3, 1)]  # ~2.5 photos per listing
    return np.asarray(valid & ((label == 1) | np.isin(listing, keep)))


def _compare_int8(
    fp32: bytes,
    int8: bytes,
    images: np.ndarray,
    contexts: np.ndarray,
    photos: pd.DataFrame,
    label: np.ndarray,
    valid: np.ndarray,
) -> dict[str, float]:
    """ROC-AUC (listing max-logit, validation listings) and one-thread speed of both variants."""
    from sklearn.metrics import roc_auc_score

    from couturier.registry._packaging import session

    rows = np.flatnonzero(valid)
    result: dict[str, float] = {}
    sessions = {"fp32": session(fp32, threads=1), "int8": session(int8, threads=1)}
    for name, sess in sessions.items():
        logits, _ = image_model.run_onnx(sess, images[rows], contexts[rows])
        best, y = image_model.listing_max(
            photos["listing_id"].to_numpy()[rows], logits, label[rows]
        )
        result[f"{name}_roc_auc"] = float(roc_auc_score(y, best))
    # one batch of 64, the variants taking turns so that the machine's noise hits both alike
    batch = {"image": images[rows[:64]], "context": contexts[rows[:64]]}
    samples: dict[str, list[float]] = {name: [] for name in sessions}
    for turn in range(16):
        for name, sess in sessions.items():
            t = time.perf_counter()
            sess.run(["logit"], batch)
            if turn:  # the first turn warms up
                samples[name].append(time.perf_counter() - t)
    speed = {name: len(batch["image"]) / float(np.median(s)) for name, s in samples.items()}
    result["fp32_photos_per_s"] = speed["fp32"]
    result["int8_photos_per_s"] = speed["int8"]
    result["speedup"] = speed["int8"] / speed["fp32"]
    result["auc_drop"] = result["fp32_roc_auc"] - result["int8_roc_auc"]
    return result


def _champion(
    registry: ModelRegistry,
    test: pd.DataFrame,
    photos: pd.DataFrame,
    images: np.ndarray,
    contexts: np.ndarray,
    slices: dict[str, Any],
    holdout_id: str,
) -> dict[str, Evaluation]:
    """The current champion graph's evaluations on the same holdout (empty without one)."""
    if registry.alias_version(fusion.MODEL_NAME, "champion") is None:
        return {}
    champ = AuthenticationGraph.from_registry(registry, "champion", threads=os.cpu_count() or 1)
    prow = photos["listing_id"].isin(test["listing_id"]).to_numpy()
    s = champ.score(
        test["listing_id"].to_numpy(),
        listing_model.design_matrix(test),
        photos["listing_id"].to_numpy()[prow],
        images[prow],
        contexts[prow],
    )
    y = test["label"].to_numpy()
    return {
        fusion.MODEL_NAME: evaluate(y, s.probability, slices, holdout=holdout_id),
        listing_model.MODEL_NAME: evaluate(y, s.listing_p, slices, holdout=holdout_id),
        image_model.MODEL_NAME: evaluate(
            y, s.stage_score("image_max_logit"), slices, holdout=holdout_id
        ),
    }


def _slices(frame: pd.DataFrame) -> dict[str, Any]:
    band = pd.cut(frame["price"], _PRICE_BANDS, labels=["<500", "500-2k", "2k-5k", ">5k"])
    return {
        "brand": frame["brand_id"].astype(int).to_numpy(),
        "category": frame["category"].astype(str).to_numpy(),
        "price_band": band.astype(str).to_numpy(),
    }


_LISTING_CARD = (
    "rank new listings by counterfeit risk from listing, seller and product data; one input "
    "of the authentication graph, never the decision alone",
    [
        "sees no photos: most counterfeit signal is in the photos",
        "uncalibrated on its own: the fusion model calibrates",
    ],
)
_IMAGE_CARD = (
    "score each listing photo for counterfeit flaws and embed it for evidence retrieval; one "
    "input of the authentication graph",
    [
        "trained from scratch on simulated photos at 96 px; a real deployment retrains on real "
        "photos",
        "per-photo labels are the listing's verdict: a photo that shows no flaw is still "
        "labelled counterfeit",
        "its logit is not a probability; the listing score is the maximum over photos",
    ],
)
_FUSION_CARD = (
    "decide authentic / review / counterfeit for a new listing from its listing data and "
    "photos, with a calibrated probability and the nearest verified references as evidence",
    [
        "trained and judged on simulated data; labels are expert verdicts with errors",
        "a counterfeit factory unlike those in training may pass: see the unseen-factory "
        "evaluation in the benchmark",
    ],
)
