"""Integration tests run against real servers that the test session starts itself.

Redis and PostgreSQL are throw-away processes on free loopback ports (``tests/support/
servers.py``; the binaries come from wheels of the dev dependencies), started on first use and
removed at the end of the session, so ``make test`` needs nothing installed or running.
``COUTURIER_TEST_REDIS_URL`` and ``COUTURIER_TEST_POSTGRES_DSN`` point the tests at servers of
your own instead. A server that cannot start is a failure, not a skip.
"""

from __future__ import annotations

import os
import subprocess
import time
import urllib.request
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy.engine import make_url

from couturier.registry import mlflow_server_command
from tests.support.servers import PostgresServer, RedisServer, free_port


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    if url := os.environ.get("COUTURIER_TEST_REDIS_URL"):
        yield url
        return
    with RedisServer.start() as server:
        yield server.url


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    if dsn := os.environ.get("COUTURIER_TEST_POSTGRES_DSN"):
        yield dsn
        return
    with PostgresServer.start() as server:
        yield server.dsn


def fresh_database(dsn: str, name: str) -> str:
    """Drop and create database ``name`` on ``dsn``'s server; its DSN (same role)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return make_url(dsn).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def mlflow_server(postgres_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``mlflow server`` as production runs it: PostgreSQL backend, proxied artifacts."""
    database = fresh_database(postgres_dsn, "couturier_mlflow")
    port = free_port()
    artifacts = tmp_path_factory.mktemp("mlflow-artifacts")
    log = (tmp_path_factory.mktemp("mlflow-log") / "server.log").open("w")
    backend = database.replace("postgresql://", "postgresql+psycopg://", 1)
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
