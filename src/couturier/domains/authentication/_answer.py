"""What ``/v1/authenticate`` answers and logs, once the stages have run: where the photos'
outputs come from (the graph's own image model, or its tier: ``COUTURIER_REMOTE_MODELS``), the
decision with its evidence, and the prediction log's line. Without the photos' outputs (the tier
down) an expert decides: decision 0016.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import numpy as np

from couturier.domains.authentication import fusion, image_model, listing_model
from couturier.domains.authentication.graph import AuthenticationGraph, GraphScores
from couturier.marketplace import CONTROL_POINTS
from couturier.serving import RemoteModel, RemoteModelError

__all__ = ["IMAGE_OUTPUTS", "ImageOutputs", "decision_fields", "log_record", "photo_outputs"]

#: The image model's outputs the graph reads, in the order ``graph.score`` takes them.
IMAGE_OUTPUTS = ("logit", "embedding", "points")
#: (logits, embeddings, control-point logits) per photo, or None and why (the tier is down).
ImageOutputs = tuple[tuple[np.ndarray, np.ndarray, np.ndarray] | None, str | None]
#: How a person reads each control point's name, for the answer's ``control_points``.
POINT_LABELS = {p.name: p.label for p in CONTROL_POINTS}
log = logging.getLogger("couturier.authentication")


def photo_outputs(
    tier: RemoteModel | None,
    graph: AuthenticationGraph,
    images: np.ndarray,
    contexts: np.ndarray,
) -> ImageOutputs:
    """The photos' (logits, embeddings, control-point logits) from the graph's own image
    model, or from the image tier when one is configured; (None, why) when the tier fails.
    The tier is asked for the graph's image version: its embeddings are the references'."""
    if tier is None:
        return graph.image_outputs(images, contexts), None
    try:
        got = tier.infer(
            {"image": images, "context": contexts},
            list(IMAGE_OUTPUTS),
            version=graph.versions.get(image_model.MODEL_NAME),
        )
    except RemoteModelError as exc:  # the URL stays in the logs, out of the answer
        return None, without_photos(exc.context.get("reason", exc.message))
    logit, embedding, points = (got.outputs[name] for name in IMAGE_OUTPUTS)
    n = len(images)
    shapes = (logit.shape, embedding.shape, points.shape)
    if shapes != ((n,), (n, image_model.EMBEDDING_DIM), (n, len(image_model.POINTS))):
        log.warning("image tier %s answered shapes %s for %d photos", tier.url, shapes, n)
        return None, without_photos(f"answered outputs of shapes {shapes} for {n} photos")
    return (logit, embedding, points), None


def without_photos(reason: str) -> str:
    return (
        f"image tier: {reason}; decided without the photos: sent to an expert, and the "
        "probability is the listing model's alone"
    )


def decision_fields(
    graph: AuthenticationGraph, scores: GraphScores | None, x: np.ndarray, views: list[str]
) -> dict[str, Any]:
    """The answer's decision, probability and evidence. Without the photos' outputs (the image
    tier down) the listing model's probability is all there is, and an expert decides."""
    if scores is None:
        listing_p = float(graph.listing_scores(x)[0])
        return {
            "decision": "review",
            "probability": listing_p,
            "thresholds": graph.policy.as_thresholds(),
            "photos": [{"view": v, "logit": None, "retrieval_score": None} for v in views],
            "control_points": [],
            "listing_model_probability": listing_p,
            "evidence": [],
        }
    photos = np.arange(len(views))
    return {
        "decision": str(scores.decision[0]),
        "probability": float(scores.probability[0]),
        "thresholds": graph.policy.as_thresholds(),
        "photos": [
            {"view": view, "logit": float(lo), "retrieval_score": float(r)}
            for view, lo, r in zip(views, scores.photo_logit, scores.photo_retrieval, strict=True)
        ],
        "control_points": [
            {**cp, "label": POINT_LABELS[cp["point"]]} for cp in scores.control_points(photos)
        ],
        "listing_model_probability": float(scores.listing_p[0]),
        "evidence": graph.evidence(scores, photos).as_records(),
    }


def log_record(
    answer: dict[str, Any],
    listing: dict[str, Any],
    at: datetime,
    x: np.ndarray,
    outputs: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
    scores: GraphScores | None,
) -> dict[str, Any]:
    """The prediction log's line: the answer, its time and inputs, and what monitoring reads."""
    return {
        **answer,
        "at": at.isoformat(),
        "listing": listing,
        # the photos' mean embedding: monitoring tests embedding drift on these (none when the
        # image tier was down: the answer is degraded, counted and never judged)
        "embedding": None if outputs is None else np.round(outputs[1].mean(axis=0), 4).tolist(),
        "features": dict(zip(listing_model.INPUTS, x[0].tolist(), strict=True)),
        "fusion_inputs": None
        if scores is None
        else {  # NaN (a point no photo shows) as null: JSON
            k: (v if np.isfinite(v) else None)
            for k, v in zip(fusion.INPUTS, scores.stacked[0].tolist(), strict=True)
        },
    }
