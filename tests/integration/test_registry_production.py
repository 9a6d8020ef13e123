"""The production registry: an MLflow server on PostgreSQL, the promotion log in PostgreSQL."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg
import pytest

from couturier.registry import ModelRegistry
from couturier.settings import Settings
from tests.support.registry import World, register

pytestmark = pytest.mark.integration


def test_register_promote_and_audit_through_a_server_on_postgres(
    mlflow_server: str, postgres_dsn: str, redis_url: str, tmp_path: Path, world: World
) -> None:
    settings = Settings.load(
        profile="production",
        home=tmp_path,
        redis_url=redis_url,
        postgres_dsn=postgres_dsn,
        object_store_uri="s3://unused-by-the-client",
        mlflow_tracking_uri=mlflow_server,
    )
    reg = ModelRegistry(settings)
    try:
        name = f"prod-{int(time.time() * 1000)}"
        v1 = register(reg, name, world.model(informative=False), world)
        reg.promote(name, v1.version, "champion", actor="ana", reason="baseline")
        v2 = register(reg, name, world.model(), world)
        assert v2.verdict.passed and v2.verdict.champion_version == v1.version
        reg.promote(name, v2.version, "champion", actor="bo", reason="better")

        # another replica: the same aliases, the same history, the same artifacts
        other = ModelRegistry(settings)
        try:
            assert other.alias_version(name, "champion") == v2.version
            assert [(e.from_version, e.to_version) for e in other.history(name, "champion")] == [
                (None, v1.version),
                (v1.version, v2.version),
            ]
            assert other.load(name, "champion").spec["features"] == ["f0", "f1", "f2", "f3"]
        finally:
            other.close()
        with psycopg.connect(postgres_dsn) as conn:
            rows = conn.execute(
                "SELECT count(*) FROM couturier_promotion_log WHERE model = %s", (name,)
            ).fetchone()
        assert rows is not None and rows[0] == 4  # challenger and champion, twice
        reg.rollback(name, actor="oncall", reason="drill")
        assert reg.alias_version(name, "champion") == v1.version
    finally:
        reg.close()
