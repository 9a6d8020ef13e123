"""Pricing: a price suggestion for every new listing, with an honest interval and the sale
probability it implies.

The domain plugs into the platform through :data:`domain` (the ``couturier.domains`` entry
point) and changes no platform layer. It reads authentication's decisions through the platform
(``ServiceContext.decisions``), never its code. Heavy parts (LightGBM, onnxmltools, MAPIE) are
imported only when the recipe runs. ``docs/pricing.md`` tells the story.

>>> from couturier.domains.pricing import PricingConfig, fit_pricing   # doctest: +SKIP
>>> fit = fit_pricing(market, repo, PricingConfig(confidence=0.9))      # doctest: +SKIP
>>> fit.metrics["coverage"], fit.metrics["revenue_vs_oracle"]          # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from couturier.domain import Domain, RecipeReport
from couturier.domains.pricing._features import FEATURES
from couturier.domains.pricing._recipe import PricingFit, fit_pricing
from couturier.domains.pricing._train import PricingConfig
from couturier.extras import require
from couturier.pipelines import Cadence, Retrain

if TYPE_CHECKING:
    from fastapi import APIRouter

    from couturier.features import FeatureRepo
    from couturier.marketplace import Marketplace
    from couturier.registry import ModelRegistry
    from couturier.serving import ServiceContext

__all__ = ["FEATURES", "PricingConfig", "PricingFit", "domain", "fit_pricing"]

_HEAVY = ("lightgbm", "onnxmltools", "mapie")


def _run_recipe(market: Marketplace, repo: FeatureRepo, registry: ModelRegistry) -> RecipeReport:
    for module in _HEAVY:  # fail before any work
        require(module, extra="pricing", purpose="the pricing recipe")
    from couturier.domains.pricing._recipe import run_recipe

    return run_recipe(market, repo, registry)


def _mount(context: ServiceContext) -> APIRouter:
    from couturier.domains.pricing._service import mount

    return mount(context)


domain = Domain(
    name="pricing",
    description="price suggestions with a conformal interval and the sale odds at each price",
    features=FEATURES,
    recipe=_run_recipe,
    service=_mount,
    # daily, after the night's sales have arrived: a market that moves is re-learned each day
    cadence=Cadence(retrain=(Retrain("models", "30 3 * * *"),)),
)
