from __future__ import annotations

from pathlib import Path

import pytest

from couturier.errors import SettingsError
from couturier.settings import PRODUCTION_REQUIRED, Settings


def test_local_profile_needs_nothing_and_keeps_every_store_under_home(tmp_path: Path) -> None:
    s = Settings.load(home=tmp_path)
    assert s.profile == "local"
    for store in (s.paths.marketplace, s.paths.reports, s.paths.features, s.paths.mlflow):
        assert store.is_relative_to(tmp_path)


def test_home_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("COUTURIER_HOME", str(tmp_path / "elsewhere"))
    assert Settings.load().paths.home == tmp_path / "elsewhere"


@pytest.mark.parametrize("missing", sorted(PRODUCTION_REQUIRED))
def test_production_names_the_missing_variable_and_an_example(
    monkeypatch: pytest.MonkeyPatch, missing: str
) -> None:
    monkeypatch.setenv("COUTURIER_PROFILE", "production")
    for field, example in PRODUCTION_REQUIRED.items():
        if field != missing:
            monkeypatch.setenv(f"COUTURIER_{field.upper()}", example)
    with pytest.raises(SettingsError) as info:
        Settings.load()
    variable = f"COUTURIER_{missing.upper()}"
    assert info.value.variable == variable
    assert variable in info.value.message
    assert PRODUCTION_REQUIRED[missing] in info.value.message  # the example value


def test_production_starts_when_every_server_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COUTURIER_PROFILE", "production")
    for field, example in PRODUCTION_REQUIRED.items():
        monkeypatch.setenv(f"COUTURIER_{field.upper()}", example)
    s = Settings.load()
    assert s.profile == "production"
    assert s.redis_url == PRODUCTION_REQUIRED["redis_url"]


def test_an_unknown_profile_is_one_readable_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COUTURIER_PROFILE", "staging")
    with pytest.raises(SettingsError, match="COUTURIER_PROFILE='staging' is invalid") as info:
        Settings.load()
    assert "local" in info.value.message and "production" in info.value.message


def test_the_server_reads_the_demos_marketplace_unless_told(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert (
        Settings(home=tmp_path).active_marketplace == tmp_path.absolute() / "marketplace" / "demo"
    )
    monkeypatch.setenv("COUTURIER_MARKETPLACE_RUN", str(tmp_path / "elsewhere"))
    assert Settings.load().active_marketplace == tmp_path / "elsewhere"
