"""The production registry: an MLflow server on PostgreSQL, the promotion log in PostgreSQL."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from couturier.registry import ModelRegistry
from couturier.registry._tracking import mlflow_server_command
from couturier.settings import Settings
from tests.support.registry import World, register

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def mlflow_server(
    postgres_dsn_module: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """``mlflow server`` as production runs it: PostgreSQL backend, proxied artifacts."""
    base, _, _ = postgres_dsn_module.rpartition("/")
    with psycopg.connect(postgres_dsn_module, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS couturier_mlflow WITH (FORCE)")
        conn.execute("CREATE DATABASE couturier_mlflow")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    artifacts = tmp_path_factory.mktemp("mlflow-artifacts")
    log = (tmp_path_factory.mktemp("mlflow-log") / "server.log").open("w")
    backend = base.replace("postgresql://", "postgresql+psycopg://") + "/couturier_mlflow"
    cmd, env = mlflow_server_command(backend, port, artifacts_destination=str(artifacts))
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.flush()
                raise RuntimeError(f"mlflow server did not start; see {log.name}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


@pytest.fixture(scope="module")
def postgres_dsn_module() -> str:
    from tests.integration.conftest import POSTGRES_DSN

    return POSTGRES_DSN


def test_register_promote_and_audit_through_a_server_on_postgres(
    mlflow_server: str, postgres_dsn_module: str, redis_url: str, tmp_path: Path, world: World
) -> None:
    settings = Settings.load(
        profile="production",
        home=tmp_path,
        redis_url=redis_url,
        postgres_dsn=postgres_dsn_module,
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
        with psycopg.connect(postgres_dsn_module) as conn:
            rows = conn.execute(
                "SELECT count(*) FROM couturier_promotion_log WHERE model = %s", (name,)
            ).fetchone()
        assert rows is not None and rows[0] == 4  # challenger and champion, twice
        reg.rollback(name, actor="oncall", reason="drill")
        assert reg.alias_version(name, "champion") == v1.version
    finally:
        reg.close()
