from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

from couturier.errors import InvalidInputError
from couturier.evaluation import expected_calibration_error
from couturier.monitoring._estimate import check_trust, estimate_performance
from couturier.monitoring._performance import cohort_performance, label_weights
from couturier.monitoring.types import CohortPerformance, EstimatedPerformance, Interval

Truth = Callable[[np.ndarray], np.ndarray]


def _sigmoid(z: np.ndarray) -> np.ndarray:
    out: np.ndarray = 1 / (1 + np.exp(-z))
    return out


def _calibrated(z: np.ndarray) -> np.ndarray:
    return _sigmoid(z)


def _concept_shift(z: np.ndarray) -> np.ndarray:
    """A new counterfeit factory: the same listings are now counterfeit far more often."""
    return _sigmoid(z + 1.0)


@dataclass(frozen=True)
class Day:
    """One day: probabilities, the labels every listing will get, and the rows experts label
    (every flagged listing, a 10% audit of the rest)."""

    seed: int
    p: np.ndarray
    y: np.ndarray
    labelled: np.ndarray

    def estimate(self) -> EstimatedPerformance:
        return estimate_performance(self.p, seed=self.seed)

    def realized(self) -> CohortPerformance:
        flagged = np.where(self.p >= 0.3, "flagged", "audit")
        w = label_weights(self.labelled, flagged).weights
        lab = self.labelled
        return cohort_performance(self.y[lab], self.p[lab], weights=w, seed=self.seed)


def _day(seed: int, truth: Truth, *, mean: float = -3.5, n: int = 4000) -> Day:
    rng = np.random.default_rng(seed)
    z = 2 * rng.normal(size=n) + mean
    p = _sigmoid(z)
    y = (rng.random(n) < truth(z)).astype(int)
    return Day(seed, p, y, labelled=(p >= 0.3) | (rng.random(n) < 0.1))


@pytest.fixture(scope="module")
def reference_ece() -> float:
    """The holdout's ECE: a large labelled sample from before any shift."""
    rng = np.random.default_rng(99)
    p = _sigmoid(2 * rng.normal(size=100_000) - 3.5)
    return expected_calibration_error(rng.random(p.size) < p, p)


def test_under_covariate_shift_the_estimate_matches_the_realized_metric() -> None:
    inside, errors = 0, []
    for seed in range(20):
        day = _day(seed, _calibrated, mean=-2.5)  # more suspicious listings than the holdout
        estimate = day.estimate()
        realized = cohort_performance(day.y, day.p, bootstrap=1)  # every label: the truth
        inside += estimate.pr_auc.contains(realized.pr_auc.value)
        inside += estimate.recall_at_fpr.contains(realized.recall_at_fpr.value)
        errors.append(estimate.pr_auc.value - realized.pr_auc.value)
        assert estimate.prevalence == pytest.approx(day.y.mean(), abs=0.02)
    assert inside >= 36  # of 40 (95% nominal)
    assert abs(np.mean(errors)) < 0.02


def test_calibrated_scores_keep_the_estimate_trusted(reference_ece: float) -> None:
    trusted = 0
    for seed in range(20):
        day = _day(seed, _calibrated, mean=-3.0)
        estimate = day.estimate()
        checked = check_trust(estimate, reference_ece, day.realized(), recent_estimate=estimate)
        trusted += checked.trusted
    assert trusted >= 18


def test_concept_shift_marks_the_estimate_untrusted_with_the_evidence(
    reference_ece: float,
) -> None:
    for seed in range(10):
        day = _day(seed, _concept_shift)
        estimate = day.estimate()
        checked = check_trust(estimate, reference_ece, day.realized(), recent_estimate=estimate)
        assert not checked.trusted
        assert checked.reason is not None and "ECE" in checked.reason
        assert "concept shift" in checked.reason


def test_a_realized_recall_far_from_its_estimate_alone_is_evidence() -> None:
    estimate = EstimatedPerformance(
        1000, 0.05, Interval(0.5, 0.45, 0.55), Interval(0.30, 0.25, 0.35), fpr=0.01
    )
    recent = CohortPerformance(
        n=800,
        positives=60,
        prevalence=Interval(0.05, 0.04, 0.06),
        pr_auc=Interval(0.48, 0.40, 0.56),
        recall_at_fpr=Interval(0.12, 0.06, 0.20),
        ece=Interval(0.01, 0.0, 0.02),
        fpr=0.01,
    )
    checked = check_trust(estimate, 0.01, recent, recent_estimate=estimate)
    assert not checked.trusted
    assert checked.reason is not None and "recall at 1% FPR is 0.120" in checked.reason
    assert "PR-AUC" not in checked.reason  # its intervals overlap: no evidence there


def test_without_a_matured_cohort_there_is_no_evidence_against_the_estimate() -> None:
    estimate = estimate_performance(np.linspace(0.0, 1.0, 200))
    checked = check_trust(estimate, 0.02, None)
    assert checked.trusted and checked.reason is None
    degenerate = cohort_performance([0, 1], [0.2, 0.7])  # too small for any interval
    assert check_trust(estimate, 0.02, degenerate, recent_estimate=estimate).trusted


def test_estimate_is_reproducible_and_handles_edge_batches() -> None:
    p = np.random.default_rng(5).uniform(size=500)
    assert estimate_performance(p, seed=3) == estimate_performance(p, seed=3)
    empty = estimate_performance([])
    assert not empty.trusted and not empty.pr_auc.known and math.isnan(empty.prevalence)
    certain = estimate_performance(np.zeros(100))  # no draw can have a positive
    assert not certain.pr_auc.known and certain.prevalence == 0.0
    with pytest.raises(InvalidInputError, match="calibrated probabilities"):
        estimate_performance([0.2, 1.4])
