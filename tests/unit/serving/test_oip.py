"""Open Inference Protocol conformance over real HTTP (uvicorn in a thread, requests)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from couturier.registry import ModelRegistry
from couturier.registry._packaging import session
from couturier.serving import LoadedVersion, ModelRepository, create_app
from couturier.settings import Settings
from tests.support.http import infer_body, serve
from tests.support.registry import World, champion_and_challenger, register

NAME = "toy"


@pytest.fixture(scope="module")
def served(world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, bytes]]:
    """Version 1 and 2 of a registered model, the champion (v2) served by default."""
    registry = ModelRegistry(Settings(home=tmp_path_factory.mktemp("serving")))
    _, v2 = champion_and_challenger(registry, NAME, world)
    registry.promote(NAME, v2.version, "champion", actor="test", reason="better")
    repository = ModelRepository.from_registry(registry)
    first = registry.load(NAME, 1)
    repository.add(LoadedVersion.from_onnx(NAME, 1, first.onnx_model, first.spec, 1))
    champion = registry.load(NAME, "champion")
    repository.add(  # the champion stays the default
        LoadedVersion.from_onnx(NAME, 2, champion.onnx_model, champion.spec, 1)
    )
    registry.close()
    with serve(create_app(repository, expected=[NAME])) as url:
        yield url, champion.onnx_model


def test_health_and_server_metadata(served: tuple[str, bytes]) -> None:
    url, _ = served
    assert requests.get(f"{url}/v2/health/live").json() == {"live": True}
    ready = requests.get(f"{url}/v2/health/ready")
    assert ready.status_code == 200 and ready.json() == {"ready": True}
    meta = requests.get(f"{url}/v2").json()
    assert meta["name"] == "couturier" and "version" in meta and "extensions" in meta


def test_model_metadata_declares_inputs_and_outputs(served: tuple[str, bytes]) -> None:
    url, _ = served
    meta = requests.get(f"{url}/v2/models/{NAME}").json()
    assert meta["name"] == NAME and meta["versions"] == ["2"]
    assert meta["platform"] == "onnxruntime_onnx"
    assert meta["inputs"] == [{"name": "X", "datatype": "FP32", "shape": [-1, 4]}]
    assert {o["name"] for o in meta["outputs"]} == {"label", "probabilities"}
    assert requests.get(f"{url}/v2/models/{NAME}/versions/1").json()["versions"] == ["1"]
    assert requests.get(f"{url}/v2/models/{NAME}/ready").json() == {"name": NAME, "ready": True}
    ready = requests.get(f"{url}/v2/models/{NAME}/versions/1/ready").json()
    assert ready == {"name": NAME, "version": "1", "ready": True}


def test_infer_returns_what_onnx_runtime_computes(served: tuple[str, bytes], world: World) -> None:
    url, onnx_model = served
    x = world.x[:5]
    r = requests.post(
        f"{url}/v2/models/{NAME}/infer",
        json=infer_body(x, id="req-1", outputs=[{"name": "probabilities"}]),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model_name"] == NAME and body["model_version"] == "2" and body["id"] == "req-1"
    (out,) = body["outputs"]
    assert out["name"] == "probabilities" and out["datatype"] == "FP32" and out["shape"] == [5, 2]
    (want,) = session(onnx_model).run(["probabilities"], {"X": x})
    assert np.allclose(np.asarray(out["data"]).reshape(5, 2), want, atol=1e-6)
    # nested data (row-major) is accepted too; without "outputs", every output comes back
    nested = {"inputs": [{"name": "X", "shape": [5, 4], "datatype": "FP32", "data": x.tolist()}]}
    both = requests.post(f"{url}/v2/models/{NAME}/infer", json=nested).json()["outputs"]
    assert {o["name"] for o in both} == {"label", "probabilities"}
    assert next(o for o in both if o["name"] == "label")["datatype"] == "INT64"


def test_a_version_path_reaches_that_version(served: tuple[str, bytes], world: World) -> None:
    url, _ = served
    x = world.x[:50]
    v1 = requests.post(f"{url}/v2/models/{NAME}/versions/1/infer", json=infer_body(x)).json()
    v2 = requests.post(f"{url}/v2/models/{NAME}/versions/2/infer", json=infer_body(x)).json()
    assert v1["model_version"] == "1" and v2["model_version"] == "2"
    p1 = next(o for o in v1["outputs"] if o["name"] == "probabilities")["data"]
    p2 = next(o for o in v2["outputs"] if o["name"] == "probabilities")["data"]
    assert not np.allclose(p1, p2)  # two different models answered


@pytest.mark.parametrize(
    ("path", "body", "status", "field", "words"),
    [
        ("/v2/models/nope/infer", None, 404, None, "no model 'nope'"),
        (f"/v2/models/{NAME}/versions/9/infer", None, 404, None, "version 9"),
        (f"/v2/models/{NAME}/versions/x/infer", None, 404, None, "not a number"),
        (
            f"/v2/models/{NAME}/infer",
            {"inputs": [{"name": "X", "shape": [1, 4], "datatype": "INT64", "data": [1, 2, 3, 4]}]},
            422,
            "inputs[0].datatype",
            "the model takes FP32",
        ),
        (
            f"/v2/models/{NAME}/infer",
            {"inputs": [{"name": "X", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}]},
            422,
            "inputs[0].shape",
            "the model takes [-1, 4]",
        ),
        (
            f"/v2/models/{NAME}/infer",
            {"inputs": [{"name": "X", "shape": [2, 4], "datatype": "FP32", "data": [1, 2, 3]}]},
            422,
            "inputs[0].data",
            "needs 8",
        ),
        (
            f"/v2/models/{NAME}/infer",
            {"inputs": [{"name": "X", "shape": [1, 4], "datatype": "FP32", "data": ["a"] * 4}]},
            422,
            "inputs[0].data",
            "does not hold FP32",
        ),
        (
            f"/v2/models/{NAME}/infer",
            {"inputs": [{"name": "Y", "shape": [1, 4], "datatype": "FP32", "data": [1] * 4}]},
            422,
            "inputs",
            "needs input 'X'",
        ),
        (
            f"/v2/models/{NAME}/infer",
            {
                "inputs": [{"name": "X", "shape": [1, 4], "datatype": "FP32", "data": [1] * 4}],
                "outputs": [{"name": "logits"}],
            },
            422,
            "outputs",
            "no output 'logits'",
        ),
        (
            f"/v2/models/{NAME}/infer",
            {"inputs": [{"name": "X", "shape": [1, 4], "datatype": "FP9", "data": [1] * 4}]},
            422,
            "inputs[0].datatype",
            "not supported",
        ),
        (f"/v2/models/{NAME}/infer", {"inputs": "nope"}, 422, "inputs", "see the request schema"),
        (f"/v2/models/{NAME}/infer", {"wrong": 1}, 422, None, "see the request schema"),
    ],
)
def test_bad_requests_get_a_problem_naming_the_field_and_rule(
    served: tuple[str, bytes],
    path: str,
    body: dict[str, Any] | None,
    status: int,
    field: str | None,
    words: str,
) -> None:
    url, _ = served
    good: dict[str, Any] = {
        "inputs": [{"name": "X", "shape": [1, 4], "datatype": "FP32", "data": [0] * 4}]
    }
    r = requests.post(f"{url}{path}", json=body if body is not None else good)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    assert problem["status"] == status and words in problem["detail"]
    assert problem["error"] == problem["detail"]  # what KServe and Triton clients read
    if field is not None:
        assert problem["field"] == field


def test_malformed_json_and_infinity_are_refused(served: tuple[str, bytes]) -> None:
    url, _ = served
    r = requests.post(
        f"{url}/v2/models/{NAME}/infer",
        data=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem")
    inf = (
        '{"inputs": [{"name": "X", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 1e999]}]}'
    )
    r = requests.post(
        f"{url}/v2/models/{NAME}/infer", data=inf, headers={"content-type": "application/json"}
    )
    assert r.status_code == 422 and "infinity" in r.json()["detail"]


def test_missing_values_travel_as_null(served: tuple[str, bytes]) -> None:
    url, _ = served
    body: dict[str, Any] = {
        "inputs": [{"name": "X", "shape": [1, 4], "datatype": "FP32", "data": [1, None, 0, 0]}]
    }
    r = requests.post(f"{url}/v2/models/{NAME}/infer", json=body)
    # a logistic regression propagates NaN: the answer says so with null, never a 500
    assert r.status_code == 200
    probabilities = next(o for o in r.json()["outputs"] if o["name"] == "probabilities")
    assert probabilities["data"] == [None, None]


def test_metrics_count_requests_batches_and_loaded_versions(
    served: tuple[str, bytes], world: World
) -> None:
    url, _ = served
    requests.post(f"{url}/v2/models/{NAME}/infer", json=infer_body(world.x[:7]))
    text = requests.get(f"{url}/metrics").text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    requests_total = {
        (s.labels["route"], s.labels["model"], s.labels["code"]): s.value
        for s in families["couturier_requests"].samples
        if s.name == "couturier_requests_total"
    }
    assert requests_total[("/v2/models/{name}/infer", NAME, "200")] >= 1
    batch = [s for s in families["couturier_batch_rows"].samples if s.name.endswith("_sum")]
    assert batch and batch[0].value >= 7
    loaded = families["couturier_model_loaded_version"].samples
    assert [(s.labels["model"], s.value) for s in loaded] == [(NAME, 2.0)]
    assert "couturier_request_seconds_bucket" in text


def test_not_ready_until_every_expected_model_is_loaded(tmp_path: Path) -> None:
    with serve(create_app(ModelRepository(), expected=["authentication"])) as url:
        r = requests.get(f"{url}/v2/health/ready")
        assert r.status_code == 503
        assert r.json() == {
            "ready": False,
            "problems": {"authentication": "authentication is not loaded"},
        }
        assert requests.get(f"{url}/v2/health/live").status_code == 200


def _one_model(world: World, tmp_path: Path) -> ModelRepository:
    """A repository holding one freshly registered version of the toy model."""
    registry = ModelRegistry(Settings(home=tmp_path / "home"))
    try:
        v = register(registry, NAME, world.model(), world)
        loaded = registry.load(NAME, v.version)
    finally:
        registry.close()
    repository = ModelRepository()
    repository.add(LoadedVersion.from_onnx(NAME, v.version, loaded.onnx_model, loaded.spec, 1))
    return repository


def test_a_full_queue_answers_503_with_retry_after_at_once(world: World, tmp_path: Path) -> None:
    from couturier.serving import Batching

    repository = _one_model(world, tmp_path)
    queued = Batching(max_batch=8, max_queue=0, inline_below_ms=0.0)  # never inline: queued
    app = create_app(repository, batching=queued)
    with serve(app) as url:
        r = requests.post(f"{url}/v2/models/{NAME}/infer", json=infer_body(world.x[:1]))
        assert r.status_code == 503 and r.headers["Retry-After"] == "1"
        assert "retry shortly" in r.json()["detail"]
        full = requests.post(f"{url}/v2/models/{NAME}/infer", json=infer_body(world.x[:8]))
        assert full.status_code == 200  # a full batch bypasses the queue
        text = requests.get(f"{url}/metrics").text
        assert f'couturier_shed_total{{model="{NAME}"}} 1.0' in text


def test_tritonclient_speaks_to_the_server_with_its_defaults(
    served: tuple[str, bytes], world: World
) -> None:
    """Triton's own HTTP client, unchanged: binary tensors in and out (its defaults), then JSON."""
    import tritonclient.http as triton
    from tritonclient.utils import InferenceServerException

    url, onnx_model = served
    client = triton.InferenceServerClient(url.removeprefix("http://"))
    try:
        assert client.is_server_live() and client.is_server_ready()
        assert client.is_model_ready(NAME)
        assert client.get_model_metadata(NAME)["inputs"][0]["name"] == "X"
        x = world.x[:6].astype(np.float32)
        (want,) = session(onnx_model).run(["probabilities"], {"X": x})
        binary = triton.InferInput("X", list(x.shape), "FP32")
        binary.set_data_from_numpy(x)  # binary_data=True: the extension
        result = client.infer(NAME, [binary])  # no outputs named: all of them, binary
        assert np.allclose(result.as_numpy("probabilities"), want, atol=1e-6)
        assert result.as_numpy("label").dtype == np.int64
        as_json = triton.InferInput("X", list(x.shape), "FP32")
        as_json.set_data_from_numpy(x, binary_data=False)
        out = triton.InferRequestedOutput("probabilities", binary_data=False)
        result = client.infer(NAME, [as_json], model_version="1", outputs=[out])
        assert result.get_response()["model_version"] == "1"
        assert result.as_numpy("probabilities").shape == (6, 2)
        with pytest.raises(InferenceServerException, match="no model 'nope'"):
            client.infer("nope", [binary])
    finally:
        client.close()


