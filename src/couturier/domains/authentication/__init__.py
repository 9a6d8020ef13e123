"""Authentication: is this listing counterfeit? Its features, models and decisions."""

from couturier.domain import Domain
from couturier.domains.authentication.features import FEATURES
from couturier.domains.authentication.recipe import run_recipe


def _service(settings: object, registry: object) -> object:
    from couturier.domains.authentication.service import mount

    return mount(settings, registry)


__all__ = ["FEATURES", "domain"]

domain = Domain(
    name="authentication",
    description="decide whether a listing is authentic, counterfeit, or needs an expert",
    features=FEATURES,
    recipe=run_recipe,
    service=_service,
)
