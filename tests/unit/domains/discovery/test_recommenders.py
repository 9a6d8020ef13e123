"""Candidate models: planted structure is found, seen items are never recommended."""

from __future__ import annotations

import numpy as np
import pytest

from couturier.domains.discovery._ranking_metrics import (
    catalog_coverage,
    ndcg_at_k,
    popularity_bias,
    recall_at_k,
)
from couturier.domains.discovery._recommenders import (
    EASE,
    IALS,
    CandidateModel,
    ItemKNN,
    Popularity,
)
from couturier.errors import InvalidInputError, InvalidParameterError

from ._synthetic import planted

X, TEST = planted()
USERS = np.arange(X.shape[0])


def _ndcg(model: CandidateModel) -> float:
    return ndcg_at_k(model.fit(X).recommend(USERS, X, 10), TEST, 10)


def test_ease_and_ials_beat_popularity_on_planted_structure() -> None:
    pop = _ndcg(Popularity())
    assert _ndcg(EASE(l2=30.0)) > pop + 0.1
    assert _ndcg(IALS(factors=16, iterations=10)) > pop + 0.1
    assert _ndcg(ItemKNN()) > pop + 0.1


@pytest.mark.parametrize(
    "model", [Popularity(), EASE(l2=30.0), IALS(factors=8, iterations=5), ItemKNN()]
)
def test_recommend_never_returns_a_seen_item(model: CandidateModel) -> None:
    top = model.fit(X).recommend(USERS, X, 20)
    assert top.shape == (len(USERS), 20)
    for user, items in zip(USERS, top, strict=True):
        assert not set(items) & set(X[user].indices)
        assert len(set(items)) == 20


def test_exclude_seen_false_may_return_seen_items() -> None:
    top = Popularity().fit(X).recommend(USERS, X, 5, exclude_seen=False)
    assert any(set(items) & set(X[user].indices) for user, items in zip(USERS, top, strict=True))


def test_ials_is_deterministic_per_seed() -> None:
    a = IALS(factors=8, iterations=5, random_state=3).fit(X).score(USERS[:5], X)
    b = IALS(factors=8, iterations=5, random_state=3).fit(X).score(USERS[:5], X)
    c = IALS(factors=8, iterations=5, random_state=4).fit(X).score(USERS[:5], X)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


@pytest.mark.parametrize("model", [EASE(l2=30.0), IALS(factors=8, iterations=5), ItemKNN()])
def test_score_pairs_matches_dense_scores(model: CandidateModel) -> None:
    model.fit(X)
    users, items = np.array([3, 0, 3, 7]), np.array([5, 9, 1, 0])
    dense = model.score(users, X)
    np.testing.assert_allclose(
        model.score_pairs(users, items, X), dense[np.arange(4), items], rtol=1e-10
    )


def test_clone_keeps_configuration_not_state() -> None:
    fitted = EASE(l2=12.0).fit(X)
    copy = fitted.clone()
    assert copy.get_params() == {"l2": 12.0}
    assert not hasattr(copy, "weights_")


def test_errors_are_explicit() -> None:
    with pytest.raises(InvalidInputError, match="not fitted"):
        EASE().score(USERS, X)
    with pytest.raises(InvalidInputError, match="item columns"):
        EASE(l2=30.0).fit(X).score(USERS, X[:, :10])
    with pytest.raises(InvalidParameterError, match="l2"):
        EASE(l2=0.0).fit(X)
    with pytest.raises(InvalidParameterError, match="k is 0"):
        Popularity().fit(X).recommend(USERS, X, 0)


def test_ndcg_and_recall_on_hand_computed_cases() -> None:
    # hits at ranks 1 and 3 of 3 relevant: DCG = 1 + 1/2, IDCG = 1 + 1/log2(3) + 1/2
    expected = (1 + 0.5) / (1 + 1 / np.log2(3) + 0.5)
    assert ndcg_at_k([[1, 2, 3]], [{1, 3, 9}], 3) == pytest.approx(expected)
    # a user with no held-out items is skipped, not counted as zero
    assert ndcg_at_k([[1, 2], [4, 5]], [{2}, set()], 2) == pytest.approx(1 / np.log2(3))
    # IDCG over min(k, |relevant|): one relevant item at the top is perfect
    assert ndcg_at_k([[7, 1, 2]], [{7}], 3) == 1.0
    assert recall_at_k([[1, 2, 3, 4]], [{1, 4, 7}], 2) == 0.5
    assert recall_at_k([[1, 2, 3, 4]], [{1, 4, 7}], 4) == pytest.approx(2 / 3)
    assert ndcg_at_k([[1]], [set()], 1) == 0.0


def test_coverage_and_popularity_bias() -> None:
    assert catalog_coverage([[0, 1], [1, 2]], 10) == 0.3
    popularity = np.array([1.0, 5.0, 9.0])
    assert popularity_bias([[2], [0]], popularity) == 0.5
    assert popularity_bias([[2, 1]], popularity) == 0.75
    with pytest.raises(InvalidParameterError):
        ndcg_at_k([[1]], [{1}, {2}], 1)