def _binary_request(
    x: np.ndarray, size: int | None = None, extra: bytes = b""
) -> tuple[bytes, str]:
    raw = x.astype("<f4").tobytes()
    head = json.dumps(
        {
            "inputs": [
                {
                    "name": "X",
                    "shape": list(x.shape),
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": len(raw) if size is None else size},
                }
            ],
            "outputs": [{"name": "probabilities", "parameters": {"binary_data": True}}],
        }
    ).encode()
    return head + raw + extra, str(len(head))


def test_binary_tensors_are_read_and_written(served: tuple[str, bytes], world: World) -> None:
    url, onnx_model = served
    x = world.x[:3].astype(np.float32)
    body, head = _binary_request(x)
    r = requests.post(
        f"{url}/v2/models/{NAME}/infer",
        data=body,
        headers={"Inference-Header-Content-Length": head},
    )
    assert r.status_code == 200, r.text
    n = int(r.headers["Inference-Header-Content-Length"])
    described = json.loads(r.content[:n])["outputs"][0]
    assert described["parameters"]["binary_data_size"] == 3 * 2 * 4 and "data" not in described
    (want,) = session(onnx_model).run(["probabilities"], {"X": x})
    assert np.array_equal(np.frombuffer(r.content[n:], "<f4").reshape(3, 2), want)


