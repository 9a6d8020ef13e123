"""Label-free performance estimate from calibrated scores (CBPE), and when not to trust it.

Labels arrive days or weeks late; the scores arrive now. If the model's probabilities are
calibrated, ``P(counterfeit | p) = p``, then today's labels are, in distribution, Bernoulli(p)
draws: ``estimate_performance`` draws them ``draws`` times and computes PR-AUC and recall at a
false-positive rate on each draw (Monte Carlo), which gives the metric's expectation and the
95% range the realized metric will fall in once the labels come.

The assumption, and what breaks it: calibration survives covariate shift (the mix of listings
changes, but what a given listing means does not, so the model's p stays right for it) and
does not survive concept shift (a new counterfeit factory: the same features now mean
something else). No label-free method can see concept shift, so the estimate carries its own
trust check: ``check_trust`` looks at the newest cohort whose labels matured and marks the
estimate untrusted, naming the evidence, when that cohort shows calibration broke. Evidence is
(a) its ECE interval lies above the reference ECE (the holdout's, same 15 bins) by more than a
margin, or (b) its realized PR-AUC or recall interval is disjoint from the estimate made for
that same cohort from its scores alone. Disjoint 95% intervals rather than "the realized
interval excludes the point estimate": the latter fails a calibrated model about one check in
twenty, the former about one in two hundred.

>>> estimate = estimate_performance(todays_probabilities)                      # doctest: +SKIP
>>> estimate = check_trust(estimate, 0.02, matured, recent_estimate=then)     # doctest: +SKIP
>>> estimate.trusted, estimate.reason                                          # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from couturier.errors import InvalidInputError, InvalidParameterError
from couturier.monitoring._performance import rank_metrics, ranking
from couturier.monitoring.types import CohortPerformance, EstimatedPerformance, Interval

__all__ = ["check_trust", "estimate_performance"]

_CELLS = 2_000_000  # draw x row cells computed at once: bounded memory for any batch size


def estimate_performance(
    probabilities: Any, *, fpr: float = 0.01, draws: int = 200, seed: int = 0
) -> EstimatedPerformance:
    """Expected PR-AUC and recall at ``fpr`` of a batch, from its calibrated probabilities.

    An empty batch gets NaN intervals and ``trusted=False``; draws without a positive or a
    negative (a tiny batch) are left out of the intervals.
    """
    p = np.asarray(probabilities, dtype=float).ravel()
    if not (np.isfinite(p).all() and ((p >= 0) & (p <= 1)).all()):
        raise InvalidInputError(
            "probabilities must be finite and within [0, 1]; CBPE needs calibrated "
            "probabilities, not raw scores (calibrate the model first)",
            field="probabilities",
        )
    if not 0 < fpr < 1:
        raise InvalidParameterError(f"fpr={fpr} must lie in (0, 1)", field="fpr")
    if draws < 1:
        raise InvalidParameterError(f"draws={draws} must be >= 1 (default 200)", field="draws")
    if p.size == 0:
        nan = Interval.nan()
        return EstimatedPerformance(0, np.nan, nan, nan, fpr, False, "no rows to estimate")
    order, ends = ranking(p)
    ranked = p[order]
    rng = np.random.default_rng(seed)
    per_chunk = max(1, _CELLS // p.size)
    metrics = []
    for start in range(0, draws, per_chunk):
        labels = rng.random((min(per_chunk, draws - start), p.size)) < ranked
        metrics.append(np.column_stack(rank_metrics(labels * 1.0, ~labels * 1.0, ends, fpr)))
    stacked = np.vstack(metrics)
    return EstimatedPerformance(
        n=int(p.size),
        prevalence=float(p.mean()),
        pr_auc=_spread(stacked[:, 0]),
        recall_at_fpr=_spread(stacked[:, 1]),
        fpr=fpr,
    )


def _spread(values: np.ndarray) -> Interval:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return Interval.nan()
    low, high = np.percentile(finite, [2.5, 97.5])
    return Interval(float(finite.mean()), float(low), float(high))


def check_trust(
    estimate: EstimatedPerformance,
    reference_ece: float,
    recent: CohortPerformance | None,
    *,
    recent_estimate: EstimatedPerformance | None = None,
    ece_margin: float = 0.02,
) -> EstimatedPerformance:
    """``estimate`` marked untrusted, with the evidence, when the newest matured cohort shows
    that the scores stopped being calibrated; otherwise returned as trusted.

    ``reference_ece`` is the ECE on the holdout the model was promoted on; ``recent`` the
    realized performance of the newest matured cohort and ``recent_estimate`` the estimate
    made for that same cohort from its scores. Without a matured cohort (or with one too small
    to have intervals) there is no evidence against calibration, and the estimate stays
    trusted: the holdout's calibration is all there is to go on.
    """
    if ece_margin < 0:
        raise InvalidParameterError(f"ece_margin={ece_margin} must be >= 0", field="ece_margin")
    evidence: list[str] = []
    if recent is not None and recent.ece.low > reference_ece + ece_margin:
        evidence.append(
            f"the newest matured cohort's ECE is {_show(recent.ece)}, above the reference "
            f"{reference_ece:.3f} by more than the margin {ece_margin}"
        )
    if recent is not None and recent_estimate is not None:
        for name, realized, expected in (
            ("PR-AUC", recent.pr_auc, recent_estimate.pr_auc),
            (
                f"recall at {recent.fpr:.0%} FPR",
                recent.recall_at_fpr,
                recent_estimate.recall_at_fpr,
            ),
        ):
            if realized.known and expected.known and not realized.overlaps(expected):
                evidence.append(
                    f"its realized {name} is {_show(realized)}, the label-free estimate for "
                    f"it was {_show(expected)}"
                )
    if not evidence:
        return dataclasses.replace(estimate, trusted=estimate.n > 0)
    reason = "; ".join(evidence) + (
        ": the scores are no longer calibrated (concept shift?), so label-free estimates are "
        "unreliable until the model is recalibrated or retrained"
    )
    return dataclasses.replace(estimate, trusted=False, reason=reason)


def _show(interval: Interval) -> str:
    return f"{interval.value:.3f} (95% CI {interval.low:.3f}-{interval.high:.3f})"
