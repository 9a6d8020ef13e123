"""The remote model client: a scripted HTTP server answers, fails, hangs or refuses.

What is retried (a refused connection, 502/503/504: nothing was computed), what is not (a
timeout, a 404, an unreadable body), the retry budget, and the breaker that stops the calls.
The client against a real ``couturier serve`` (the authentication image tier) is in
``tests/unit/domains/test_authentication_recipe.py``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest

from couturier.serving import RemoteModel, RemoteModelError
from couturier.serving._remote import HEADER_LENGTH, RetryBudget, decode, encode
from couturier.settings import Settings
from tests.support.servers import free_port


class Script:
    """What the server does, one action a request (the last one repeats), and what it saw."""

    def __init__(self, *actions: str) -> None:
        self.actions = list(actions)
        self.paths: list[str] = []

    def next(self, path: str) -> str:
        self.paths.append(path)
        return self.actions.pop(0) if len(self.actions) > 1 else self.actions[0]


def _handler(script: Script) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            action = script.next(self.path)
            if action == "slow":
                time.sleep(0.5)
                action = "ok"
            if action in ("503", "404"):
                self._send(int(action), b'{"error": "no"}', {})
            elif action == "garbage":
                self._send(200, b"<html>a proxy's page</html>", {})
            else:
                split = int(self.headers[HEADER_LENGTH])
                self._send(200, *_doubled(body, split, json_answer=action == "json"))

        def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for k, v in {**headers, "Content-Length": str(len(body))}.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

    return Handler


def _doubled(body: bytes, split: int, *, json_answer: bool) -> tuple[bytes, dict[str, str]]:
    """The request's input ``x`` read by the protocol's rules, answered as ``y = 2x``."""
    item = json.loads(body[:split])["inputs"][0]
    x = np.frombuffer(body[split:], dtype=np.float32).reshape(item["shape"])
    y = 2 * x
    if json_answer:
        listed = {
            "name": "y",
            "shape": list(y.shape),
            "datatype": "FP32",
            "data": y.ravel().tolist(),
        }
        return json.dumps({"model_version": "3", "outputs": [listed]}).encode(), {}
    blob = y.astype("<f4").tobytes()
    out: dict[str, Any] = {
        "name": "y",
        "shape": list(y.shape),
        "datatype": "FP32",
        "parameters": {"binary_data_size": len(blob)},
    }
    answer = json.dumps({"model_version": "3", "outputs": [out]}).encode()
    return answer + blob, {HEADER_LENGTH: str(len(answer))}


@pytest.fixture
def server() -> Iterator[tuple[str, Script]]:
    script = Script("ok")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(script))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", script
    httpd.shutdown()
    httpd.server_close()


X = np.arange(6, dtype=np.float32).reshape(2, 3)


@pytest.mark.parametrize("answer", ["ok", "json"])
def test_outputs_come_back_as_arrays_from_binary_or_json_answers(
    server: tuple[str, Script], answer: str
) -> None:
    url, script = server
    script.actions = [answer]
    got = RemoteModel("m", url).infer({"x": X}, ["y"], version=3)
    np.testing.assert_array_equal(got.outputs["y"], 2 * X)
    assert got.outputs["y"].dtype == np.float32 and got.model_version == "3"
    assert script.paths == ["/v2/models/m/versions/3/infer"] and got.attempts == 1


def test_a_503_is_retried_once_and_the_second_answer_is_used(server: tuple[str, Script]) -> None:
    url, script = server
    script.actions = ["503", "ok"]
    got = RemoteModel("m", url).infer({"x": X}, ["y"])
    assert got.attempts == 2 and len(script.paths) == 2
    assert script.paths[0] == "/v2/models/m/infer"


@pytest.mark.parametrize(
    ("action", "words"),
    [
        ("slow", "no answer within 100 ms"),
        ("404", "answered HTTP 404"),
        ("garbage", "unreadable body"),
    ],
)
def test_a_timeout_a_404_or_an_unreadable_answer_is_not_retried(
    server: tuple[str, Script], action: str, words: str
) -> None:
    url, script = server
    script.actions = [action]
    remote = RemoteModel("m", url, timeout_s=0.1)
    with pytest.raises(RemoteModelError, match=words) as info:
        remote.infer({"x": X}, ["y"])
    assert len(script.paths) == 1 and "(1 attempt)" in info.value.message
    assert info.value.http_status == 503 and info.value.context["model"] == "m"


def test_a_missing_output_is_an_unreadable_answer(server: tuple[str, Script]) -> None:
    url, _ = server
    with pytest.raises(RemoteModelError, match="output 'z' missing"):
        RemoteModel("m", url).infer({"x": X}, ["z"])


def test_a_closed_port_is_retried_then_the_breaker_opens_and_calls_stop(
    server: tuple[str, Script],
) -> None:
    down = RemoteModel("m", f"http://127.0.0.1:{free_port()}", breaker_failures=2)
    for _ in range(2):
        with pytest.raises(RemoteModelError, match=r"not reachable .*\(2 attempts\)"):
            down.infer({"x": X}, ["y"])
    assert down.breaker.state == "open"
    with pytest.raises(RemoteModelError, match="circuit breaker is open"):
        down.infer({"x": X}, ["y"])
    # the same against a server that answers 503: once open, it is not called at all
    url, script = server
    script.actions = ["503"]
    busy = RemoteModel("m", url, breaker_failures=1, breaker_reset_s=60)
    with pytest.raises(RemoteModelError, match="HTTP 503"):
        busy.infer({"x": X}, ["y"])
    seen = len(script.paths)
    with pytest.raises(RemoteModelError, match="circuit breaker is open"):
        busy.infer({"x": X}, ["y"])
    assert len(script.paths) == seen == 2  # the first call and its one retry


def test_the_breaker_closes_when_a_probe_answers(server: tuple[str, Script]) -> None:
    url, script = server
    script.actions = ["503", "503", "ok"]
    remote = RemoteModel("m", url, breaker_failures=1, breaker_reset_s=0.05)
    with pytest.raises(RemoteModelError):
        remote.infer({"x": X}, ["y"])
    time.sleep(0.1)  # past the reset interval: the next call is the probe
    assert remote.infer({"x": X}, ["y"]).attempts == 1
    assert remote.breaker.state == "closed"


def test_the_retry_budget_stops_retries_when_most_calls_fail(server: tuple[str, Script]) -> None:
    budget = RetryBudget(max_tokens=10, token_ratio=0.1)
    for _ in range(4):
        budget.failed()
    assert budget.allows()  # 6 tokens left: more than half
    budget.failed()
    assert not budget.allows()  # 5: retries stop
    for _ in range(10):
        budget.succeeded()
    assert budget.allows()  # ten successes earn one token back
    # through the client: a server that always answers 503 gets a retry only while tokens last
    url, script = server
    script.actions = ["503"]
    remote = RemoteModel("m", url, breaker_failures=100, budget=RetryBudget(10, 0.1))
    for _ in range(6):
        with pytest.raises(RemoteModelError):
            remote.infer({"x": X}, ["y"])
    # calls 1-2 retried (2 tokens each), call 3 fails to 5 tokens and is not: 2+2+1+1+1+1
    assert len(script.paths) == 8


def test_a_request_encodes_and_decodes_by_the_protocols_rules() -> None:
    image = np.arange(2 * 4 * 4 * 3, dtype=np.uint8).reshape(2, 4, 4, 3)
    context = np.array([5, 7], dtype=np.int64)
    body, headers = encode({"image": image, "context": context}, ["logit"])
    n = int(headers[HEADER_LENGTH])
    head = json.loads(body[:n])
    assert [(i["name"], i["datatype"], i["shape"]) for i in head["inputs"]] == [
        ("image", "UINT8", [2, 4, 4, 3]),
        ("context", "INT64", [2]),
    ]
    assert body[n:] == image.tobytes() + context.astype("<i8").tobytes()
    assert head["outputs"] == [{"name": "logit", "parameters": {"binary_data": True}}]
    with pytest.raises(TypeError, match="no OIP datatype"):
        encode({"s": np.array(["a"])}, ["y"])
    json_answer = json.dumps(
        {"outputs": [{"name": "p", "shape": [2], "datatype": "FP32", "data": [0.5, None]}]}
    ).encode()
    outputs, version = decode(json_answer, None, ["p"])
    assert version is None and np.isnan(outputs["p"][1]) and outputs["p"][0] == 0.5


def test_remote_models_are_named_by_settings_with_a_checked_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from couturier.errors import SettingsError

    monkeypatch.setenv("COUTURIER_REMOTE_MODELS", '{"authentication-image": "http://tier:8080"}')
    assert Settings.load().remote_models == {"authentication-image": "http://tier:8080"}
    for bad, words in [
        ('{"authentication-image": "tier:8080"}', "must start with http:// or https://"),
        ("http://tier:8080", "is not valid JSON"),
    ]:
        monkeypatch.setenv("COUTURIER_REMOTE_MODELS", bad)
        with pytest.raises(SettingsError, match=words) as info:
            Settings.load()
        assert info.value.variable == "COUTURIER_REMOTE_MODELS"
