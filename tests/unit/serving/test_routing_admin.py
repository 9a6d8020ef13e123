"""Canary and shadow routing, following their registry aliases, and the admin routes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests

from couturier.registry import ModelRegistry
from couturier.serving import (
    Batching,
    LoadedVersion,
    ModelRepository,
    PredictionLog,
    PredictionSink,
    Routing,
    create_app,
    read_predictions,
)
from couturier.settings import Settings
from tests.support.http import infer_body, serve
from tests.support.registry import World, champion_and_challenger, register
from tests.unit.serving.test_oip import NAME

TOKEN = "s3cret-admin-token"


@pytest.fixture
def three(world: World, tmp_path: Path) -> Iterator[Settings]:
    """v1 champion, v2 and v3 registered (v2 judged against v1, v3 uninformative)."""
    settings = Settings(home=tmp_path / "home")
    registry = ModelRegistry(settings)
    try:
        champion_and_challenger(registry, NAME, world)
        register(registry, NAME, world.model(seed=3), world)
    finally:
        registry.close()
    yield settings


def _version_counts(url: str, world: World, n: int) -> dict[str, int]:
    counts: dict[str, int] = {}
    with requests.Session() as http:
        for _ in range(n):
            r = http.post(f"{url}/v2/models/{NAME}/infer", json=infer_body(world.x[:1]))
            assert r.status_code == 200, r.text
            v = r.json()["model_version"]
            counts[v] = counts.get(v, 0) + 1
    return counts


def test_a_canary_answers_its_share_and_a_shadow_is_only_logged(
    three: Settings, world: World, tmp_path: Path
) -> None:
    registry = ModelRegistry(three)
    try:
        registry.promote(NAME, 2, "canary", actor="test", reason="try v2 on a share")
        registry.promote(NAME, 3, "shadow", actor="test", reason="watch v3")
        repository = ModelRepository.from_registry(registry)  # a fresh replica sees the roles
    finally:
        registry.close()
    log = PredictionLog(tmp_path / "shadow")
    app = create_app(
        repository, routing=Routing(canary_share=0.25, seed=1), shadow_log=log, follow=False
    )
    with serve(app) as url:
        counts = _version_counts(url, world, 400)
        # a version path is never rerouted
        pinned = requests.post(
            f"{url}/v2/models/{NAME}/versions/1/infer", json=infer_body(world.x[:1])
        )
        assert pinned.json()["model_version"] == "1"
        metrics = requests.get(f"{url}/metrics").text
    assert set(counts) == {"1", "2"}  # the shadow never answers
    assert 70 <= counts["2"] <= 130  # 25% of 400 (binomial sd ~9)
    log.close()
    records = list(read_predictions(tmp_path / "shadow"))
    assert len(records) == 400  # the pinned request is not mirrored
    assert {r["shadow"]["version"] for r in records} == {3}
    assert {r["served"]["version"] for r in records} == {1, 2}
    first = next(r for r in records if r["served"]["version"] == 1)
    assert set(first["shadow"]["outputs"]) == {"label", "probabilities"}
    # v1 is the uninformative model: its answer and the shadow's differ
    assert (
        first["served"]["outputs"]["probabilities"] != first["shadow"]["outputs"]["probabilities"]
    )
    assert f'couturier_routed_total{{model="{NAME}",role="canary"}} {counts["2"]}.0' in metrics
    assert f'couturier_shadow_total{{model="{NAME}",outcome="ok"}} 400.0' in metrics


def test_a_failing_shadow_fails_no_request(three: Settings, world: World, tmp_path: Path) -> None:
    registry = ModelRegistry(three)
    try:
        repository = ModelRepository.from_registry(registry)
        good = registry.load(NAME, 2)
    finally:
        registry.close()
    shadow = LoadedVersion.from_onnx(NAME, 2, good.onnx_model, good.spec, 1)

    class Broken:
        def run(self, *_: object) -> list[np.ndarray]:
            raise RuntimeError("kernel failed")

    shadow.session = Broken()
    repository.set_role(NAME, "shadow", shadow)

    class Collected:  # any PredictionSink will do: here, a list
        def __init__(self) -> None:
            self.records: list[dict[str, Any]] = []

        async def append(self, record: dict[str, Any]) -> None:
            self.records.append(record)

        def close(self) -> None:
            pass

    log = Collected()
    assert isinstance(log, PredictionSink)
    with serve(create_app(repository, shadow_log=log, follow=False)) as url:
        assert set(_version_counts(url, world, 20)) == {"1"}
        deadline = time.time() + 10
        while 'outcome="failed"} 20.0' not in requests.get(f"{url}/metrics").text:
            assert time.time() < deadline
            time.sleep(0.05)
    log.close()
    assert all(
        "kernel failed" in r["shadow"]["error"] for r in read_predictions(tmp_path / "shadow")
    )


def _admin(
    url: str, method: str, path: str, token: str | None = TOKEN, **kw: object
) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.request(method, f"{url}/admin{path}", headers=headers, timeout=60, **kw)  # type: ignore[arg-type]


def test_admin_routes_need_the_token(three: Settings) -> None:
    registry = ModelRegistry(three)
    try:
        repository = ModelRepository.from_registry(registry)
    finally:
        registry.close()
    with serve(create_app(repository, admin_token=TOKEN, follow=False)) as url:
        assert _admin(url, "GET", f"/models/{NAME}", token=None).status_code == 401
        wrong = _admin(url, "GET", f"/models/{NAME}", token="guess")
        assert wrong.status_code == 401 and "Authorization: Bearer" in wrong.json()["detail"]
        assert _admin(url, "GET", f"/models/{NAME}").status_code == 200
    with serve(create_app(repository, follow=False)) as url:  # no token configured: off
        off = _admin(url, "GET", f"/models/{NAME}")
        assert off.status_code == 403 and "COUTURIER_ADMIN_TOKEN" in off.json()["detail"]


def test_admin_changes_batching_and_moves_aliases_through_the_registry(
    three: Settings, world: World
) -> None:
    registry = ModelRegistry(three)
    try:
        repository = ModelRepository.from_registry(registry)
    finally:
        registry.close()
    app = create_app(
        repository,
        registry=lambda: ModelRegistry(three),
        follow=False,  # what changes here, changes through the admin routes alone
        admin_token=TOKEN,
        batching=Batching(max_batch=64, inline_below_ms=0.0),
    )
    with serve(app) as url:
        assert _version_counts(url, world, 2) == {"1": 2}  # creates the batcher
        changed = _admin(url, "PUT", f"/models/{NAME}/batching", json={"max_batch": 8})
        assert changed.status_code == 200 and changed.json()["batching"]["max_batch"] == 8
        batcher = repository.get(NAME).batcher
        assert batcher is not None
        assert batcher.max_batch == 8  # the live batcher changed
        bad = _admin(url, "PUT", f"/models/{NAME}/batching", json={"max_batch": 0})
        assert bad.status_code == 422 and bad.json()["field"] == "max_batch"

        moved = _admin(
            url, "PUT", f"/models/{NAME}/aliases/champion", json={"version": 2, "reason": "better"}
        )
        assert moved.status_code == 200, moved.text
        assert moved.json()["default_version"] == 2 and moved.json()["problem"] is None
        assert set(_version_counts(url, world, 5)) == {"2"}
        canary = _admin(
            url, "PUT", f"/models/{NAME}/aliases/canary", json={"version": 3, "reason": "try"}
        )
        assert canary.json()["roles"]["canary"] == 3
        ended = _admin(
            url, "PUT", f"/models/{NAME}/aliases/canary", json={"version": None, "reason": "done"}
        )
        assert ended.json()["roles"]["canary"] is None
        # v3 was judged against v1, not the champion v2: the registry's gate refuses it
        refused = _admin(
            url, "PUT", f"/models/{NAME}/aliases/champion", json={"version": 3, "reason": "x"}
        )
        assert refused.status_code == 409 and "re-evaluate" in refused.json()["detail"]
        no_reason = _admin(url, "PUT", f"/models/{NAME}/aliases/champion", json={"version": 1})
        assert no_reason.status_code == 422
    registry = ModelRegistry(three)
    try:
        history = registry.history(NAME)
    finally:
        registry.close()
    assert [(e.alias, e.to_version, e.actor) for e in history][-3:] == [
        ("champion", 2, "admin-api"),
        ("canary", 3, "admin-api"),
        ("canary", None, "admin-api"),
    ]


def test_canary_and_shadow_moves_are_followed(three: Settings, world: World) -> None:
    registry = ModelRegistry(three)
    try:
        repository = ModelRepository.from_registry(registry)
        app = create_app(
            repository,
            registry=lambda: ModelRegistry(three),
            follow_interval_s=0.05,
            routing=Routing(canary_share=1.0),  # every unversioned request to the canary
        )
        with serve(app) as url:
            registry.promote(NAME, 2, "canary", actor="test", reason="try")
            deadline = time.time() + 20
            while _version_counts(url, world, 1) != {"2": 1}:
                assert time.time() < deadline, "the canary was never followed"
                time.sleep(0.05)
            registry.clear_alias(NAME, "canary", actor="test", reason="done")
            while _version_counts(url, world, 1) != {"1": 1}:
                assert time.time() < deadline, "the canary's end was never followed"
                time.sleep(0.05)
    finally:
        registry.close()
    assert [(s["role"], s["version"], s["ok"]) for s in repository.swaps] == [
        ("canary", 2, True),
        ("canary", None, True),
    ]
