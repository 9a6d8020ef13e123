"""`couturier serve` replicas on the production stores: they start together and serve as one.

They share nothing but the stores (the MLflow server on PostgreSQL, the promotion log in
PostgreSQL, Redis): replicas started at the same moment on a fresh database set its schema up
once between them (``couturier.schema``), an alias moved through one replica's admin route is
followed by the other from the promotion log, and a request to either gets the same version and
the same answer.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import numpy as np
import psycopg
import pytest
import requests

from couturier.domains.authentication import FEATURES
from couturier.features import FeatureRepo
from couturier.registry import ModelRegistry, upgrade_schema
from couturier.registry._log import PromotionLog
from couturier.settings import Settings
from tests.integration.conftest import fresh_database
from tests.support.registry import World, champion_and_challenger
from tests.support.servers import free_port

pytestmark = pytest.mark.integration
TOKEN = "replica-admin-token"


@pytest.fixture
def production(
    mlflow_server: str, postgres_dsn: str, redis_url: str, tmp_path: Path
) -> dict[str, str]:
    return {
        "COUTURIER_PROFILE": "production",
        "COUTURIER_HOME": str(tmp_path / "home"),
        "COUTURIER_REDIS_URL": redis_url,
        "COUTURIER_POSTGRES_DSN": postgres_dsn,
        "COUTURIER_OBJECT_STORE_URI": "s3://unused-by-the-client",
        "COUTURIER_MLFLOW_TRACKING_URI": mlflow_server,
        "COUTURIER_ADMIN_TOKEN": TOKEN,
    }


@contextmanager
def _replicas(env: dict[str, str], folder: Path, count: int) -> Iterator[list[str]]:
    """``count`` ``couturier serve`` processes started at the same moment, once all are ready
    (a replica that exits or is not ready in time fails, showing its log)."""
    couturier = str(Path(sys.executable).parent / "couturier")
    started = []
    with ExitStack() as stack:
        for i in range(count):
            port = free_port()
            path = folder / f"replica-{i}.log"
            log = stack.enter_context(path.open("w"))
            proc = subprocess.Popen(
                [couturier, "serve", "--port", str(port)],
                env={**os.environ, **env},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            stack.callback(proc.wait, 30)
            stack.callback(proc.terminate)
            started.append((f"http://127.0.0.1:{port}", proc, path))
        deadline = time.monotonic() + 180
        for url, proc, path in started:
            while True:
                try:
                    ready = requests.get(f"{url}/v2/health/ready", timeout=2)
                    assert ready.status_code == 200, ready.text
                    break
                except requests.RequestException:  # not listening yet, or busy starting
                    pass
                assert proc.poll() is None, path.read_text()[-3000:]
                assert time.monotonic() < deadline, path.read_text()[-3000:]
                time.sleep(0.2)
        yield [u for u, _, _ in started]


@pytest.fixture
def replicas(production: dict[str, str], tmp_path: Path) -> Iterator[list[str]]:
    with _replicas(production, tmp_path, 2) as urls:
        yield urls


@pytest.fixture
def name(production: dict[str, str], world: World) -> str:
    """A model with v1 champion and v2 registered (judged against v1), before the replicas."""
    settings = Settings.load(
        **{k.removeprefix("COUTURIER_").lower(): v for k, v in production.items()}
    )
    model = f"replicas-{int(time.time() * 1000)}"
    registry = ModelRegistry(settings)
    try:
        champion_and_challenger(registry, model, world)
    finally:
        registry.close()
    return model


def _infer(url: str, name: str, x: np.ndarray) -> tuple[str, list[float]]:
    body = {"inputs": [{"name": "X", "shape": list(x.shape), "datatype": "FP32"}]}
    body["inputs"][0]["data"] = x.ravel().tolist()
    body["outputs"] = [{"name": "probabilities"}]
    r = requests.post(f"{url}/v2/models/{name}/infer", json=body, timeout=30)
    assert r.status_code == 200, r.text
    out = r.json()
    return out["model_version"], out["outputs"][0]["data"]


def test_two_replicas_on_the_same_stores_serve_as_one(
    name: str, replicas: list[str], world: World
) -> None:
    a, b = replicas
    x = world.x[:4]
    assert _infer(a, name, x) == _infer(b, name, x)  # the same version, the same answer
    assert _infer(a, name, x)[0] == "1"

    # an operator moves the champion through replica a's admin route...
    moved = requests.put(
        f"{a}/admin/models/{name}/aliases/champion",
        json={"version": 2, "reason": "better", "actor": "oncall"},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=60,
    )
    assert moved.status_code == 200, moved.text
    assert _infer(a, name, x)[0] == "2"  # a swapped at once
    # ...and b follows the shared promotion log, with no request failing meanwhile
    deadline = time.monotonic() + 30
    while _infer(b, name, x)[0] != "2":
        assert time.monotonic() < deadline, "replica b never followed the move"
        time.sleep(0.2)
    assert _infer(a, name, x) == _infer(b, name, x)
    for url in replicas:
        meta = requests.get(f"{url}/v2/models/{name}", timeout=10).json()
        assert meta["versions"] == ["2"]


def _promotion_log_schema(dsn: str) -> tuple[int, int, int]:
    """(tables, trigger functions, triggers) of the promotion log in ``dsn``'s database."""
    with psycopg.connect(dsn) as conn:
        counts = [
            conn.execute(query).fetchone()
            for query in (
                "SELECT count(*) FROM pg_tables WHERE tablename = 'couturier_promotion_log'",
                "SELECT count(*) FROM pg_proc "
                "WHERE proname = 'couturier_promotion_log_append_only'",
                "SELECT count(*) FROM pg_trigger WHERE tgname = 'couturier_promotion_log_ro'",
            )
        ]
    return tuple(int(c[0]) if c else 0 for c in counts)  # type: ignore[return-value]


