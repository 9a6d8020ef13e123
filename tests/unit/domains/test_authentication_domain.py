"""The authentication domain honours the platform's domain seam (``check_domain``)."""

from __future__ import annotations

from couturier.conformance import check_domain
from couturier.domain import get_domain


def test_the_authentication_domain_conforms() -> None:
    check_domain(get_domain("authentication"))
