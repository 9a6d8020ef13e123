"""Hot swap: champion moves are followed under load without one failed request, and a
version that fails its health check never answers."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import requests

from couturier.registry import ModelRegistry
from couturier.serving import LoadedVersion, ModelRepository, create_app
from couturier.settings import Settings
from tests.support.http import infer_body, serve
from tests.support.registry import World, champion_and_challenger, register
from tests.unit.serving.test_oip import NAME


class _Broken:
    """A session stand-in that answers NaN or raises: what a bad export could do."""

    def __init__(self, mode: str) -> None:
        self.mode = mode

    def run(self, names: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        if self.mode == "raise":
            raise RuntimeError("kernel failed")
        rows = len(next(iter(feeds.values())))
        return [np.full((rows, 2), np.nan, np.float32) for _ in names]


def _loaded(registry: ModelRegistry, version: int) -> LoadedVersion:
    m = registry.load(NAME, version)
    return LoadedVersion.from_onnx(NAME, m.version, m.onnx_model, m.spec, 1)


def test_a_version_that_fails_its_health_check_is_never_swapped_in(
    world: World, tmp_path: Path
) -> None:
    registry = ModelRegistry(Settings(home=tmp_path / "home"))
    try:
        register(registry, NAME, world.model(), world)
        good = _loaded(registry, 1)
    finally:
        registry.close()
    repository = ModelRepository()
    repository.add(good)
    for version, mode in ((2, "nan"), (3, "raise")):
        bad = LoadedVersion(NAME, version, _Broken(mode), {}, good.inputs, good.outputs)
        problem = repository.swap(bad)
        assert problem is not None
        assert repository.get(NAME).version == 1  # the good version keeps answering
    assert "not finite" in repository.swaps[0]["problem"]
    assert "kernel failed" in repository.swaps[1]["problem"]
    assert repository.swap(_loaded_again(good)) is None


def _loaded_again(good: LoadedVersion) -> LoadedVersion:
    return LoadedVersion(NAME, 4, good.session, good.spec, good.inputs, good.outputs)


def test_champion_moves_are_followed_under_load_with_no_failed_request(
    world: World, tmp_path: Path
) -> None:
    settings = Settings(home=tmp_path / "home")
    registry = ModelRegistry(settings)
    v1, v2 = champion_and_challenger(registry, NAME, world)
    repository = ModelRepository.from_registry(registry)
    app = create_app(repository, registry=lambda: ModelRegistry(settings), follow_interval_s=0.05)
    statuses: list[int] = []
    seen: list[str] = []
    stop = threading.Event()

    def client() -> None:
        with requests.Session() as http:
            while not stop.is_set():
                r = http.post(f"{url}/v2/models/{NAME}/infer", json=infer_body(world.x[:3]))
                statuses.append(r.status_code)
                if r.status_code == 200:
                    seen.append(r.json()["model_version"])

    def wait_for(version: int) -> None:
        deadline = time.time() + 30
        while not seen or seen[-1] != str(version):
            assert time.time() < deadline, f"v{version} never answered; saw {set(seen)}"
            time.sleep(0.01)

    try:
        with serve(app) as url:
            clients = [threading.Thread(target=client) for _ in range(3)]
            for c in clients:
                c.start()
            swaps = 0
            for target in (v2, v1, v2, v1):
                if target is v2:
                    registry.promote(NAME, v2.version, "champion", actor="test", reason="better")
                else:
                    registry.rollback(NAME, actor="test", reason="back to v1")
                wait_for(target.version)
                swaps += 1
            stop.set()
            for c in clients:
                c.join(10)
            metrics = requests.get(f"{url}/metrics").text
    finally:
        stop.set()
        registry.close()
    assert swaps == 4 and len(statuses) > 20
    assert set(statuses) == {200}, {s: statuses.count(s) for s in set(statuses)}
    assert f'couturier_swaps_total{{model="{NAME}",outcome="ok",role="champion"}} 4.0' in metrics, [
        line for line in metrics.splitlines() if "swaps" in line
    ]
    assert [s["ok"] for s in repository.swaps] == [True] * 4
