"""Two `couturier serve` processes on the production stores serve as one.

They share nothing but the stores (the MLflow server on PostgreSQL, the promotion log in
PostgreSQL, Redis): an alias moved through one replica's admin route is followed by the other
from the promotion log, and a request to either gets the same version and the same answer.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pytest
import requests

from couturier.registry import ModelRegistry
from couturier.settings import Settings
from tests.support.registry import World, register

pytestmark = pytest.mark.integration
TOKEN = "replica-admin-token"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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


@pytest.fixture
def replicas(production: dict[str, str], tmp_path: Path) -> Iterator[list[str]]:
    couturier = str(Path(sys.executable).parent / "couturier")
    urls = []
    with ExitStack() as stack:
        for i in range(2):
            port = _port()
            log = stack.enter_context((tmp_path / f"replica-{i}.log").open("w"))
            proc = subprocess.Popen(
                [couturier, "serve", "--port", str(port)],
                env={**os.environ, **production},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            stack.callback(proc.wait, 30)
            stack.callback(proc.terminate)
            urls.append((f"http://127.0.0.1:{port}", proc, tmp_path / f"replica-{i}.log"))
        deadline = time.monotonic() + 120
        for url, proc, log_path in urls:
            while True:
                try:
                    if requests.get(f"{url}/v2/health/ready", timeout=2).status_code == 200:
                        break
                except requests.ConnectionError:
                    pass
                assert proc.poll() is None, log_path.read_text()[-2000:]
                assert time.monotonic() < deadline, log_path.read_text()[-2000:]
                time.sleep(0.3)
        yield [u for u, _, _ in urls]


@pytest.fixture
def name(production: dict[str, str], world: World) -> str:
    """A model with v1 champion and v2 registered (judged against v1), before the replicas."""
    settings = Settings.load(
        **{k.removeprefix("COUTURIER_").lower(): v for k, v in production.items()}
    )
    model = f"replicas-{int(time.time() * 1000)}"
    registry = ModelRegistry(settings)
    try:
        v1 = register(registry, model, world.model(informative=False), world)
        registry.promote(model, v1.version, "champion", actor="test", reason="first")
        register(registry, model, world.model(), world)
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
