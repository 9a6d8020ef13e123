"""The authentication recipe end to end: training set, LightGBM, ONNX, gate, registry."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from couturier.domain import get_domain
from couturier.domains.authentication import FEATURES, listing_model
from couturier.features import FeatureRepo
from couturier.marketplace import Marketplace
from couturier.registry import ModelRegistry
from couturier.registry._packaging import session
from couturier.settings import Settings


@pytest.fixture(scope="module")
def stores(
    market: Marketplace, tmp_path_factory: pytest.TempPathFactory
) -> tuple[FeatureRepo, ModelRegistry]:
    settings = Settings(home=tmp_path_factory.mktemp("recipe"))
    repo = FeatureRepo(FEATURES, settings)
    repo.write_sources(market)
    repo.apply()
    return repo, ModelRegistry(settings)


def test_the_recipe_registers_a_champion_then_judges_the_next_against_it(
    market: Marketplace, stores: tuple[FeatureRepo, ModelRegistry]
) -> None:
    repo, registry = stores
    recipe = get_domain("authentication").recipe
    assert recipe is not None
    first = recipe(market, repo, registry)
    assert first.gate_passed and first.champion == first.version == 1
    # a price+seller model: informative, far from the oracle that also sees the photos
    assert 0.08 < first.metrics["pr_auc"] < first.oracle["pr_auc"]
    assert first.metrics["roc_auc"] > 0.6
    assert first.lineage["feature_service"] == "authentication_v1"
    # the oracle's decisions cost less than the model's; both are finite, positive costs
    assert 0 < first.oracle["expected_cost_per_1000"] < first.metrics["expected_cost_per_1000"]
    second = recipe(market, repo, registry)
    verdict = registry.verdict(listing_model.MODEL_NAME, second.version)
    assert verdict is not None and verdict.champion_version == 1
    assert {c.name for c in verdict.checks} >= {"parity", "beats_champion", "no_slice_regression"}
    assert second.champion == 1  # a recipe never replaces a champion by itself


def test_the_registered_onnx_model_reproduces_lightgbm(
    market: Marketplace, stores: tuple[FeatureRepo, ModelRegistry], tmp_path: Path
) -> None:
    _, registry = stores
    loaded = registry.load(listing_model.MODEL_NAME, "champion")
    assert loaded.spec["features"] == listing_model.INPUTS
    thresholds = loaded.spec["thresholds"]
    assert set(thresholds) == {"review", "counterfeit"}
    assert 0.0 < thresholds["review"] < thresholds["counterfeit"] <= 1.0
    x = np.full((3, len(listing_model.INPUTS)), np.nan, dtype=np.float32)  # all features missing
    (p,) = session(loaded.onnx_model).run(["probabilities"], {"features": x})
    assert p.shape == (3, 2)
    assert np.allclose(p.sum(axis=1), 1.0, atol=1e-5)
    assert registry.show(listing_model.MODEL_NAME, 1)["gate"]["passed"] is True
