"""The Ray Serve tier on a local Ray cluster: the same answers as ONNX Runtime, batched.

One Ray instance for the module (2 CPUs, no dashboard), the tier on a free loopback port with
one replica (autoscaling 1 -> N -> 1 under a load ramp is ``benchmarks/production.py``'s). The
client is the authentication service's own (``RemoteModel``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import requests

from couturier.registry import session
from couturier.serving import RemoteModel, RemoteModelError
from tests.support.http import infer_body
from tests.support.registry import World, package, world
from tests.support.servers import free_port
from tests.support.wait import wait_for

pytestmark = pytest.mark.integration
__all__ = ["world"]  # the fixture, imported for this module

NAME, VERSION = "toy", 3


@pytest.fixture(scope="module")
def tier(world: World) -> Iterator[tuple[str, Any]]:
    import ray
    from ray import serve

    from couturier.serving.ray_tier import application

    onnx_model = package(NAME, world.model(), world).onnx_model
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        object_store_memory=200 * 1024 * 1024,
    )
    try:
        port = free_port()
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        one = {"min_replicas": 1, "max_replicas": 1}
        serve.run(application(NAME, VERSION, onnx_model, autoscaling=one), name=NAME)
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: _ready(url), "the Ray Serve proxy's route", 60, every_s=0.2)
        yield url, session(onnx_model)
    finally:
        serve.shutdown()  # type: ignore[no-untyped-call]
        ray.shutdown()


def _ready(url: str) -> bool:
    try:
        return requests.get(f"{url}/v2/health/ready", timeout=5).status_code == 200
    except requests.RequestException:
        return False


def test_the_tier_answers_what_onnx_runtime_answers(world: World, tier: tuple[str, Any]) -> None:
    url, reference = tier
    x = world.x[:5]
    (expected,) = reference.run(["probabilities"], {"X": x})
    got = RemoteModel(NAME, url, timeout_s=10).infer({"X": x}, ["probabilities"], version=VERSION)
    np.testing.assert_allclose(got.outputs["probabilities"], expected, rtol=1e-6)
    assert got.model_version == str(VERSION)
    answer = requests.post(f"{url}/v2/models/{NAME}/infer", json=infer_body(x), timeout=10)
    assert answer.status_code == 200, answer.text
    (out,) = [o for o in answer.json()["outputs"] if o["name"] == "probabilities"]
    np.testing.assert_allclose(np.reshape(out["data"], out["shape"]), expected, rtol=1e-6)
    assert requests.get(f"{url}/v2/health/ready", timeout=10).status_code == 200


def test_requests_arriving_together_run_as_one_batch_and_each_gets_its_own_rows(
    world: World, tier: tuple[str, Any]
) -> None:
    from ray import serve

    url, reference = tier
    (expected,) = reference.run(["probabilities"], {"X": world.x[:24]})
    remote = RemoteModel(NAME, url, timeout_s=10.0)
    got: dict[int, np.ndarray] = {}
    failed: list[BaseException] = []
    start = threading.Barrier(12)

    def call(i: int) -> None:  # request i sends rows 2i and 2i+1
        start.wait()
        rows = world.x[2 * i : 2 * i + 2]
        try:
            got[i] = remote.infer({"X": rows}, ["probabilities"]).outputs["probabilities"]
        except BaseException as exc:
            failed.append(exc)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert failed == []
    for i in range(12):
        np.testing.assert_allclose(got[i], expected[2 * i : 2 * i + 2], rtol=1e-6)
    sizes = serve.get_app_handle(NAME).batch_sizes.remote().result()
    assert max(sizes) > 1  # at least one session call served several requests


def test_another_version_or_model_is_404_and_bad_input_is_422_naming_the_field(
    world: World, tier: tuple[str, Any]
) -> None:
    url, _ = tier
    with pytest.raises(RemoteModelError, match="answered HTTP 404"):
        RemoteModel(NAME, url, timeout_s=10).infer(
            {"X": world.x[:1]}, ["probabilities"], version=VERSION + 1
        )
    other = requests.post(f"{url}/v2/models/other/infer", json=infer_body(world.x[:1]), timeout=10)
    assert other.status_code == 404 and f"serves {NAME} v{VERSION}" in other.json()["detail"]
    bad = infer_body(world.x[:1])
    bad["inputs"][0]["shape"] = [1, 5]
    refused = requests.post(f"{url}/v2/models/{NAME}/infer", json=bad, timeout=10)
    assert refused.status_code == 422, refused.text
    assert refused.json()["field"].startswith("inputs[0]")
