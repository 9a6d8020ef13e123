"""The production profile against a real Redis and a real PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from couturier.doctor import run_checks
from couturier.settings import Settings

pytestmark = pytest.mark.integration


def _production(tmp_path: Path, redis_url: str, postgres_dsn: str) -> Settings:
    return Settings.load(
        profile="production",
        home=tmp_path,
        redis_url=redis_url,
        postgres_dsn=postgres_dsn,
        object_store_uri=f"file://{tmp_path}/artifacts",
        mlflow_tracking_uri="http://127.0.0.1:1",
    )


def test_every_production_store_is_reachable(
    tmp_path: Path, redis_url: str, postgres_dsn: str
) -> None:
    checks = {c.name: c for c in run_checks(_production(tmp_path, redis_url, postgres_dsn))}
    assert set(checks) == {"home", "redis", "postgresql", "object store", "mlflow"}
    failed = {name: c.detail for name, c in checks.items() if not c.ok and name != "mlflow"}
    assert not failed
    assert checks["redis"].detail.startswith("PING ok")
    assert "postgresql" in checks["postgresql"].detail


def test_an_unreachable_server_is_reported_not_raised(tmp_path: Path, postgres_dsn: str) -> None:
    # port 1 on loopback: nothing listens there
    settings = _production(tmp_path, "redis://127.0.0.1:1/0", postgres_dsn)
    checks = {c.name: c for c in run_checks(settings, timeout_s=1.0)}
    assert not checks["redis"].ok
    assert "Connection" in checks["redis"].detail
    assert checks["postgresql"].ok


def test_a_password_never_reaches_the_report(tmp_path: Path, redis_url: str) -> None:
    dsn = "postgresql://couturier:s3cret@127.0.0.1:1/couturier"
    checks = {c.name: c for c in run_checks(_production(tmp_path, redis_url, dsn), timeout_s=1.0)}
    assert "s3cret" not in checks["postgresql"].target
    assert not checks["postgresql"].ok
