"""The authentication graph: three ONNX models and a reference index, scored as one.

::

    listing features ──> listing model ──────────────┐
    photos ──> image model ──> logit ────────────────┼──> fusion ──> P(counterfeit) ──> decision
                         └──> embedding ──> references ──> retrieval score, evidence

The recipe scores its holdout through this class, and serving (issue 6) runs the same code, so
what was evaluated is what answers. A graph is loaded from the registry by the fusion model's
alias: the fusion version names the component versions it was fitted on (``components`` in its
serving spec) and carries the references and the decision thresholds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from couturier.domains.authentication import fusion, image_model, listing_model
from couturier.domains.authentication.decision import DecisionPolicy
from couturier.domains.authentication.evidence import Evidence, ReferenceSet
from couturier.marketplace import VIEWS
from couturier.registry import ModelRegistry, session
from couturier.retrieval import SearchResult

__all__ = ["AuthenticationGraph", "GraphScores"]

#: The fusion model's artifact holding the image model variant it was fitted with.
IMAGE_VARIANT = "image_variant"


@dataclass
class GraphScores:
    probability: np.ndarray  # calibrated, per listing
    decision: np.ndarray  # authentic / review / counterfeit
    listing_p: np.ndarray  # the listing model alone
    photo_logit: np.ndarray  # per photo
    photo_retrieval: np.ndarray  # per photo
    stacked: np.ndarray  # the fusion model's inputs
    neighbours: Any  # SearchResult per photo
    photo_points: np.ndarray  # per photo, per image_model.POINTS: fail logit (NaN: not shown)

    def stage_score(self, column: str) -> np.ndarray:
        """One stage alone, per listing, as a probability-like score (for evaluation): the
        sigmoid of a fusion input, e.g. ``image_max_logit`` or ``retrieval_max_logit``."""
        x = self.stacked[:, fusion.INPUTS.index(column)].astype(float)
        return np.asarray(1.0 / (1.0 + np.exp(-x)))

    def control_points(self, photo_rows: np.ndarray) -> list[dict[str, Any]]:
        """One listing's suspicion per control point its photos show (``photo_rows``: its
        photos' rows here, in their order): a suspicion score in (0, 1), the sigmoid of the
        image model's fail logit for the point (a ranking, not a calibrated probability),
        read from the photo that shows it most suspiciously, and that photo's position
        (0-based), most suspicious first."""
        rows = np.asarray(photo_rows, dtype=np.int64)
        out = []
        for k, name in enumerate(image_model.POINTS):
            logits = self.photo_points[rows, k]
            if not np.isfinite(logits).any():
                continue  # no photo of this listing shows the point
            best = int(np.nanargmax(logits))
            out.append(
                {
                    "point": name,
                    "suspicion": float(1.0 / (1.0 + np.exp(-logits[best]))),
                    "photo": best,
                }
            )
        return sorted(out, key=lambda r: -float(r["suspicion"]))


class AuthenticationGraph:
    def __init__(
        self,
        listing_onnx: bytes,
        image_onnx: bytes,
        fusion_onnx: bytes | None,
        references: ReferenceSet,
        policy: DecisionPolicy,
        versions: dict[str, int] | None = None,
        threads: int = 1,
        fusion_inputs: list[str] | None = None,
    ) -> None:
        self.listing = session(listing_onnx, threads)
        self.image = session(image_onnx, threads)
        self.fusion = session(fusion_onnx, threads) if fusion_onnx is not None else None
        # the columns of fusion.INPUTS the fusion model was fitted on: a champion registered
        # before the control-point inputs existed reads its five, and keeps serving
        self._fusion_columns = [fusion.INPUTS.index(f) for f in fusion_inputs or fusion.INPUTS]
        self.references = references
        self.policy = policy
        self.versions = dict(versions or {})
        self._threads = threads

    def set_fusion(self, fusion_onnx: bytes, policy: DecisionPolicy) -> None:
        """Complete a graph built before its fusion model was fitted (the recipe does)."""
        self.fusion = session(fusion_onnx, self._threads)
        self.policy = policy
        self._fusion_columns = list(range(len(fusion.INPUTS)))

    @classmethod
    def from_registry(
        cls, registry: ModelRegistry, ref: str | int = "champion", threads: int = 1
    ) -> AuthenticationGraph:
        head = registry.load(fusion.MODEL_NAME, ref)
        components = head.spec["components"]
        listing = registry.load(listing_model.MODEL_NAME, int(components[listing_model.MODEL_NAME]))
        image = registry.load(image_model.MODEL_NAME, int(components[image_model.MODEL_NAME]))
        variant = head.spec.get(IMAGE_VARIANT, "fp32")
        image_bytes = image.artifacts["model.int8.onnx"] if variant == "int8" else image.onnx_model
        t = head.spec["thresholds"]
        return cls(
            listing.onnx_model,
            image_bytes,
            head.onnx_model,
            ReferenceSet.from_artifacts(head.artifacts),
            DecisionPolicy(float(t["review"]), float(t["counterfeit"])),
            {
                fusion.MODEL_NAME: head.version,
                listing_model.MODEL_NAME: listing.version,
                image_model.MODEL_NAME: image.version,
            },
            threads,
            fusion_inputs=list(head.spec.get("features") or fusion.INPUTS),
        )

    def check(self) -> str | None:
        """Score one listing with one blank photo of each brand-0 view through every stage:
        None when the graph answers a finite probability, else why it must not serve (a
        version that fails this is never swapped in)."""
        try:
            contexts = image_model.context_codes([0], ["front"])
            images = np.zeros((1, 96, 96, 3), np.uint8)
            x = np.zeros((1, len(listing_model.INPUTS)), np.float32)
            scores = self.score(np.array([0]), x, np.array([0]), images, contexts)
        except Exception as exc:
            return f"the graph failed on a blank listing: {type(exc).__name__}: {exc}"
        if not np.isfinite(scores.probability).all():
            return "the graph's probability is not finite on a blank listing"
        return None

    # ---- stages ----------------------------------------------------------------------------
    def listing_scores(self, x: np.ndarray) -> np.ndarray:
        (p,) = self.listing.run(["probabilities"], {"features": x.astype(np.float32)})
        return np.asarray(p)[:, 1]

    def image_outputs(
        self, images: np.ndarray, contexts: np.ndarray, batch: int = 256
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per photo: logit, embedding, control-point fail logits."""
        return image_model.run_onnx(self.image, images, contexts, batch)

    def fuse(self, stacked: np.ndarray) -> np.ndarray:
        if self.fusion is None:  # stacked inputs only, before the fusion model exists
            return np.full(len(stacked), np.nan)
        x = np.ascontiguousarray(stacked[:, self._fusion_columns])
        (p,) = self.fusion.run(["probabilities"], {self.fusion.get_inputs()[0].name: x})
        return np.asarray(p)[:, 1]

    # ---- the whole graph --------------------------------------------------------------------
    def score(
        self,
        listing_ids: np.ndarray,
        listing_x: np.ndarray,
        photo_listing: np.ndarray,
        images: np.ndarray | None = None,
        contexts: np.ndarray | None = None,
        *,
        photo_outputs: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
        neighbours: SearchResult | None = None,
    ) -> GraphScores:
        """Score listings (rows of ``listing_x``) with their photos (``photo_listing`` says whose).

        ``photo_outputs`` (logits, embeddings, control-point logits) skips the image model
        when they are known, and ``neighbours`` the reference search.
        """
        if contexts is None:
            raise ValueError("contexts are required")
        if photo_outputs is None:
            if images is None:
                raise ValueError("images or photo_outputs are required")
            photo_outputs = self.image_outputs(images, contexts)
        photo_logit, embeddings, points = photo_outputs
        listing_p = self.listing_scores(listing_x)
        if neighbours is None:
            neighbours = self.references.search(embeddings, contexts)
        retrieval = self.references.photo_scores(neighbours)
        views = np.asarray(contexts) % len(VIEWS)
        stacked = fusion.stack(
            listing_ids, listing_p, photo_listing, photo_logit, retrieval, points, views
        )
        p = self.fuse(stacked)
        shown = np.where(image_model.VISIBLE[views], points, np.nan).astype(np.float32)
        return GraphScores(
            p, self.policy.decide(p), listing_p, photo_logit, retrieval, stacked, neighbours, shown
        )

    def evidence(self, scores: GraphScores, photo_rows: Any) -> Evidence:
        return self.references.evidence(scores.neighbours, photo_rows)
