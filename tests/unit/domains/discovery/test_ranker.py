"""The two-stage recommender: unseen items only, extra columns, ONNX parity of the ranker."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from couturier.domains.discovery._ranker import (
    BASE_FEATURES,
    ExtraFeatures,
    TwoStageRecommender,
    on_float32_grid,
)
from couturier.domains.discovery._ranking_metrics import ndcg_at_k
from couturier.domains.discovery._recommenders import EASE, IALS, Popularity
from couturier.errors import InvalidInputError, InvalidParameterError

from ._synthetic import planted

X, TEST = planted()
USERS = np.arange(X.shape[0])
N_ITEMS = X.shape[1]
EXTRA = ExtraFeatures(
    users=pd.DataFrame({"budget": np.linspace(100, 900, X.shape[0])}),
    items=pd.DataFrame({"price": np.linspace(50, 1000, N_ITEMS)}),
    pairs=lambda users, items: pd.DataFrame({"brand_match": ((users + items) % 3 == 0) * 1.0}),
)


@pytest.fixture(scope="module")
def model() -> TwoStageRecommender:
    return TwoStageRecommender(
        ease=EASE(l2=30.0), ials=IALS(factors=8, iterations=5), n_candidates=30
    ).fit(X, extra=EXTRA)


def test_recommends_unseen_items_and_beats_popularity(model: TwoStageRecommender) -> None:
    top = model.recommend(USERS, X, 10)
    assert top.shape == (len(USERS), 10)
    for user, items in zip(USERS, top, strict=True):
        assert not set(items) & set(X[user].indices)
        assert len(set(items)) == 10
    pop = Popularity().fit(X).recommend(USERS, X, 10)
    assert ndcg_at_k(top, TEST, 10) > ndcg_at_k(pop, TEST, 10) + 0.1


def test_feature_names_include_extra_columns(model: TwoStageRecommender) -> None:
    assert model.feature_names_ == [*BASE_FEATURES, "budget", "price", "brand_match"]


def test_onnx_export_matches_lightgbm(model: TwoStageRecommender) -> None:
    import onnxruntime as ort

    _, _, features = model._candidates(USERS[:40], X, model._models, EXTRA)
    features = on_float32_grid(features).astype(np.float32)
    features[::7, -1] = np.nan  # missing extra values take LightGBM's default branch in ONNX too
    session = ort.InferenceSession(model.ranker_onnx(), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {"features": features})
    np.testing.assert_allclose(out.ravel(), model.reference(features), atol=1e-4)


def test_recommend_checks_extra_columns(model: TwoStageRecommender) -> None:
    with pytest.raises(InvalidInputError, match="extra feature columns"):
        model.recommend(USERS[:3], X, 5, extra=ExtraFeatures())


def test_unfitted_and_bad_parameters() -> None:
    with pytest.raises(InvalidInputError, match="not fitted"):
        TwoStageRecommender().recommend(USERS, X, 5)
    with pytest.raises(InvalidParameterError, match="holdout"):
        TwoStageRecommender(holdout=1.0).fit(X)


def test_pair_frame_lookup_gives_nan_for_absent_pairs() -> None:
    pairs = pd.DataFrame(
        {"match": [1.0]}, index=pd.MultiIndex.from_tuples([(0, 3)], names=["user", "item"])
    )
    values = ExtraFeatures(pairs=pairs).values(np.array([0, 0]), np.array([3, 4]))
    assert values[0, 0] == 1.0
    assert np.isnan(values[1, 0])
