"""What a domain is to the platform, and how the platform finds the installed ones.

A domain (authentication, discovery, pricing) is a :class:`Domain` object exposed through the
``couturier.domains`` entry-point group. The platform iterates that group; it never imports a
domain by name, so adding one changes no platform module.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib.metadata import entry_points

from couturier.errors import NotFoundError
from couturier.features.types import FeatureSet

__all__ = ["Domain", "get_domain", "load_domains"]

ENTRY_POINT_GROUP = "couturier.domains"


@dataclass(frozen=True)
class Domain:
    name: str
    description: str
    features: FeatureSet | None = None


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
