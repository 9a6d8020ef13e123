"""The MovieLens protocol: the split, and one small seeded run on the real data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from couturier.domains.discovery._movielens import evaluate, split_interactions
from couturier.domains.discovery._ranker import TwoStageRecommender
from couturier.domains.discovery._ratings import load_ratings
from couturier.domains.discovery._recommenders import EASE, IALS

MOVIELENS_100K = Path(__file__).parents[4] / ".." / "shared" / "data" / "movielens-100k" / "u.data"


def _toy() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = [(u, i, 4.0, 1000 + i) for u in range(30) for i in rng.choice(50, 10, replace=False)]
    return pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])


def test_split_holds_out_a_fifth_of_each_user_without_overlap() -> None:
    split = split_interactions(_toy(), seed=1)
    for user in range(30):
        train = set(split.train[user].indices)
        assert len(split.test[user]) == 2
        assert len(train) == 8
        assert not train & split.test[user]
    assert split_interactions(_toy(), seed=1).test == split.test
    assert split_interactions(_toy(), seed=2).test != split.test


@pytest.mark.skipif(not MOVIELENS_100K.is_file(), reason="the shared MovieLens-100K copy is absent")
def test_small_movielens_run_reports_every_model() -> None:
    ratings = load_ratings(MOVIELENS_100K)
    ratings = ratings[ratings["user_id"] <= 300]  # a third of the users keeps the test fast
    model = TwoStageRecommender(
        ease=EASE(l2=300.0), ials=IALS(factors=32, iterations=8), n_candidates=50
    )
    report = evaluate(ratings, seeds=(0,), recommender=model)
    assert report["seeds"] == [0]
    assert len(report["per_seed"]) == 1
    # measured 0.2x for popularity and 0.4x for EASE: wide margins, a seeded run
    assert report["pop_ndcg_at_10"] < report["ease_ndcg_at_10"] - 0.1
    assert report["ndcg_at_10"] > report["pop_ndcg_at_10"] + 0.1
    assert 0.0 < report["recall_at_20"] < 1.0