@pytest.mark.timeout(1200)  # 40 server starts on 2 cores: minutes, not the default 600 s
def test_four_replicas_started_together_on_a_fresh_database_never_fail(
    production: dict[str, str], postgres_dsn: str, tmp_path: Path
) -> None:
    """Ten times: four replicas at the same moment on a database nobody set up (the race that
    failed one start in four with ``tuple concurrently updated``)."""
    for round_ in range(10):
        dsn = fresh_database(postgres_dsn, f"couturier_replicas_{round_}")
        folder = tmp_path / f"round-{round_}"
        folder.mkdir()
        env = {**production, "COUTURIER_POSTGRES_DSN": dsn}
        with _replicas(env, folder, 4) as urls:
            assert len(urls) == 4
        for log in folder.glob("replica-*.log"):
            assert "Traceback" not in log.read_text(), log.read_text()[-3000:]
        assert _promotion_log_schema(dsn) == (1, 1, 1)


def test_schema_set_up_by_four_processes_at_once_is_made_once(
    production: dict[str, str], postgres_dsn: str, tmp_path: Path
) -> None:
    """The promotion log and the feature registry, set up from four threads released together
    on a fresh database, ten times: no error, one schema."""
    settings = Settings.load(
        **{k.removeprefix("COUTURIER_").lower(): v for k, v in production.items()}
    )
    for round_ in range(10):
        dsn = fresh_database(postgres_dsn, f"couturier_schema_{round_}")
        url = dsn.replace("postgresql://", "postgresql+psycopg://", 1)
        gate = threading.Barrier(4)
        errors: list[BaseException] = []

        def set_up(
            i: int,
            url: str = url,
            dsn: str = dsn,
            gate: threading.Barrier = gate,
            errors: list[BaseException] = errors,
        ) -> None:
            try:
                gate.wait(30)
                if i % 2:
                    upgrade_schema(url)
                else:
                    PromotionLog(url).close()
                FeatureRepo(FEATURES, settings.model_copy(update={"postgres_dsn": dsn})).close()
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=set_up, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert errors == []
        assert _promotion_log_schema(dsn) == (1, 1, 1)
