"""Fusion: one calibrated probability from the listing model, the photos and the evidence.

Per listing, the inputs ``INPUTS``: the listing model's logit, the maximum and the mean of its
photos' logits, the logit of its highest retrieval score, its number of photos (more photos,
more chances for a high maximum), and per control point a photo can show, the highest fail
logit among the photos whose view shows it (missing when none does: the median of the fusion
fold stands in, ``SimpleImputer``). The evidence of different photos adds up here: a
counterfeit's stitching read on its label photo and its spacing on its front photo are two
inputs, where the photo logits' maximum sees one. A logistic regression stacks them; Platt scaling,
cross-fitted on five folds (``CalibratedClassifierCV(method="sigmoid")``), calibrates. Both are
fitted on a *fusion fold*: listings newer than everything the component models were trained
on, so the components' scores there are honest, out-of-time scores.

Why Platt and not isotonic: skl2onnx's isotonic converter disagreed with scikit-learn by up to
0.035 on 11% of rows here, beyond the registry's parity tolerance; the sigmoid's export agrees
to 1e-7 (``docs/decisions/0006-authentication-graph.md``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from couturier.domains.authentication._image_net import POINTS, VISIBLE
from couturier.domains.authentication.image_model import point_max
from couturier.errors import InvalidInputError
from couturier.registry import ModelPackage

__all__ = ["INPUTS", "MODEL_NAME", "fit_fusion", "logit", "out_of_fold", "package", "stack"]

MODEL_NAME = "authentication"
INPUTS = [
    "listing_logit",
    "image_max_logit",
    "image_mean_logit",
    "retrieval_max_logit",
    "photos",
    *(f"point_{p}" for p in POINTS),
]
_EPS = 1e-4


def logit(p: Any) -> np.ndarray:
    q = np.clip(np.asarray(p, dtype=np.float64), _EPS, 1 - _EPS)
    return np.log(q / (1 - q))


def stack(
    listing_ids: np.ndarray,
    listing_p: np.ndarray,
    photo_listing: np.ndarray,
    photo_logit: np.ndarray,
    photo_retrieval: np.ndarray,
    photo_points: np.ndarray,
    photo_views: np.ndarray,
) -> np.ndarray:
    """Rows of ``INPUTS`` (float32) for ``listing_ids``, from per-listing and per-photo scores
    (``photo_points``: the image model's control-point fail logits; ``photo_views``: each
    photo's view index).

    A listing without photos gets NaN image inputs; the caller refuses it (1-4 photos is the
    rule at the boundary).
    """
    ids = np.asarray(listing_ids)
    owners = np.asarray(photo_listing)
    logits = np.asarray(photo_logit, dtype=np.float64)
    retrieval = np.asarray(photo_retrieval, dtype=np.float64)
    points = np.asarray(photo_points, dtype=np.float64).reshape(len(owners), len(POINTS))
    shown = VISIBLE[np.asarray(photo_views, dtype=np.int64)]
    # position of each photo's listing among listing_ids (numpy: a request has a few photos)
    order = np.argsort(ids, kind="stable")
    at = np.searchsorted(ids, owners, sorter=order)
    at = order[np.clip(at, 0, len(ids) - 1)]
    ok = (ids[at] == owners) if len(ids) else np.zeros(len(owners), bool)
    at, logits, retrieval, points, shown = at[ok], logits[ok], retrieval[ok], points[ok], shown[ok]
    n = len(ids)
    count = np.bincount(at, minlength=n).astype(float)
    image_max = np.full(n, -np.inf)
    np.maximum.at(image_max, at, logits)
    retrieval_max = np.full(n, -np.inf)
    np.maximum.at(retrieval_max, at, retrieval)
    with np.errstate(invalid="ignore", divide="ignore"):
        image_mean = np.bincount(at, weights=logits, minlength=n) / count
    none = count == 0
    image_max[none] = image_mean[none] = retrieval_max[none] = np.nan
    return np.column_stack(
        [
            logit(listing_p),
            image_max,
            image_mean,
            logit(retrieval_max),
            count,
            point_max(at, n, points, shown),
        ]
    ).astype(np.float32)


def _rarest(y: np.ndarray) -> int:
    labels = np.asarray(y).astype(int)
    rarest = int(min(np.sum(labels == 1), np.sum(labels == 0)))
    if rarest < 2:
        raise InvalidInputError(
            f"the fusion fold has {rarest} listing(s) of its rarer class; calibration needs at "
            "least 2 counterfeit and 2 authentic judged listings; simulate more listings",
            field="fusion_fold",
        )
    return rarest


def _estimator(folds: int, seed: int) -> Any:
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline

    return make_pipeline(
        SimpleImputer(strategy="median", keep_empty_features=True),
        CalibratedClassifierCV(
            LogisticRegression(C=1.0, max_iter=2000),
            method="sigmoid",
            cv=StratifiedKFold(folds, shuffle=True, random_state=seed),
        ),
    )


def fit_fusion(x: np.ndarray, y: np.ndarray, seed: int = 7) -> Any:
    """Five calibration folds, fewer when the rarer class has fewer members (tiny demos)."""
    with _finite_inputs():
        return _estimator(min(5, _rarest(y)), seed).fit(x, y)


def _finite_inputs() -> Any:
    """Silence numpy's floating-point flags inside a fit whose inputs scikit-learn has checked
    are finite: OpenBLAS's float32 kernels can raise a spurious 'invalid value encountered in
    matmul' on finite data (numpy#24067, scikit-learn#31395), seen here once in a replay's
    retraining, and with warnings as errors it would fail a run that computed correctly."""
    return np.errstate(invalid="ignore", over="ignore", divide="ignore")


def out_of_fold(x: np.ndarray, y: np.ndarray, seed: int = 7) -> np.ndarray:
    """Calibrated probabilities for the fusion fold itself, each from a model that never saw it
    (what the decision thresholds are fitted on)."""
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    rarest = _rarest(y)
    outer = min(5, rarest)
    inner = min(5, rarest * (outer - 1) // outer)  # what each outer training split can hold
    if inner < 2:  # too few to cross-fit twice (a tiny demo): in-sample, and said so here
        return np.asarray(fit_fusion(x, y, seed).predict_proba(x)[:, 1])
    cv = StratifiedKFold(outer, shuffle=True, random_state=seed + 1)
    with _finite_inputs():
        p = cross_val_predict(_estimator(inner, seed), x, y, cv=cv, method="predict_proba")
    return np.asarray(p[:, 1])


def package(
    model: Any,
    sample: np.ndarray,
    thresholds: dict[str, float],
    components: dict[str, int],
    artifacts: dict[str, bytes],
    extra: dict[str, Any],
) -> ModelPackage:
    from skl2onnx import to_onnx

    onx = to_onnx(
        model,
        sample[:1].astype(np.float32),
        options={id(model): {"zipmap": False}},
        target_opset=17,
    )
    return ModelPackage(
        name=MODEL_NAME,
        onnx_model=onx.SerializeToString(),
        features=INPUTS,
        reference=model.predict_proba,
        sample=sample,
        output="probabilities",
        thresholds=thresholds,
        tolerance=1e-4,
        description="calibrated P(counterfeit) of a listing from the listing model, its photos "
        "and the nearest verified references; thresholds route it to authentic, review or "
        "counterfeit",
        artifacts=artifacts,
        components=components,
        extra=extra,
    )
