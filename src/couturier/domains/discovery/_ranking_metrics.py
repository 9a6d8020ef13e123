"""Top-k ranking metrics with binary relevance: nDCG@k, recall@k, coverage, popularity bias.

Every function takes the recommendations of many users at once, ``recommended[u]`` being user
``u``'s ranked item list (a 2-D array or a list of lists), and ``relevant[u]`` the items that
user actually interacted with in the held-out split. Users with no held-out items are skipped:
they carry no signal, and counting them as zeros would make the metric depend on how the split
happened to fall.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np

from couturier.errors import InvalidParameterError

__all__ = ["catalog_coverage", "ndcg_at_k", "popularity_bias", "recall_at_k"]

Recommended = np.ndarray | Sequence[Sequence[int]]
Relevant = Sequence[Collection[int]]


def ndcg_at_k(recommended: Recommended, relevant: Relevant, k: int) -> float:
    """Mean nDCG@k over users with held-out items; binary gains, ``1/log2(rank + 1)`` discount.

    The ideal DCG puts ``min(k, |relevant|)`` hits first, so a user with 3 relevant items who
    gets all 3 at the top scores 1.0 at k=10.

    >>> ndcg_at_k([[1, 2, 3]], [{1}], k=3)
    1.0
    >>> round(ndcg_at_k([[9, 1]], [{1}], k=2), 4)   # 1/log2(3)
    0.6309
    """
    _check_k(k, len(recommended), len(relevant))
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    scores = []
    for items, truth in zip(recommended, relevant, strict=True):
        if len(truth) == 0:
            continue
        truth_set = set(truth)
        hits = np.array([int(item) in truth_set for item in list(items)[:k]], dtype=float)
        dcg = float(hits @ discounts[: len(hits)])
        idcg = float(discounts[: min(k, len(truth_set))].sum())
        scores.append(dcg / idcg)
    return float(np.mean(scores)) if scores else 0.0


def recall_at_k(recommended: Recommended, relevant: Relevant, k: int) -> float:
    """Mean over users of ``hits@k / min(k, |relevant|)``: the truncated recall convention.

    Dividing by ``min(k, |relevant|)`` rather than ``|relevant|`` lets a perfect list score 1.0
    even for a user with more held-out items than ``k`` (the convention of EASE's and
    Mult-VAE's papers).

    >>> recall_at_k([[1, 2, 3, 4]], [{1, 4, 7}], k=2)
    0.5
    """
    _check_k(k, len(recommended), len(relevant))
    scores = []
    for items, truth in zip(recommended, relevant, strict=True):
        if len(truth) == 0:
            continue
        truth_set = set(truth)
        hits = sum(int(item) in truth_set for item in list(items)[:k])
        scores.append(hits / min(k, len(truth_set)))
    return float(np.mean(scores)) if scores else 0.0


def catalog_coverage(recommended: Recommended, n_items: int) -> float:
    """The share of the catalogue's ``n_items`` that appears in at least one user's list.

    >>> catalog_coverage([[0, 1], [1, 2]], n_items=10)
    0.3
    """
    if n_items <= 0:
        raise InvalidParameterError(
            f"n_items is {n_items}; the catalogue size must be positive", field="n_items"
        )
    seen = {int(item) for items in recommended for item in items}
    return len(seen) / n_items


def popularity_bias(recommended: Recommended, item_popularity: np.ndarray) -> float:
    """Mean popularity percentile (0 = least, 1 = most popular) of the recommended items.

    ``item_popularity[i]`` is item ``i``'s interaction count in the training data; ties share
    their mean percentile. 0.5 is what uniformly random recommendations score.

    >>> popularity_bias([[2]], np.array([1, 5, 9]))
    1.0
    """
    from scipy.stats import rankdata

    popularity = np.asarray(item_popularity, dtype=float)
    if popularity.size < 2:
        raise InvalidParameterError(
            f"item_popularity has {popularity.size} items; percentiles need at least 2",
            field="item_popularity",
        )
    percentile = (rankdata(popularity, method="average") - 1) / (popularity.size - 1)
    items = np.array([int(item) for row in recommended for item in row], dtype=np.int64)
    return float(percentile[items].mean()) if items.size else 0.0


def _check_k(k: int, n_recommended: int, n_relevant: int) -> None:
    if k < 1:
        raise InvalidParameterError(f"k is {k}; it must be at least 1", field="k")
    if n_recommended != n_relevant:
        raise InvalidParameterError(
            f"{n_recommended} recommendation lists but {n_relevant} relevant sets; pass one of "
            "each per user",
            field="relevant",
        )
