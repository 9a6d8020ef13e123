from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_curve

from couturier.errors import InvalidInputError
from couturier.evaluation import expected_calibration_error, recall_at_fpr
from couturier.monitoring._performance import (
    cohort_performance,
    label_coverage,
    label_delay_quantiles,
    label_weights,
)


def _cohort(seed: int, n: int = 6000) -> tuple[np.ndarray, np.ndarray]:
    """Calibrated probabilities of a rare class (about 4%) and labels drawn from them."""
    rng = np.random.default_rng(seed)
    p = 1 / (1 + np.exp(-(2 * rng.normal(size=n) - 4.5)))
    return (rng.random(n) < p).astype(int), p


def _biased_labels(seed: int, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Experts label every flagged listing and a 10% random audit of the rest."""
    flagged = p >= 0.2
    labelled = flagged | (np.random.default_rng(seed + 1000).random(p.size) < 0.1)
    return labelled, np.where(flagged, "flagged", "audit")


def test_weighted_metrics_equal_scikit_learn_and_evaluation() -> None:
    y, p = _cohort(0, 3000)
    w = np.random.default_rng(0).uniform(0.5, 3.0, y.size)
    weighted = cohort_performance(y, p, weights=w, bootstrap=1)
    assert weighted.pr_auc.value == pytest.approx(average_precision_score(y, p, sample_weight=w))
    f, t, _ = roc_curve(y, p, sample_weight=w)
    assert weighted.recall_at_fpr.value == pytest.approx(t[f <= 0.01].max())
    plain = cohort_performance(y, p, bootstrap=1)
    assert plain.ece.value == pytest.approx(expected_calibration_error(y, p))
    assert plain.recall_at_fpr.value == pytest.approx(recall_at_fpr(y, p, 0.01))
    tied = np.round(p, 2)  # ties are cut only between distinct scores, as scikit-learn does
    assert cohort_performance(y, tied, bootstrap=1).pr_auc.value == pytest.approx(
        average_precision_score(y, tied)
    )


def test_weights_undo_biased_labelling_and_intervals_cover_the_truth() -> None:
    weighted_errors, unweighted_errors, covered = [], [], 0
    for seed in range(20):
        y, p = _cohort(seed)
        truth = cohort_performance(y, p, bootstrap=1)  # every label known: the population
        labelled, strata = _biased_labels(seed, p)
        w = label_weights(labelled, strata)
        weighted = cohort_performance(y[labelled], p[labelled], weights=w.weights, seed=seed)
        unweighted = cohort_performance(y[labelled], p[labelled], bootstrap=1)
        weighted_errors.append(weighted.pr_auc.value - truth.pr_auc.value)
        unweighted_errors.append(unweighted.pr_auc.value - truth.pr_auc.value)
        covered += weighted.pr_auc.contains(truth.pr_auc.value)
        covered += weighted.prevalence.contains(truth.prevalence.value)
    assert abs(np.mean(weighted_errors)) < 0.02
    assert np.mean(unweighted_errors) > 0.1  # labelled rows alone flatter the model
    assert covered >= 34  # of 40 intervals (95% nominal)


def test_label_weights_are_inverse_coverage_per_stratum() -> None:
    labelled = [True, True, False, False, True, False, False]
    strata = ["flagged", "flagged", "audit", "audit", "audit", "new", "new"]
    w = label_weights(labelled, strata)
    assert w.weights.tolist() == [1.0, 1.0, 3.0]
    assert w.coverage == {"audit": pytest.approx(1 / 3), "flagged": 1.0, "new": 0.0}
    assert w.uncovered == ("new",)
    assert w.covered_share == pytest.approx(5 / 7)
    assert label_coverage(labelled) == pytest.approx(3 / 7)
    with pytest.raises(InvalidInputError, match="one stratum per row"):
        label_weights(labelled, strata[:-1])


def test_a_cohort_without_positives_gets_nan_rank_metrics_and_a_reason() -> None:
    y = np.zeros(50, dtype=int)
    p = np.linspace(0.0, 0.2, 50)
    perf = cohort_performance(y, p)
    assert math.isnan(perf.pr_auc.value) and math.isnan(perf.recall_at_fpr.high)
    assert perf.reason is not None and "0 positives" in perf.reason
    assert perf.ece.known and perf.prevalence.value == 0.0


def test_a_tiny_cohort_gets_nan_everywhere_and_a_reason() -> None:
    perf = cohort_performance([1, 0, 1], [0.9, 0.1, 0.6])
    assert not any(i.known for i in (perf.prevalence, perf.pr_auc, perf.recall_at_fpr, perf.ece))
    assert perf.reason is not None and "at least 10" in perf.reason
    empty = cohort_performance([], [])
    assert empty.n == 0 and not empty.pr_auc.known


def test_scores_that_are_not_probabilities_get_no_ece() -> None:
    y, p = _cohort(1, 500)
    perf = cohort_performance(y, 10 * p - 3)
    assert not perf.ece.known and perf.pr_auc.known
    assert perf.reason is not None and "not probabilities" in perf.reason


def test_invalid_inputs_raise() -> None:
    with pytest.raises(InvalidInputError, match="0 or 1"):
        cohort_performance([0, 2] * 10, [0.5] * 20)
    with pytest.raises(InvalidInputError, match="one of each per labelled row"):
        cohort_performance([0, 1] * 10, [0.5] * 20, weights=[1.0] * 19)


def test_label_delay_quantiles_count_the_labels_still_waiting() -> None:
    delay = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 6.0, 6.0, 6.0, 6.0])
    everything = label_delay_quantiles(delay, np.ones(10, dtype=bool), quantiles=(0.5, 0.9))
    assert everything == {0.5: 5.0, 0.9: 6.0}
    # half the rows still wait after 6 days: the 60% quantile of the delay is not known yet
    waiting = label_delay_quantiles(delay, np.arange(10) < 5, quantiles=(0.3, 0.6))
    assert waiting[0.3] == 3.0
    assert math.isnan(waiting[0.6])
    # the labelled rows alone (median 2.5 days) understate the delay of the whole cohort
    censored_early = label_delay_quantiles([1.0, 2.0, 3.0, 1.5, 10.0], [1, 1, 1, 0, 1], (0.5,))
    assert censored_early[0.5] == 3.0