@pytest.mark.parametrize(
    ("size", "extra", "head", "words"),
    [
        (47, b"", None, "needs 48"),
        (400, b"", None, "only 48 binary bytes are left"),
        (None, b"\0\0\0\0", None, "4 binary bytes follow the JSON part"),
        (None, b"", "99999", "no larger than the body"),
        (None, b"", "ten", "whole number"),
    ],
)
def test_bad_binary_requests_are_refused_with_the_rule(
    served: tuple[str, bytes],
    world: World,
    size: int | None,
    extra: bytes,
    head: str | None,
    words: str,
) -> None:
    url, _ = served
    body, json_size = _binary_request(world.x[:3], size, extra)
    r = requests.post(
        f"{url}/v2/models/{NAME}/infer",
        data=body,
        headers={"Inference-Header-Content-Length": head or json_size},
    )
    assert r.status_code == 422, r.text
    assert words in r.json()["detail"]


def test_compressed_and_oversized_bodies(served: tuple[str, bytes], world: World) -> None:
    import gzip

    url, _ = served
    body = json.dumps(infer_body(world.x[:2])).encode()
    zipped = requests.post(
        f"{url}/v2/models/{NAME}/infer",
        data=gzip.compress(body),
        headers={"Content-Encoding": "gzip"},
    )
    assert zipped.status_code == 200 and zipped.json()["outputs"][0]["shape"][0] == 2
    broken = requests.post(
        f"{url}/v2/models/{NAME}/infer", data=b"not gzip", headers={"Content-Encoding": "gzip"}
    )
    assert broken.status_code == 422 and "not valid gzip" in broken.json()["detail"]
    brotli = requests.post(
        f"{url}/v2/models/{NAME}/infer", data=body, headers={"Content-Encoding": "br"}
    )
    assert brotli.status_code == 422 and "send identity, gzip or deflate" in brotli.json()["detail"]


