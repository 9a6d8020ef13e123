"""What the recipe declares about each model it registers: the gate it must pass and its card.

The decision model (the fusion, ``authentication``) promises calibrated probabilities, so its
gate bounds the expected calibration error. The components are judged on ranking only: their
scores are inputs of the fusion, which calibrates them, so their gates set no calibration
bound (``max_ece=None``) and their verdicts say "not judged" for it rather than "passed".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from couturier.domains.authentication import fusion, image_model, listing_model
from couturier.evaluation import Evaluation
from couturier.registry import GatePolicy, ModelCard

__all__ = [
    "CARDS",
    "IMAGE_POLICY",
    "LISTING_POLICY",
    "POLICIES",
    "POLICY",
    "CardText",
]

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
LISTING_POLICY = GatePolicy(
    metric="pr_auc", max_ece=None, latency_budget_ms=5.0, min_slice_size=200
)
IMAGE_POLICY = GatePolicy(metric="pr_auc", max_ece=None, latency_budget_ms=25.0, min_slice_size=200)


@dataclass(frozen=True)
class CardText:
    """The words of a model card; the recipe adds the evaluation and lineage of each run."""

    intended_use: str
    limitations: tuple[str, ...]

    def card(self, name: str, evaluation: Evaluation, lineage: dict[str, Any]) -> ModelCard:
        return ModelCard(
            name=name,
            intended_use=self.intended_use,
            limitations=list(self.limitations),
            evaluation=evaluation,
            lineage=lineage,
        )


_LISTING_CARD = CardText(
    "rank new listings by counterfeit risk from listing, seller and product data; one input "
    "of the authentication graph, never the decision alone",
    (
        "sees no photos: most counterfeit signal is in the photos",
        "uncalibrated on its own: the fusion model calibrates",
    ),
)
_IMAGE_CARD = CardText(
    "score each listing photo for counterfeit flaws and embed it for evidence retrieval; one "
    "input of the authentication graph",
    (
        "trained from scratch on simulated photos at 96 px; a real deployment retrains on real "
        "photos",
        "per-photo labels are the listing's verdict: a photo that shows no flaw is still "
        "labelled counterfeit",
        "its logit is not a probability; the listing score is the maximum over photos",
    ),
)
_FUSION_CARD = CardText(
    "decide authentic / review / counterfeit for a new listing from its listing data and "
    "photos, with a calibrated probability and the nearest verified references as evidence",
    (
        "trained and judged on simulated data; labels are expert verdicts with errors",
        "a counterfeit factory unlike those in training may pass: see the unseen-factory "
        "evaluation in the benchmark",
    ),
)

#: Each registered model's gate, by model name.
POLICIES: dict[str, GatePolicy] = {
    listing_model.MODEL_NAME: LISTING_POLICY,
    image_model.MODEL_NAME: IMAGE_POLICY,
    fusion.MODEL_NAME: POLICY,
}
#: Each registered model's card text, by model name.
CARDS: dict[str, CardText] = {
    listing_model.MODEL_NAME: _LISTING_CARD,
    image_model.MODEL_NAME: _IMAGE_CARD,
    fusion.MODEL_NAME: _FUSION_CARD,
}
