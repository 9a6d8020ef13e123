"""The domain seam: a domain's routes follow the registry exactly like ``/v2`` (503 before a
champion, champion and canary moves swapped under load with no failed request), a domain that
fails to mount or a champion that fails to load leaves the server up, and ``check_domain``
fails the domains that break its rules."""

from __future__ import annotations

import dataclasses
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
from fastapi import APIRouter

from couturier.conformance import DomainConformanceError, check_domain
from couturier.registry import ModelRegistry, RegisteredVersion, session
from couturier.serving import ModelRepository, Routing, ServiceContext, create_app
from couturier.settings import Settings
from tests.support.domain import TOY_MODEL, toy_domain
from tests.support.http import infer_body, serve
from tests.support.registry import World, champion_and_challenger, register
from tests.support.wait import wait_for


class _ListSink:
    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    async def append(self, record: dict[str, Any]) -> None:
        self.records.append(record)

    def close(self) -> None:
        return None


def _app(settings: Settings, domains: list[Any], routing: Routing | None = None) -> Any:
    registry = ModelRegistry(settings)
    try:
        repository = ModelRepository.from_registry(registry)
    finally:
        registry.close()
    sink = _ListSink()
    return create_app(
        repository,
        expected=repository.names(),
        registry=lambda: ModelRegistry(settings),
        follow_interval_s=0.05,
        domains=domains,
        settings=settings,
        sinks=lambda stream: sink,
        routing=routing,
    )


def _score(url: str, x: np.ndarray) -> requests.Response:
    return requests.post(f"{url}/v1/toy/score", json={"x": x.tolist()}, timeout=30)


def _champion(settings: Settings, name: str, world: World) -> RegisteredVersion:
    """Register an informative toy model as ``name`` and make it champion."""
    registry = ModelRegistry(settings)
    try:
        version = register(registry, name, world.model(), world)
        registry.promote(name, version.version, "champion", actor="test", reason="first")
    finally:
        registry.close()
    return version


def _expected(registry: ModelRegistry, version: int, x: np.ndarray) -> np.ndarray:
    (p,) = session(registry.load(TOY_MODEL, version).onnx_model).run(["probabilities"], {"X": x})
    return np.asarray(p[:, 1])


def test_domain_routes_answer_503_until_a_champion_exists_then_follow_it(
    world: World, tmp_path: Path
) -> None:
    settings = Settings(home=tmp_path / "home")
    x = world.x[:3]
    with serve(_app(settings, [toy_domain()])) as url:
        r = _score(url, x)
        assert r.status_code == 503, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert TOY_MODEL in r.json()["detail"] and "promote" in r.json()["detail"]
        assert requests.get(f"{url}/v2/health/ready").status_code == 200  # nothing is broken
        _champion(settings, TOY_MODEL, world)
        wait_for(lambda: _score(url, x).status_code == 200, "the route never followed", 20.0, 0.05)
        assert _score(url, x).json()["version"] == 1


def test_ten_champion_swaps_under_load_fail_no_request_and_mix_no_versions(
    world: World, tmp_path: Path
) -> None:
    settings = Settings(home=tmp_path / "home")
    registry = ModelRegistry(settings)
    _, v2 = champion_and_challenger(registry, TOY_MODEL, world)
    x = world.x[:5]
    expected = {v: _expected(registry, v, x) for v in (1, 2)}
    answers: list[dict[str, Any]] = []
    failures: list[str] = []
    stop = threading.Event()
    try:
        with serve(_app(settings, [toy_domain()])) as url:

            def load() -> None:
                while not stop.is_set():
                    r = _score(url, x)
                    if r.status_code != 200:
                        failures.append(f"{r.status_code} {r.text[:200]}")
                    else:
                        answers.append(r.json())

            threads = [threading.Thread(target=load) for _ in range(3)]
            for t in threads:
                t.start()
            for move in range(10):
                if move % 2 == 0:
                    registry.promote(TOY_MODEL, v2.version, "champion", actor="t", reason="up")
                    want = 2
                else:
                    registry.rollback(TOY_MODEL, actor="t", reason="down")
                    want = 1
                seen = len(answers)

                def followed(want: int = want, seen: int = seen) -> bool:
                    return any(a["version"] == want for a in answers[seen:])

                wait_for(followed, f"move {move} to v{want} was never followed", 20.0, 0.05)
            stop.set()
            for t in threads:
                t.join(30)
    finally:
        stop.set()
        registry.close()
    assert failures == []
    assert {a["version"] for a in answers} == {1, 2}
    for a in answers:  # each answer's numbers come from the version it names
        np.testing.assert_allclose(a["p"], expected[a["version"]], rtol=1e-5, atol=1e-6)


