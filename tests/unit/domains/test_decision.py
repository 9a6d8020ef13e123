from __future__ import annotations

import numpy as np
import pytest

from couturier.domains.authentication.decision import (
    CostModel,
    DecisionPolicy,
    expected_cost_per_1000,
    fit_policy,
)
from couturier.errors import InvalidInputError


def _calibrated(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.beta(0.3, 6.0, n)  # mostly small probabilities, like counterfeits at a few percent
    return p, rng.random(n) < p  # labels drawn from p: calibrated by construction


def test_without_a_capacity_limit_the_bayes_thresholds_follow_the_costs() -> None:
    cost = CostModel(
        missed_counterfeit=500, wrong_rejection=100, review=10, review_share_capacity=None
    )
    p, y = _calibrated(5000)
    policy = fit_policy(p, y, cost)
    assert policy.review_above == pytest.approx(10 / 500)
    assert policy.counterfeit_above == pytest.approx(1 - 10 / 100)
    assert list(policy.decide([0.01, 0.5, 0.95])) == ["authentic", "review", "counterfeit"]


def test_the_bayes_policy_is_cheaper_than_any_other_on_calibrated_scores() -> None:
    cost = CostModel(review_share_capacity=None)
    p, y = _calibrated(20000, seed=1)
    best = expected_cost_per_1000(p, y, fit_policy(p, y, cost), cost)
    for review_above, counterfeit_above in [(0.05, 0.9), (0.01, 0.99), (0.1, 0.5), (0.0, 1.0)]:
        other = DecisionPolicy(review_above, counterfeit_above)
        assert best <= expected_cost_per_1000(p, y, other, cost) + 1e-9


def test_capacity_narrows_the_review_band_to_fit() -> None:
    unlimited = CostModel(review_share_capacity=None)
    limited = CostModel(review_share_capacity=0.03)
    p, y = _calibrated(20000, seed=2)
    free = fit_policy(p, y, unlimited)
    capped = fit_policy(p, y, limited)
    assert np.mean(free.decide(p) == "review") > 0.03
    assert np.mean(capped.decide(p) == "review") <= 0.03 + 1e-9
    # fitting the capacity costs something, never less than the unconstrained optimum
    assert expected_cost_per_1000(p, y, capped, limited) >= expected_cost_per_1000(
        p, y, free, unlimited
    )


def test_impossible_costs_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="review_share_capacity"):
        CostModel(review_share_capacity=1.5)
    with pytest.raises(InvalidInputError, match="review=-1"):
        CostModel(review=-1)
