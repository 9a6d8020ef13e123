"""Metrics overall and per slice, and the calibration error."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score, roc_curve

from couturier.errors import InvalidInputError

__all__ = ["Evaluation", "evaluate", "expected_calibration_error", "recall_at_fpr"]


@dataclass(frozen=True)
class Evaluation:
    """Metrics of one model on one holdout. ``slices`` maps ``"brand=3"`` to its metrics."""

    overall: dict[str, float]
    slices: dict[str, dict[str, float]] = field(default_factory=dict)
    holdout: str = ""  # what the metrics were computed on (a fingerprint or a name)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Evaluation:
        return cls(
            overall={k: float(v) for k, v in data["overall"].items()},
            slices={s: {k: float(v) for k, v in m.items()} for s, m in data["slices"].items()},
            holdout=str(data.get("holdout", "")),
        )


def expected_calibration_error(y_true: np.ndarray, p: np.ndarray, bins: int = 15) -> float:
    """Mean |observed rate - mean probability| over equal-width bins, weighted by bin size."""
    y, q = np.asarray(y_true, float), np.asarray(p, float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    idx = np.clip(np.digitize(q, edges[1:-1]), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        mask = idx == b
        if mask.any():
            ece += mask.mean() * abs(y[mask].mean() - q[mask].mean())
    return float(ece)


def recall_at_fpr(y_true: np.ndarray, score: np.ndarray, fpr: float = 0.01) -> float:
    """The highest recall reachable with a false-positive rate at or below ``fpr``."""
    f, t, _ = roc_curve(y_true, score)
    ok = f <= fpr
    return float(t[ok].max()) if ok.any() else 0.0


def _metrics(y: np.ndarray, s: np.ndarray) -> dict[str, float]:
    out = {"n": float(len(y)), "positives": float(y.sum())}
    if 0 < y.sum() < len(y):
        out["pr_auc"] = float(average_precision_score(y, s))
        out["roc_auc"] = float(roc_auc_score(y, s))
        out["recall_at_1pct_fpr"] = recall_at_fpr(y, s, 0.01)
    if np.all((s >= 0) & (s <= 1)):
        out["ece"] = expected_calibration_error(y, s)
        out["brier"] = float(brier_score_loss(y, s))
    return out


def evaluate(
    y_true: Any,
    score: Any,
    slices: Mapping[str, Any] | None = None,
    holdout: str = "",
) -> Evaluation:
    """Metrics overall and for every value of every slice column."""
    y = np.asarray(y_true).astype(int)
    s = np.asarray(score, dtype=float)
    if y.shape != s.shape or y.ndim != 1:
        raise InvalidInputError(
            f"labels have shape {y.shape} and scores {s.shape}; both must be 1-d and equal",
            field="score",
        )
    if not np.isfinite(s).all():
        raise InvalidInputError(
            f"{int((~np.isfinite(s)).sum())} scores are NaN or infinite; a model must score "
            "every row",
            field="score",
        )
    per_slice: dict[str, dict[str, float]] = {}
    for name, values in (slices or {}).items():
        v = np.asarray(values)
        if v.shape != y.shape:
            raise InvalidInputError(
                f"slice {name!r} has {v.shape[0]} values for {y.shape[0]} rows", field=name
            )
        for value in np.unique(v):
            mask = v == value
            per_slice[f"{name}={value}"] = _metrics(y[mask], s[mask])
    return Evaluation(overall=_metrics(y, s), slices=per_slice, holdout=holdout)
