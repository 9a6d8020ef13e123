"""fp32 or int8? The image model's two ONNX variants, compared on the same photos.

The int8 variant (static, QDQ, calibrated on up to 512 training photos) serves when it loses
at most ``max_auc_drop`` listing ROC-AUC on the validation photos; its speed-up is measured on
one thread, the variants taking turns so that the machine's noise hits both alike.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from couturier.domains.authentication import image_model
from couturier.domains.authentication._recipe_data import RecipeData
from couturier.domains.authentication._recipe_training import ImageTraining

__all__ = ["ImageVariants", "compare_int8", "export_variants"]

#: At most this many training photos calibrate the int8 activations.
CALIBRATION_PHOTOS = 512


@dataclass(frozen=True)
class ImageVariants:
    """The image model's ONNX variants, their comparison and the one chosen to serve."""

    fp32: bytes
    int8: bytes
    comparison: dict[str, float]  # see compare_int8
    variant: str  # "int8" or "fp32"

    @property
    def serving(self) -> bytes:
        return self.int8 if self.variant == "int8" else self.fp32


def export_variants(
    image: ImageTraining, data: RecipeData, *, max_auc_drop: float, seed: int
) -> ImageVariants:
    """Export fp32, quantize to int8 on training photos, compare, and choose what serves."""
    fp32 = image_model.export_onnx(image.trained.net)
    train = np.flatnonzero(image.train)
    calib = np.random.default_rng(seed).choice(
        train, min(CALIBRATION_PHOTOS, len(train)), replace=False
    )
    int8 = image_model.quantize_int8(
        fp32, {"image": data.images[calib], "context": data.contexts[calib]}
    )
    comparison = compare_int8(
        fp32, int8, data.images, data.contexts, data.photos, data.photo_label, image.valid
    )
    variant = "int8" if comparison["auc_drop"] <= max_auc_drop else "fp32"
    return ImageVariants(fp32, int8, comparison, variant)


def compare_int8(
    fp32: bytes,
    int8: bytes,
    images: np.ndarray,
    contexts: np.ndarray,
    photos: pd.DataFrame,
    label: np.ndarray,
    valid: np.ndarray,
) -> dict[str, float]:
    """ROC-AUC (listing max-logit, validation listings) and one-thread speed of both variants.

    Returns ``fp32_roc_auc``, ``int8_roc_auc``, ``auc_drop`` (fp32 - int8), the photos per
    second of each (``fp32_photos_per_s``, ``int8_photos_per_s``) and their ratio, ``speedup``.
    """
    from sklearn.metrics import roc_auc_score

    from couturier.registry import session

    rows = np.flatnonzero(valid)
    result: dict[str, float] = {}
    sessions = {"fp32": session(fp32, threads=1), "int8": session(int8, threads=1)}
    for name, sess in sessions.items():
        logits = image_model.run_onnx(sess, images[rows], contexts[rows])[0]
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