def test_bodies_over_the_limit_and_unknown_routes_get_problems(
    world: World, tmp_path: Path
) -> None:
    import gzip

    repository = _one_model(world, tmp_path)
    app = create_app(repository, max_body_bytes=1000, admin_token="t")
    body = json.dumps(infer_body(world.x[:40])).encode()
    assert len(body) > 1000
    with serve(app) as url:
        big = requests.post(f"{url}/v2/models/{NAME}/infer", data=body)
        assert big.status_code == 413 and "the limit is 1,000" in big.json()["detail"]
        bomb = requests.post(
            f"{url}/v2/models/{NAME}/infer",
            data=gzip.compress(b" " * 10_000),
            headers={"Content-Encoding": "gzip"},
        )
        assert bomb.status_code == 413  # the limit holds after decompression too
        # FastAPI's routes: the same limit, the same problem bodies
        admin = requests.put(
            f"{url}/admin/models/{NAME}/batching",
            data=b'{"max_batch": 8' + b" " * 2000 + b"}",
            headers={"Authorization": "Bearer t", "Content-Type": "application/json"},
        )
        assert admin.status_code == 413, admin.text
        assert admin.headers["content-type"].startswith("application/problem+json")
        chunked = requests.put(  # no content-length: counted as it arrives
            f"{url}/admin/models/{NAME}/batching",
            data=iter([b'{"max_batch": 8', b" " * 1500, b"}"]),
            headers={"Authorization": "Bearer t", "Content-Type": "application/json"},
        )
        assert chunked.status_code == 413 and chunked.json()["field"] == "body", chunked.text
        missing = requests.get(f"{url}/v3/nothing")
        assert missing.status_code == 404 and "/docs" in missing.json()["detail"]
        assert missing.headers["content-type"].startswith("application/problem+json")
        wrong = requests.delete(f"{url}/v2/health/live")
        assert wrong.status_code == 405 and wrong.json()["status"] == 405


def test_openapi_documents_the_infer_routes(served: tuple[str, bytes]) -> None:
    url, _ = served
    paths = requests.get(f"{url}/openapi.json").json()["paths"]
    infer = paths["/v2/models/{name}/infer"]["post"]
    assert set(infer["requestBody"]["content"]) == {"application/json", "application/octet-stream"}
    assert "/v2/models/{name}/versions/{version}/infer" in paths and "/v2/health/live" in paths
