"""Realized performance of a daily cohort once its labels matured, weighted for biased labels.

Experts do not label at random: flagged listings are reviewed within days, the rest only when a
uniform random audit sample draws them. The labelled rows therefore over-represent high scores,
and metrics on them alone flatter the model (a higher prevalence inflates PR-AUC). Post-
stratification fixes that: within a labelling stratum (``flagged``, ``audit``...) the labelled
rows stand for all the stratum's rows, so each carries ``n_stratum / n_labelled_in_stratum``
(``label_weights``); a stratum with no label at all cannot be represented, and is reported as a
coverage gap rather than silently dropped.

Every metric takes those weights: PR-AUC (step-wise average precision, as scikit-learn's
``average_precision_score``), recall at a false-positive rate (weighted ROC) and ECE (15
equal-width bins, as ``couturier.evaluation``, so a cohort's ECE compares with the holdout's).
``couturier.evaluation``'s functions take no weights, hence the weighted versions here. The
intervals are 95% percentile bootstraps over rows (ECE's shifted back by the bootstrap's bias,
see ``_interval``); the replicates are computed together as row multiplicities times the
weights, over one sort by score, which keeps 200 replicates of 10,000 rows near 0.2 s.

>>> w = label_weights(labelled, strata)                                           # doctest: +SKIP
>>> perf = cohort_performance(y[labelled], score[labelled], weights=w.weights)    # doctest: +SKIP
>>> perf.pr_auc.low, perf.pr_auc.value, perf.pr_auc.high                         # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd

from couturier.errors import InvalidInputError, InvalidParameterError
from couturier.monitoring.types import CohortPerformance, Interval, LabelWeights

__all__ = [
    "cohort_performance",
    "label_coverage",
    "label_delay_quantiles",
    "label_weights",
]

ECE_BINS = 15  # as couturier.evaluation.expected_calibration_error
_CELLS = 2_000_000  # replicate x row cells computed at once: bounded memory for any cohort size


def label_coverage(labelled: Any) -> float:
    """The labelled share of a cohort (NaN for an empty one)."""
    lab = np.asarray(labelled, dtype=bool)
    return float(lab.mean()) if lab.size else float("nan")


def label_weights(labelled: Any, stratum: Any) -> LabelWeights:
    """Inverse label-coverage weights, one per labelled row, in the rows' order.

    ``stratum`` names each row's labelling route (e.g. ``"flagged"`` or ``"audit"``); rows of a
    stratum where nothing was labelled have no weight and their stratum is in ``uncovered``.

    >>> w = label_weights([True, False, True, True], ["audit", "audit", "flagged", "flagged"])
    >>> w.weights.tolist(), w.coverage
    ([2.0, 1.0, 1.0], {'audit': 0.5, 'flagged': 1.0})
    """
    lab = np.asarray(labelled, dtype=bool).ravel()
    names = pd.Series(np.asarray(stratum, dtype=object).ravel()).astype(str)
    if names.size != lab.size:
        raise InvalidInputError(
            f"{lab.size} labelled flags and {names.size} strata; pass one stratum per row",
            field="stratum",
        )
    codes, uniques = pd.factorize(names, sort=True)
    rows = np.bincount(codes, minlength=len(uniques))
    labels = np.bincount(codes, weights=lab, minlength=len(uniques))
    inverse = np.divide(rows, labels, out=np.zeros(len(uniques)), where=labels > 0)
    return LabelWeights(
        weights=inverse[codes[lab]],
        coverage={str(s): float(labels[i] / rows[i]) for i, s in enumerate(uniques)},
        uncovered=tuple(str(s) for s, k in zip(uniques, labels, strict=True) if k == 0),
        covered_share=float(rows[labels > 0].sum() / lab.size) if lab.size else 1.0,
    )


def label_delay_quantiles(
    delay: Any, labelled: Any, quantiles: Sequence[float] = (0.5, 0.9)
) -> dict[float, float]:
    """Quantiles of the label delay, counting the rows still waiting (Kaplan-Meier).

    ``delay`` is, per row, the time from prediction to label for labelled rows and the time
    waited so far for the others. Quantiles of the labelled rows alone would understate the
    delay (the slow labels have not arrived yet); a quantile that the waiting rows leave
    unknown is NaN, which says the cohort has not matured that far.
    """
    d = np.asarray(delay, dtype=float).ravel()
    event = np.asarray(labelled, dtype=bool).ravel()
    if d.size != event.size:
        raise InvalidInputError(
            f"{d.size} delays and {event.size} labelled flags; pass one of each per row",
            field="delay",
        )
    order = np.lexsort((~event, d))  # by delay; a label before a censoring at the same delay
    d, event = d[order], event[order]
    at_risk = d.size - np.arange(d.size)
    labelled_share = 1 - np.cumprod(np.where(event, 1 - 1 / at_risk, 1.0))
    out = {}
    for q in quantiles:
        reached = np.flatnonzero(event & (labelled_share >= q - 1e-12))
        out[float(q)] = float(d[reached[0]]) if reached.size else float("nan")
    return out


def cohort_performance(
    y_true: Any,
    scores: Any,
    *,
    weights: Any = None,
    fpr: float = 0.01,
    bootstrap: int = 200,
    seed: int = 0,
    min_rows: int = 10,
) -> CohortPerformance:
    """PR-AUC, recall at ``fpr`` and ECE of a labelled cohort, weighted, with 95% intervals.

    A cohort with fewer than ``min_rows`` labelled rows, or without both classes, gets NaN
    intervals for what it cannot support, and ``reason`` says why; it never raises for that.
    Scores outside [0, 1] get no ECE (they are not probabilities).
    """
    y, s, w = _validated(y_true, scores, weights, fpr=fpr, bootstrap=bootstrap)
    n, positives = int(y.size), int(y.sum())
    nan = Interval.nan()
    if n < min_rows or w.sum() <= 0:
        reason = (
            f"{n} labelled rows; at least {min_rows} are needed"
            if n < min_rows
            else f"the weights of the {n} labelled rows sum to 0"
        )
        return CohortPerformance(n, positives, nan, nan, nan, nan, fpr, reason)
    reasons = []
    if not 0 < positives < n:
        reasons.append(f"{positives} positives in {n} labelled rows: PR-AUC and recall need both")
    if not np.all((s >= 0) & (s <= 1)):
        reasons.append("scores outside [0, 1] are not probabilities: no ECE")
    draws = _replicates(y, s, w, fpr=fpr)
    point = next(draws([np.ones((1, n))]))[0]
    boot = np.vstack(list(draws(_multinomial_counts(np.random.default_rng(seed), n, bootstrap))))
    intervals = [_interval(point[j], boot[:, j], debias=j == 3) for j in range(4)]
    return CohortPerformance(
        n=n,
        positives=positives,
        prevalence=intervals[0],
        pr_auc=intervals[1],
        recall_at_fpr=intervals[2],
        ece=intervals[3],
        fpr=fpr,
        reason="; ".join(reasons) or None,
    )


def _validated(
    y_true: Any, scores: Any, weights: Any, *, fpr: float, bootstrap: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y = np.asarray(y_true, dtype=float).ravel()
    s = np.asarray(scores, dtype=float).ravel()
    w = np.ones_like(s) if weights is None else np.asarray(weights, dtype=float).ravel()
    if not y.size == s.size == w.size:
        raise InvalidInputError(
            f"{y.size} labels, {s.size} scores and {w.size} weights; pass one of each per "
            "labelled row (label_weights(...).weights has one per labelled row)",
            field="scores",
        )
    if not np.isin(y, (0.0, 1.0)).all():
        raise InvalidInputError("labels must be 0 or 1 (NaN: drop unlabelled rows)", field="y")
    if not np.isfinite(s).all():
        raise InvalidInputError("scores hold NaN or infinite values", field="scores")
    if not (np.isfinite(w).all() and (w >= 0).all()):
        raise InvalidInputError("weights must be finite and >= 0", field="weights")
    if not 0 < fpr < 1:
        raise InvalidParameterError(f"fpr={fpr} must lie in (0, 1)", field="fpr")
    if bootstrap < 1:
        raise InvalidParameterError(f"bootstrap={bootstrap} must be >= 1", field="bootstrap")
    return y.astype(np.int8), s, w


def _replicates(
    y: np.ndarray, s: np.ndarray, w: np.ndarray, *, fpr: float
) -> Callable[[Iterable[np.ndarray]], Iterator[np.ndarray]]:
    """From chunks of row multiplicities (R, n) to the metrics (R, 4): one sort for them all."""
    order, ends = ranking(s)
    onehot = calibration_bins(s)

    def draws(chunks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        for counts in chunks:
            cw = counts * w
            pos, neg = cw * y, cw * (1 - y)
            total = cw.sum(axis=1)
            prevalence = np.divide(
                pos.sum(axis=1), total, out=np.full(total.size, np.nan), where=total > 0
            )
            pr_auc, recall = rank_metrics(pos[:, order], neg[:, order], ends, fpr)
            ece = calibration_error(pos, cw * s, total, onehot)
            yield np.column_stack([prevalence, pr_auc, recall, ece])

    return draws


def _multinomial_counts(rng: np.random.Generator, n: int, replicates: int) -> Iterator[np.ndarray]:
    """Bootstrap resamples of ``n`` rows as row multiplicities, in memory-bounded chunks."""
    per_chunk = max(1, _CELLS // n)
    for start in range(0, replicates, per_chunk):
        k = min(per_chunk, replicates - start)
        rows = rng.integers(0, n, size=(k, n)) + n * np.arange(k)[:, None]
        yield np.bincount(rows.ravel(), minlength=k * n).reshape(k, n).astype(float)


def _interval(value: float, draws: np.ndarray, *, debias: bool = False) -> Interval:
    finite = draws[np.isfinite(draws)]
    if not np.isfinite(value) or finite.size == 0:
        return Interval.nan()
    low, high = np.percentile(finite, [2.5, 97.5])
    if debias:
        # ECE sums |gaps| of noisy bins, so resampling only adds to it: its replicates sit above
        # the estimate. Shifting the interval back by that bias keeps it around the estimate.
        bias = float(finite.mean()) - value
        low, high = max(low - bias, 0.0), max(high - bias, 0.0)
    return Interval(float(value), float(low), float(high))


def ranking(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows by decreasing score, and the last index of each group of tied scores."""
    order = np.argsort(-scores, kind="stable")
    ranked = scores[order]
    ends = np.append(np.flatnonzero(ranked[1:] != ranked[:-1]), ranked.size - 1)
    return order, ends


