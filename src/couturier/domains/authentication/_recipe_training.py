"""The recipe's training steps: the two component models, the references, the fusion.

Each step reads :class:`RecipeData` and fits on its own split only: the listing and image
models and the references on the component period (the image model stops early on the
period's newest photos), the fusion and the decision thresholds on the fusion fold.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from couturier.domains.authentication import fusion, image_model, labels, listing_model
from couturier.domains.authentication._recipe_data import RecipeData, Scored
from couturier.domains.authentication.decision import (
    CostModel,
    DecisionPolicy,
    fit_policy,
)
from couturier.domains.authentication.evidence import ReferenceSet
from couturier.domains.authentication.graph import IMAGE_VARIANT, AuthenticationGraph
from couturier.domains.authentication.image_model import ImageTrainConfig, TrainedImageModel
from couturier.registry import ModelPackage

__all__ = [
    "FusionFit",
    "ImageTraining",
    "ListingTraining",
    "PhotoOutputs",
    "add_references",
    "assemble_graph",
    "cap_validation",
    "fit_fusion",
    "graph_package",
    "score_photos",
    "score_split",
    "train_image",
    "train_listing",
]

#: How many nearest references a photo's retrieval score and its evidence use.
NEIGHBOURS = 10


@dataclass
class ListingTraining:
    """The listing model, fitted on the component period, and its registry package."""

    model: Any
    package: ModelPackage
    rows: int  # training listings


@dataclass
class ImageTraining:
    """The image model and which photos it saw (masks over ``RecipeData.photos``)."""

    trained: TrainedImageModel
    train: np.ndarray  # photos it was fitted on
    valid: np.ndarray  # photos it stopped early on (all counterfeit ones, capped authentic)
    in_component: np.ndarray  # every photo of the component period
    reported: int = 0  # training photos with at least one control-point target

    @property
    def rows(self) -> np.ndarray:
        """The photos it saw, fitted or validated, by index."""
        return np.flatnonzero(self.train | self.valid)


@dataclass
class PhotoOutputs:
    """Every photo's logit, embedding and control-point fail logits through the serving
    variant, computed once."""

    logit: np.ndarray
    embedding: np.ndarray
    points: np.ndarray

    def at(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.logit[rows], self.embedding[rows], self.points[rows]


@dataclass
class FusionFit:
    """The fusion head (packaged without its components yet) and the decision thresholds."""

    head: ModelPackage
    policy: DecisionPolicy
    rows: int  # fusion-fold listings


def train_listing(data: RecipeData, *, seed: int) -> ListingTraining:
    """LightGBM on the component period's listing, seller and product features."""
    component = data.splits.component
    x = listing_model.design_matrix(data.frame)[component.to_numpy()]
    model = listing_model.train(x, data.frame.loc[component, "label"].to_numpy(), seed=seed)
    return ListingTraining(model, listing_model.package(model, x[:500], {}), int(component.sum()))


def train_image(
    data: RecipeData,
    config: ImageTrainConfig,
    *,
    valid_max_photos: int,
    seed: int,
    say: Callable[[str], None],
) -> ImageTraining:
    """The CNN on the component period's photos, stopping early on the period's newest part."""
    label = data.photo_label
    in_component = data.photos_of(data.splits.component)
    newest = (data.photo_time >= data.splits.valid_start).to_numpy()
    valid = cap_validation(in_component & newest, label, data.photo_listing, valid_max_photos, seed)
    train = in_component & ~newest
    rows = np.flatnonzero(train | valid)
    component = data.splits.component
    reports = (  # verdicts alone: the reports are not read at all
        labels.photo_targets(
            data.frame,
            data.photos.iloc[rows],
            component,
            labels.MeasureScale.fit(data.frame[component]),
        )
        if config.reports
        else image_model.PointTargets.none(len(rows))
    )
    trained = image_model.train_image_model(
        data.images[rows],
        data.contexts[rows],
        label[rows],
        data.photo_listing[rows],
        valid[rows],
        config,
        log=lambda h: say(
            f"  image epoch {h['epoch']}: loss {h['loss']:.3f}, "
            f"valid PR-AUC {h['valid_listing_pr_auc']:.3f} ({h['seconds']:.0f} s)"
        ),
        targets=reports,
    )
    fitted = ~valid[rows]  # the photos it trained on (validation photos only judge epochs)
    reported = int((~np.isnan(reports.fail[fitted])).any(axis=1).sum())
    return ImageTraining(trained, train, valid, in_component, reported)


