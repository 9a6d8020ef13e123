"""A domain for testing the pipelines layer: real features (authentication's, on a real
marketplace), and a recipe that registers a small real model through the gate in a second."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from couturier.domain import Domain, RecipeReport
from couturier.domains.authentication.features import FEATURES
from couturier.features import FeatureRepo
from couturier.marketplace import Marketplace
from couturier.monitoring import Watch
from couturier.pipelines import Cadence, Retrain
from couturier.registry import ModelRegistry
from tests.support.registry import World, register

__all__ = ["TOY_PIPELINE_MODEL", "pipeline_domain", "toy_world"]

TOY_PIPELINE_MODEL = "toy-pipeline"


def toy_world() -> World:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4000, 4)).astype(np.float32)
    y = (x[:, 0] * 2 + rng.normal(size=4000) > 2.0).astype(int)
    return World(x, y, rng.integers(0, 3, 4000))


def _recipe(market: Marketplace, repo: FeatureRepo, registry: ModelRegistry) -> RecipeReport:
    """v1: a weak model; later versions: the informative one. With ``COUTURIER_TEST_HANG``
    set to a file path, the run registers its version, touches that file and hangs (to be
    killed halfway)."""
    world = toy_world()
    first = registry.alias_version(TOY_PIPELINE_MODEL, "champion") is None
    informative = not first and os.environ.get("COUTURIER_TEST_WORSE") is None
    registered = register(registry, TOY_PIPELINE_MODEL, world.model(informative=informative), world)
    hang = os.environ.get("COUTURIER_TEST_HANG")
    if hang:
        Path(hang).touch()
        time.sleep(600)
    return RecipeReport(
        model=TOY_PIPELINE_MODEL,
        version=registered.version,
        gate_passed=registered.verdict.passed,
        champion=registry.alias_version(TOY_PIPELINE_MODEL, "champion"),
        metrics={"pr_auc": 0.5},
    )


def pipeline_domain() -> Domain:
    return Domain(
        name="toypipe",
        description="real features, a toy model",
        features=FEATURES,
        recipe=_recipe,
        watches=(Watch(model=TOY_PIPELINE_MODEL, stream="toy", key="listing_id"),),
        cadence=Cadence(retrain=(Retrain("model", "0 3 * * *"),)),
    )