def rank_metrics(
    pos: np.ndarray, neg: np.ndarray, ends: np.ndarray, fpr: float
) -> tuple[np.ndarray, np.ndarray]:
    """Average precision and recall at ``fpr`` per row of (R, n) positive/negative weights.

    Columns are in decreasing-score order; ties are cut only at ``ends``, as scikit-learn
    does, so the results equal ``average_precision_score`` and ``roc_curve`` with weights.
    """
    tp = np.cumsum(pos, axis=1)[:, ends]
    fp = np.cumsum(neg, axis=1)[:, ends]
    p, n = tp[:, -1:], fp[:, -1:]
    precision = np.divide(tp, tp + fp, out=np.zeros_like(tp), where=tp + fp > 0)
    recall = np.divide(tp, p, out=np.zeros_like(tp), where=p > 0)
    false_rate = np.divide(fp, n, out=np.ones_like(fp), where=n > 0)
    ap = np.sum(np.diff(recall, axis=1, prepend=0.0) * precision, axis=1)
    at_fpr = np.max(np.where(false_rate <= fpr, recall, 0.0), axis=1)
    undefined = (p[:, 0] <= 0) | (n[:, 0] <= 0)
    ap[undefined] = np.nan
    at_fpr[undefined] = np.nan
    return ap, at_fpr


def calibration_bins(p: np.ndarray) -> np.ndarray:
    """One-hot (n, ECE_BINS) of each probability's equal-width bin; zeros outside [0, 1]."""
    edges = np.linspace(0.0, 1.0, ECE_BINS + 1)
    idx = np.clip(np.digitize(p, edges[1:-1]), 0, ECE_BINS - 1)
    onehot = np.zeros((p.size, ECE_BINS))
    onehot[np.arange(p.size), idx] = 1.0
    if not np.all((p >= 0) & (p <= 1)):
        onehot[:] = np.nan
    return onehot


def calibration_error(
    pos: np.ndarray, weighted_p: np.ndarray, total: np.ndarray, onehot: np.ndarray
) -> np.ndarray:
    """Weighted ECE per row: sum over bins of |observed - predicted| weight, over all weight."""
    gap = np.abs(pos @ onehot - weighted_p @ onehot).sum(axis=1)
    ece: np.ndarray = np.divide(gap, total, out=np.full(total.size, np.nan), where=total > 0)
    return ece
