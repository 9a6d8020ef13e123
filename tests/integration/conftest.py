"""Integration tests use the real servers `.ci/run` starts.

Locally, start them the same way (see `.ci/run`) or point ``COUTURIER_TEST_REDIS_URL`` and
``COUTURIER_TEST_POSTGRES_DSN`` at your own. A missing server is a failure, not a skip: CI must
never pass by not testing.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator

import psycopg
import pytest

from couturier.registry._tracking import mlflow_server_command

REDIS_URL = os.environ.get("COUTURIER_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
POSTGRES_DSN = os.environ.get(
    "COUTURIER_TEST_POSTGRES_DSN", "postgresql://couturier:couturier@127.0.0.1:5432/couturier"
)


@pytest.fixture
def redis_url() -> str:
    return REDIS_URL


@pytest.fixture
def postgres_dsn() -> str:
    return POSTGRES_DSN


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``mlflow server`` as production runs it: PostgreSQL backend, proxied artifacts."""
    base, _, _ = POSTGRES_DSN.rpartition("/")
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
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
