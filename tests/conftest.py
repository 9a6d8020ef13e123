"""Shared fixtures: one simulated marketplace per test session, reused read-only."""

from __future__ import annotations

from pathlib import Path

import pytest

from couturier.marketplace import Marketplace, SimulationConfig, simulate


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads the developer's environment or writes outside its tmp folder."""
    for var in (
        "COUTURIER_PROFILE",
        "COUTURIER_REDIS_URL",
        "COUTURIER_POSTGRES_DSN",
        "COUTURIER_OBJECT_STORE_URI",
        "COUTURIER_ADMIN_TOKEN",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("COUTURIER_HOME", str(tmp_path / "home"))


@pytest.fixture(scope="session")
def market(tmp_path_factory: pytest.TempPathFactory) -> Marketplace:
    """4,000 listings with photos: big enough for prevalence and oracle checks."""
    out = tmp_path_factory.mktemp("market") / "run"
    return simulate(SimulationConfig.of(listings=4000, days=90, chunk_size=1000), out, workers=2)


pytest_plugins = ["tests.support.registry", "tests.support.browser"]