def test_a_canary_answers_its_share_and_names_itself(world: World, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    registry = ModelRegistry(settings)
    try:
        _, v2 = champion_and_challenger(registry, TOY_MODEL, world)
        registry.promote(TOY_MODEL, v2.version, "canary", actor="test", reason="try it")
    finally:
        registry.close()
    with serve(_app(settings, [toy_domain()], Routing(canary_share=0.3, seed=1))) as url:
        roles: Counter[str] = Counter()
        for _ in range(200):
            a = _score(url, world.x[:1]).json()
            assert a["version"] == (2 if a["role"] == "canary" else 1)
            roles[a["role"]] += 1
    assert 0.2 < roles["canary"] / 200 < 0.4


def _broken(context: ServiceContext) -> APIRouter:
    raise RuntimeError("the broken domain cannot start")


def test_a_domain_that_fails_to_mount_leaves_the_server_and_the_others_up(
    world: World, tmp_path: Path
) -> None:
    settings = Settings(home=tmp_path / "home")
    _champion(settings, TOY_MODEL, world)
    app = _app(settings, [toy_domain(_broken, name="broken"), toy_domain()])
    with serve(app) as url:
        ready = requests.get(f"{url}/v2/health/ready")
        assert ready.status_code == 503
        assert "cannot start" in ready.json()["problems"]["domain:broken"]
        assert _score(url, world.x[:2]).status_code == 200  # the other domain serves
        infer = requests.post(
            f"{url}/v2/models/{TOY_MODEL}/infer", json=infer_body(world.x[:2]), timeout=30
        )
        assert infer.status_code == 200  # and so do the OIP routes


def test_a_champion_with_corrupt_artifacts_leaves_the_server_up_saying_why(
    world: World, tmp_path: Path
) -> None:
    settings = Settings(home=tmp_path / "home")
    _champion(settings, TOY_MODEL, world)
    bad = _champion(settings, "other", world)
    run_artifacts = settings.paths.mlflow / "artifacts"
    (onnx,) = [p for p in run_artifacts.rglob("model.onnx") if bad.run_id in str(p)]
    onnx.write_bytes(b"this is not an onnx model")
    with serve(_app(settings, [toy_domain()])) as url:
        ready = requests.get(f"{url}/v2/health/ready")
        assert ready.status_code == 503
        assert "other v1" in ready.json()["problems"]["other"]
        assert _score(url, world.x[:2]).status_code == 200
        infer = requests.post(
            f"{url}/v2/models/{TOY_MODEL}/infer", json=infer_body(world.x[:2]), timeout=30
        )
        assert infer.status_code == 200


def test_the_toy_domain_conforms() -> None:
    check_domain(toy_domain(), installed=False)


def _outside_v1(context: ServiceContext) -> APIRouter:
    api = APIRouter()
    api.add_api_route("/score", lambda: {}, methods=["POST"], summary="score")
    return api


def _fails_without_champion(context: ServiceContext) -> APIRouter:
    context.follow(TOY_MODEL, lambda registry, version: None)
    api = APIRouter()

    def crash() -> None:
        raise RuntimeError("no model, no answer")

    api.add_api_route("/v1/toy/crash", crash, methods=["POST"], summary="crash")
    return api


def _needs_a_champion_to_mount(context: ServiceContext) -> APIRouter:
    context.registry.load(TOY_MODEL, "champion")
    return APIRouter()


@pytest.mark.parametrize(
    ("service", "words"),
    [
        (_broken, "mounting with no champion raised RuntimeError"),
        (_needs_a_champion_to_mount, "mounting with no champion raised NotFoundError"),
        (_outside_v1, "not under /v1/"),
        (_fails_without_champion, "answered 500"),
    ],
)
def test_check_domain_fails_a_domain_that_breaks_a_rule(service: Any, words: str) -> None:
    with pytest.raises(DomainConformanceError) as err:
        check_domain(toy_domain(service), installed=False)
    assert err.value.check == "service" and words in str(err.value)


def _hides_a_route(context: ServiceContext) -> APIRouter:
    context.follow(TOY_MODEL, lambda registry, version: None)
    inner = APIRouter()
    inner.add_api_route("/anything", lambda: {}, methods=["GET"], summary="hidden")
    api = APIRouter()
    api.add_api_route("/v1/toy/ok", lambda: {}, methods=["GET"], summary="ok")
    api.include_router(inner)  # /anything: outside /v1, but a check cannot see it
    return api


def test_check_domain_fails_a_service_that_includes_a_router() -> None:
    with pytest.raises(DomainConformanceError) as err:
        check_domain(toy_domain(_hides_a_route), installed=False)
    assert err.value.check == "service" and "not a plain route" in str(err.value)


def _pages_at(*paths: str) -> Any:
    def pages(context: ServiceContext) -> APIRouter:
        api = APIRouter()
        for path in paths:
            api.add_api_route(path, lambda: "<p>hi</p>", methods=["GET"])
        return api

    return pages


@pytest.mark.parametrize(
    ("paths", "words"),
    [
        (("/v1/toy/page",), "is the API's or the platform's"),
        (("/metrics/toy",), "is the API's or the platform's"),
        (("/toy", "/other"), "must share one prefix"),
    ],
)
def test_check_domain_fails_pages_that_break_a_rule(paths: tuple[str, ...], words: str) -> None:
    domain = dataclasses.replace(toy_domain(), pages=_pages_at(*paths))
    with pytest.raises(DomainConformanceError) as err:
        check_domain(domain, installed=False)
    assert err.value.check == "pages" and words in str(err.value)


def test_pages_mount_beside_the_service_under_their_own_prefix(tmp_path: Path) -> None:
    domain = dataclasses.replace(toy_domain(), pages=_pages_at("/toy", "/toy/queue"))
    check_domain(domain, installed=False)
    settings = Settings(home=tmp_path)
    app = create_app(
        ModelRepository(),
        registry=lambda: ModelRegistry(settings),
        follow=False,
        domains=[domain],
        settings=settings,
    )
    with serve(app) as url:
        assert requests.get(f"{url}/toy/queue", timeout=10).text == '"<p>hi</p>"'
        assert requests.post(f"{url}/v1/toy/score", json={}, timeout=10).status_code == 503


def test_check_domain_fails_a_domain_that_is_not_installed() -> None:
    with pytest.raises(DomainConformanceError) as err:
        check_domain(toy_domain())
    assert err.value.check == "declaration" and "entry points" in str(err.value)


def test_a_promoted_version_that_cannot_load_never_answers_and_ready_says_why(
    world: World, tmp_path: Path
) -> None:
    settings = Settings(home=tmp_path / "home")
    registry = ModelRegistry(settings)
    try:
        _, v2 = champion_and_challenger(registry, TOY_MODEL, world)
        artifacts = settings.paths.mlflow / "artifacts"
        (onnx,) = [p for p in artifacts.rglob("model.onnx") if v2.run_id in str(p)]
        onnx.write_bytes(b"truncated in transit")
        with serve(_app(settings, [toy_domain()])) as url:
            assert _score(url, world.x[:2]).json()["version"] == 1
            registry.promote(TOY_MODEL, v2.version, "champion", actor="test", reason="better")

            def refused() -> bool:
                r = requests.get(f"{url}/v2/health/ready", timeout=10)
                return r.status_code == 503 and "v2" in r.json()["problems"].get(TOY_MODEL, "")

            wait_for(refused, "the failed swap never showed in readiness", 20.0, 0.05)
            for _ in range(5):  # the last good version keeps answering, without an error
                answer = _score(url, world.x[:2])
                assert answer.status_code == 200 and answer.json()["version"] == 1
    finally:
        registry.close()
