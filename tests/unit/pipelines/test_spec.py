"""What a domain declares to the pipelines layer."""

from __future__ import annotations

import pytest

from couturier.domain import load_domains
from couturier.errors import InvalidParameterError
from couturier.pipelines import Cadence, Retrain


def test_cadence_rules() -> None:
    with pytest.raises(InvalidParameterError, match="5 fields"):
        Retrain("model", "daily")
    with pytest.raises(InvalidParameterError, match="must match"):
        Retrain("Model-1", "0 3 * * *")
    with pytest.raises(InvalidParameterError, match="ranges and steps"):
        Retrain("model", "0 3 * * 1-5")
    with pytest.raises(InvalidParameterError, match="daily at a fixed time"):
        Cadence(monitor="0 */6 * * *")
    with pytest.raises(InvalidParameterError, match="unique"):
        Cadence(retrain=(Retrain("a", "0 3 * * *"), Retrain("a", "0 4 * * *")))


def test_the_installed_domains_declare_daily_to_weekly_cadences() -> None:
    domains = load_domains()
    auth = domains["authentication"].cadence
    assert auth.materialize == "0 * * * *"  # hourly
    assert [r.cron.split()[4] for r in auth.retrain] == ["*"]  # daily
    discovery = domains["discovery"].cadence
    assert [r.cron.split()[4] for r in discovery.retrain] == ["0"]  # weekly, on Sunday
    assert domains["authentication"].watches and not domains["discovery"].watches
