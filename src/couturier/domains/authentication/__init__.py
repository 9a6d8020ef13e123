"""Authentication: is this listing counterfeit? Its features, models and decisions.

The domain plugs into the platform through :data:`domain` (the ``couturier.domains`` entry
point). Its recipe and its service import their heavy parts (torch, LightGBM, FAISS) only when
called, so discovering the domain costs nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from couturier.domain import Domain, RecipeReport
from couturier.domains.authentication.features import FEATURES
from couturier.domains.authentication.monitoring import WATCH
from couturier.domains.authentication.traffic import TRAFFIC
from couturier.extras import require
from couturier.pipelines import Cadence, Retrain

if TYPE_CHECKING:
    import typer
    from fastapi import APIRouter

    from couturier.features import FeatureRepo
    from couturier.marketplace import Marketplace
    from couturier.registry import ModelRegistry
    from couturier.serving import ServiceContext

__all__ = ["FEATURES", "domain"]


def _recipe(market: Marketplace, repo: FeatureRepo, registry: ModelRegistry) -> RecipeReport:
    for module in ("torch", "lightgbm", "onnxmltools", "faiss"):  # fail before any work
        require(module, extra="authentication", purpose="the authentication recipe")
    from couturier.domains.authentication.recipe import run_recipe

    return run_recipe(market, repo, registry)


def _service(context: ServiceContext) -> APIRouter:
    require("faiss", extra="authentication", purpose="the authentication service")
    from couturier.domains.authentication.service import mount

    return mount(context)


def _pages(context: ServiceContext) -> APIRouter:
    from couturier.domains.authentication.review import mount_review

    return mount_review(context)


def _commands() -> typer.Typer:
    from couturier.domains.authentication.review._cli import commands

    return commands


domain = Domain(
    name="authentication",
    description="decide whether a listing is authentic, counterfeit, or needs an expert",
    features=FEATURES,
    recipe=_recipe,
    service=_service,
    pages=_pages,
    watches=(WATCH,),
    # features hourly, the graph daily, monitoring daily after the night's verdicts
    cadence=Cadence(
        materialize="0 * * * *",
        retrain=(Retrain("graph", "0 3 * * *"),),
        monitor="0 5 * * *",
    ),
    traffic=TRAFFIC,
    commands=_commands,
)
