"""The production profile's feature store: SQL registry on PostgreSQL, Redis online store."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from couturier.domains.authentication import FEATURES
from couturier.features import FeatureRepo, OnlineReader, materialize, watermark
from couturier.marketplace import Marketplace
from couturier.settings import Settings

pytestmark = pytest.mark.integration


def test_production_profile_registers_in_postgres_and_serves_from_redis(
    market: Marketplace, tmp_path: Path, redis_url: str, postgres_dsn: str
) -> None:
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")  # a clean registry
    settings = Settings.load(
        profile="production",
        home=tmp_path,
        redis_url=redis_url.rsplit("/", 1)[0] + "/4",
        postgres_dsn=postgres_dsn,
        object_store_uri=f"file://{tmp_path}/artifacts",
        mlflow_tracking_uri="http://127.0.0.1:1",
    )
    with FeatureRepo(FEATURES, settings) as repo, FeatureRepo(FEATURES, settings) as replica:
        _register_then_serve(repo, replica, market, postgres_dsn)


def _register_then_serve(
    repo: FeatureRepo, replica: FeatureRepo, market: Marketplace, postgres_dsn: str
) -> None:
    assert repo.online_kind == "redis"
    assert repo.config.registry.registry_type == "sql"
    repo.write_sources(market)
    repo.apply()
    end = datetime(2026, 2, 1, tzinfo=UTC)
    materialize(repo, end)

    # a second store (a serving replica) sees the same registry and watermarks
    assert watermark(replica, "seller_stats") == end
    with psycopg.connect(postgres_dsn) as conn:
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables").fetchall()}
    assert "feature_views" in tables
    result = OnlineReader(replica).get([{"listing_id": 0, "seller_id": 0, "product_id": 0}])
    assert result.defaulted["listing"] == [False]
