"""``couturier_requests_in_flight``: the requests a process is answering now (the autoscaler's
second signal, deploy/README.md), over real HTTP (uvicorn in a thread)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import requests
from prometheus_client.parser import text_string_to_metric_families

from couturier.serving import ModelRepository, create_app
from tests.support.http import serve
from tests.support.wait import wait_for


def in_flight(url: str) -> float:
    text = requests.get(f"{url}/metrics", timeout=10).text
    (family,) = (
        f for f in text_string_to_metric_families(text) if f.name == "couturier_requests_in_flight"
    )
    (sample,) = family.samples
    return sample.value


def test_a_request_counts_until_it_is_answered_even_when_it_fails() -> None:
    app = create_app(ModelRepository())
    entered, release = threading.Event(), threading.Event()

    @app.get("/slow")
    def slow() -> dict[str, bool]:  # sync: it blocks a worker thread, not the event loop
        entered.set()
        release.wait(30)
        return {"done": True}

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("boom")  # answered 500, then re-raised through the whole stack

    with serve(app) as url, ThreadPoolExecutor(1) as pool:
        assert in_flight(url) == 0
        answer = pool.submit(requests.get, f"{url}/slow", timeout=30)
        assert entered.wait(30)
        # the slow request only: neither this scrape nor a probe counts
        assert requests.get(f"{url}/v2/health/live", timeout=10).status_code == 200
        assert in_flight(url) == 1
        release.set()
        assert answer.result().status_code == 200
        # the count drops after the answer's last byte is sent: wait, do not race it
        wait_for(lambda: in_flight(url) == 0, "the slow request's count dropped", 30)
        assert requests.get(f"{url}/boom", timeout=10).status_code == 500
        wait_for(lambda: in_flight(url) == 0, "the failed request's count dropped", 30)


def test_an_infer_request_counts_while_its_body_arrives() -> None:
    """The infer routes are answered ahead of FastAPI (``_infer.py``): they count too."""
    release = threading.Event()

    def body() -> Iterator[bytes]:  # chunked: the server holds the request until the rest
        yield b'{"inputs": '
        release.wait(30)
        yield b"[]}"

    with serve(create_app(ModelRepository())) as url, ThreadPoolExecutor(1) as pool:
        answer = pool.submit(requests.post, f"{url}/v2/models/toy/infer", data=body(), timeout=30)
        wait_for(lambda: in_flight(url) == 1, "the infer request counted in flight", 30)
        release.set()
        assert answer.result().status_code == 404  # no model toy: answered all the same
        wait_for(lambda: in_flight(url) == 0, "the infer request's count dropped", 30)
