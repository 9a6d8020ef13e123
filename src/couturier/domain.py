"""What a domain is to the platform, and how the platform finds the installed ones.

A domain (authentication, discovery, pricing) is a :class:`Domain` object exposed through the
``couturier.domains`` entry-point group. The platform iterates that group; it never imports a
domain by name, so adding one changes no platform module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from couturier.errors import NotFoundError
from couturier.features.types import FeatureSet
from couturier.monitoring import Watch
from couturier.pipelines import Cadence
from couturier.replay import Traffic

if TYPE_CHECKING:
    import typer
    from fastapi import APIRouter

    from couturier.features import FeatureRepo
    from couturier.marketplace import Marketplace
    from couturier.registry import ModelRegistry
    from couturier.serving import ServiceContext

__all__ = ["Domain", "Recipe", "RecipeReport", "Service", "get_domain", "load_domains"]


@dataclass(frozen=True)
class RecipeReport:
    """What a training recipe reports: the version it registered and how it compares."""

    model: str
    version: int
    gate_passed: bool
    champion: int | None
    metrics: dict[str, float]
    oracle: dict[str, float] = field(default_factory=dict)
    lineage: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)  # per stage: versions, timings, ...


#: data -> training set -> train -> evaluate -> register through the gate.
Recipe = Callable[["Marketplace", "FeatureRepo", "ModelRegistry"], RecipeReport]

#: The server's context -> the domain's routes. Models are followed through the context
#: (``context.follow``), so the routes serve the registry's champion and canary as they move,
#: and answer 503 until a champion exists; mounting itself must not need one.
Service = Callable[["ServiceContext"], "APIRouter"]

ENTRY_POINT_GROUP = "couturier.domains"


@dataclass(frozen=True)
class Domain:
    """A domain as the platform sees it. ``watches``: what monitoring watches (one per served
    model); ``cadence``: when the pipelines materialize, retrain and monitor; ``traffic``: what
    a simulated day's requests are, for ``couturier replay``; ``commands``: the domain's own
    command-line group, ``couturier <name> ...`` (built when the CLI starts).

    ``pages``: pages for people (HTML: the review console), mounted like ``service`` but under
    a prefix of the domain's own, outside the API's ``/v1`` and ``/v2``, with none of the API's
    rules: they are not in the OpenAPI document and need no champion to work."""

    name: str
    description: str
    features: FeatureSet | None = None
    recipe: Recipe | None = None
    service: Service | None = None
    pages: Service | None = None
    watches: tuple[Watch, ...] = ()
    cadence: Cadence = field(default_factory=Cadence)
    traffic: Traffic | None = None
    commands: Callable[[], typer.Typer] | None = None


@cache
def load_domains() -> dict[str, Domain]:
    """Every installed domain, by name."""
    found: dict[str, Domain] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        domain = ep.load()
        if not isinstance(domain, Domain):
            raise TypeError(f"entry point {ep.value} is not a couturier Domain")
        found[domain.name] = domain
    return found


def get_domain(name: str) -> Domain:
    domains = load_domains()
    if name not in domains:
        raise NotFoundError(
            f"no domain {name!r}; installed domains: {', '.join(sorted(domains)) or 'none'}",
            domain=name,
        )
    return domains[name]