def cap_validation(
    valid: np.ndarray, label: np.ndarray, listing: np.ndarray, max_photos: int, seed: int
) -> np.ndarray:
    """Keep every counterfeit validation listing and as many authentic ones as the cap allows."""
    if valid.sum() <= max_photos:
        return valid
    rng = np.random.default_rng(seed)
    authentic = np.unique(listing[valid & (label == 0)])
    room = max_photos - int((valid & (label == 1)).sum())
    keep = rng.permutation(authentic)[: max(room // 3, 1)]  # ~2.5 photos per listing
    return np.asarray(valid & ((label == 1) | np.isin(listing, keep)))


def assemble_graph(listing: ListingTraining, image_onnx: bytes) -> AuthenticationGraph:
    """The graph of the two components, before it has references or a fusion head."""
    return AuthenticationGraph(
        listing.package.onnx_model,
        image_onnx,
        None,
        ReferenceSet.empty(image_model.EMBEDDING_DIM),
        DecisionPolicy(0.5, 0.5),
        threads=os.cpu_count() or 1,
    )


def score_photos(graph: AuthenticationGraph, data: RecipeData) -> PhotoOutputs:
    """Every photo through the graph's image model, once: later steps reuse the outputs."""
    return PhotoOutputs(*graph.image_outputs(data.images, data.contexts))


def add_references(
    graph: AuthenticationGraph,
    data: RecipeData,
    image: ImageTraining,
    photos: PhotoOutputs,
    *,
    seed: int,
) -> float:
    """Give the graph every verified photo of the component period as a reference; return
    the index's recall@10 against exact search, on up to 2,000 holdout photos."""
    refs = image.in_component
    graph.references = ReferenceSet.build(
        data.photos["photo_id"].to_numpy()[refs],
        data.photo_listing[refs],
        photos.embedding[refs],
        data.contexts[refs],
        data.photo_label[refs].astype(bool),
    )
    hold_photo = np.flatnonzero(data.photos_of(data.splits.holdout))
    queries = np.random.default_rng(seed).permutation(hold_photo)[:2000]
    return graph.references.recall_at_k(
        photos.embedding[queries], data.contexts[queries], NEIGHBOURS
    )


def score_split(
    graph: AuthenticationGraph, data: RecipeData, photos: PhotoOutputs, mask: pd.Series
) -> Scored:
    """The listings where ``mask`` is True, scored through the graph from the photo outputs."""
    frame = data.frame[mask].reset_index(drop=True)
    rows = data.photos["listing_id"].isin(frame["listing_id"]).to_numpy()
    scores = graph.score(
        frame["listing_id"].to_numpy(),
        listing_model.design_matrix(frame),
        data.photo_listing[rows],
        contexts=data.contexts[rows],
        photo_outputs=photos.at(rows),
    )
    return Scored(frame, scores, data.photos[rows])


def fit_fusion(
    graph: AuthenticationGraph,
    data: RecipeData,
    photos: PhotoOutputs,
    *,
    costs: CostModel,
    seed: int,
) -> FusionFit:
    """Stack and calibrate on the fusion fold, pick the thresholds on its out-of-fold
    probabilities, and complete the graph with both."""
    fold = score_split(graph, data, photos, data.splits.fusion_fold)
    y = fold.frame["label"].to_numpy()
    stacked = fold.scores.stacked
    model = fusion.fit_fusion(stacked, y, seed=seed)
    policy = fit_policy(fusion.out_of_fold(stacked, y, seed=seed), y, costs)
    head = fusion.package(
        model, stacked[:500], policy.as_thresholds(), components={}, artifacts={}, extra={}
    )
    graph.set_fusion(head.onnx_model, policy)
    return FusionFit(head, policy, len(fold.frame))


def graph_package(
    fit: FusionFit,
    references: ReferenceSet,
    components: dict[str, int],
    *,
    image_variant: str,
    costs: CostModel,
) -> ModelPackage:
    """The fusion head as the graph's entry in the registry: it names the component versions
    and carries the references and the costs its thresholds were chosen under."""
    bundle = references.to_artifacts()
    return replace(
        fit.head,
        components=components,
        artifacts=bundle,
        extra={
            IMAGE_VARIANT: image_variant,
            "costs": costs.__dict__,
            "references": {
                "photos": len(references),
                "fingerprint": ReferenceSet.fingerprint(bundle),
                "k": NEIGHBOURS,
            },
        },
    )
