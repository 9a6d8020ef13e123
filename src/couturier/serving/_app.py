"""The HTTP service: the Open Inference Protocol (KServe v2 REST) for every loaded model.

Routes::

    GET  /v2/health/live                      process is up
    GET  /v2/health/ready                     every model it was asked to load is loaded
    GET  /v2                                  server metadata
    GET  /v2/models/{name}[/versions/{v}]     model metadata: inputs and outputs
    GET  /v2/models/{name}[/versions/{v}]/ready
    POST /v2/models/{name}[/versions/{v}]/infer
    GET  /metrics                             Prometheus

Every error is ``application/problem+json`` (RFC 9457) naming the field, the rule and the fix,
with the protocol's ``error`` member beside it so KServe and Triton clients read it too. No
input yields a 500 with a stack trace: an unexpected failure is logged and answered with a
problem body.
"""

from __future__ import annotations

import gc
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from pydantic import ValidationError

from couturier import __version__
from couturier.errors import CouturierError, InvalidInputError
from couturier.registry import ModelRegistry
from couturier.serving._batching import OverloadedError
from couturier.serving._repository import LoadedVersion, ModelRepository
from couturier.serving._tensors import InferRequest, to_array, to_output

__all__ = ["create_app"]

log = logging.getLogger("couturier.serving")
PROBLEM = "application/problem+json"


def _problem(status: int, title: str, detail: str, **extra: Any) -> JSONResponse:
    body = {
        "type": f"https://couturier.dev/errors/{title}",
        "title": title,
        "status": status,
        "detail": detail,
        "error": detail,  # the Open Inference Protocol's error member
        **extra,
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


class Metrics:
    """The service's Prometheus metrics, in a registry of its own (one per app)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "couturier_requests",
            "HTTP requests by route, model and status code",
            ["route", "model", "code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "couturier_request_seconds",
            "request latency by route and model",
            ["route", "model"],
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=self.registry,
        )
        self.batch = Histogram(
            "couturier_batch_rows",
            "rows per model execution",
            ["model"],
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
            registry=self.registry,
        )
        self.queue_seconds = Histogram(
            "couturier_queue_seconds",
            "time the oldest request of a batch waited",
            ["model"],
            buckets=(0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1),
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "couturier_queue_rows", "rows waiting to be batched", ["model"], registry=self.registry
        )
        self.shed = Counter(
            "couturier_shed",
            "requests refused at once because the queue was full",
            ["model"],
            registry=self.registry,
        )
        self.decisions = Counter(
            "couturier_decisions",
            "decisions answered by a domain route, by model and decision",
            ["model", "decision"],
            registry=self.registry,
        )
        self.degraded = Counter(
            "couturier_degraded",
            "answers given in a degraded mode, by model and the stage that degraded",
            ["model", "stage"],
            registry=self.registry,
        )
        self.swaps = Counter(
            "couturier_swaps",
            "hot swaps to a new version, by outcome (refused: failed its health check)",
            ["model", "outcome"],
            registry=self.registry,
        )
        self.loaded = Gauge(
            "couturier_model_loaded_version",
            "the version of each loaded model that answers by default",
            ["model"],
            registry=self.registry,
        )


@dataclass
class Batching:
    """Dynamic batching limits for every model (``docs/serving.md``)."""

    max_batch: int = 64
    max_wait_ms: float = 2.0
    max_queue: int = 1024
    inline_below_ms: float = 0.5  # cheaper models run at once in the event loop, unqueued


class _Json(JSONResponse):
    def render(self, content: Any) -> bytes:
        return json.dumps(content, separators=(",", ":"), allow_nan=False).encode()


class _Observe:
    """Counts and times every request: a plain ASGI middleware. (Starlette's
    ``BaseHTTPMiddleware`` halved single-row throughput here: 2,679 -> 1,454 req/s.)"""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            model = scope.get("path_params", {}).get("name", "")
            self.metrics.requests.labels(path, model, str(status)).inc()
            self.metrics.latency.labels(path, model).observe(time.perf_counter() - start)


def create_app(
    repository: ModelRepository,
    *,
    expected: list[str] | None = None,
    batching: Batching | None = None,
    follow: Callable[[], ModelRegistry] | None = None,
    follow_interval_s: float = 2.0,
    routers: list[Any] | None = None,
) -> FastAPI:
    """The service over ``repository``.

    ``expected``: names that must be loaded to be ready. ``follow``: a factory of a registry
    whose ``champion`` moves the service follows (hot swap, ``ModelRepository.follow``).
    """
    batching = batching or Batching()
    metrics = Metrics()

    def swapped(candidate: LoadedVersion, problem: str | None) -> None:
        metrics.swaps.labels(candidate.name, "ok" if problem is None else "refused").inc()
        if problem is None:
            metrics.loaded.labels(candidate.name).set(candidate.version)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Everything imported so far (MLflow, Feast, pandas...) is long-lived: move it out of
        # the collector's way, or full collections stall requests (p99 148 -> see docs/serving.md)
        gc.collect()
        gc.freeze()
        if follow is None:
            yield
            return
        registry = follow()
        stop = repository.follow(registry, interval_s=follow_interval_s, on_swap=swapped)
        try:
            yield
        finally:
            stop.set()
            registry.close()

    app = FastAPI(
        title="couturier",
        version=__version__,
        description="Open Inference Protocol (KServe v2) for couturier's registered models.",
        lifespan=lifespan,
    )
    app.state.repository = repository
    app.state.metrics = metrics  # domain routes count their decisions here
    for name in repository.names():
        metrics.loaded.labels(name).set(repository.get(name).version)

    @app.exception_handler(CouturierError)
    async def _couturier_error(request: Request, exc: CouturierError) -> JSONResponse:
        problem = exc.to_problem()
        extra = {k: v for k, v in problem.items() if k not in ("type", "title", "status", "detail")}
        response = _problem(exc.http_status, problem["title"], exc.message, **extra)
        if isinstance(exc, OverloadedError):
            metrics.shed.labels(request.path_params.get("name", "")).inc()
            response.headers["Retry-After"] = str(max(1, round(exc.retry_after)))
        return response

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": ("body",), "msg": "invalid"}
        where = ".".join(str(p) for p in first["loc"] if p != "body") or "body"
        return _problem(
            422,
            "InvalidInputError",
            f"{where}: {first['msg']}; see the request schema at /docs",
            field=where,
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s", request.url.path)
        return _problem(500, "InternalError", "the server failed; the error was logged")

    app.add_middleware(_Observe, metrics=metrics)

    # ---- health and metadata -------------------------------------------------------------
    @app.get("/v2/health/live")
    async def live() -> dict[str, bool]:
        return {"live": True}

    @app.get("/v2/health/ready")
    async def ready() -> JSONResponse:
        missing = [n for n in expected or [] if n not in repository.names()]
        ok = not missing
        return JSONResponse({"ready": ok}, status_code=200 if ok else 503)

    @app.get("/v2")
    async def server_metadata() -> dict[str, Any]:
        return {"name": "couturier", "version": __version__, "extensions": []}

    def metadata(name: str, version: str | None) -> dict[str, Any]:
        loaded = repository.get(name, version)
        versions = [str(loaded.version)]
        return {
            "name": name,
            "versions": versions,
            "platform": "onnxruntime_onnx",
            "inputs": loaded.inputs,
            "outputs": loaded.outputs,
            "parameters": {"thresholds": loaded.spec.get("thresholds", {})},
        }

    @app.get("/v2/models/{name}")
    async def model_metadata(name: str) -> dict[str, Any]:
        return metadata(name, None)

    @app.get("/v2/models/{name}/versions/{version}")
    async def model_version_metadata(name: str, version: str) -> dict[str, Any]:
        return metadata(name, version)

    @app.get("/v2/models/{name}/ready")
    async def model_ready(name: str) -> dict[str, Any]:
        repository.get(name)
        return {"name": name, "ready": True}

    @app.get("/v2/models/{name}/versions/{version}/ready")
    async def model_version_ready(name: str, version: str) -> dict[str, Any]:
        loaded = repository.get(name, version)
        return {"name": name, "version": str(loaded.version), "ready": True}

    # ---- inference -------------------------------------------------------------------------
    async def infer(name: str, version: str | None, request: InferRequest) -> dict[str, Any]:
        loaded = repository.get(name, version)  # held to the end: a swap cannot pull it away
        declared = {i["name"]: i for i in loaded.inputs}
        feeds = {
            item.name: to_array(item, i, declared.get(item.name))
            for i, item in enumerate(request.inputs)
        }
        wanted = loaded.check(feeds, [o.name for o in request.outputs] if request.outputs else None)
        rows = {len(v) if v.ndim else 1 for v in feeds.values()}
        if len(rows) != 1 or 0 in rows:
            raise InvalidInputError(
                f"inputs have {sorted(rows)} rows; every input needs the same number (>= 1) "
                "along its first axis",
                field="inputs",
            )

        def observe(batch_rows: int, queued_s: float) -> None:
            metrics.batch.labels(name).observe(batch_rows)
            metrics.queue_seconds.labels(name).observe(queued_s)

        batcher = loaded.batched(
            max_batch=batching.max_batch,
            max_wait_ms=batching.max_wait_ms,
            max_queue=batching.max_queue,
            inline_below_ms=batching.inline_below_ms,
            observe=observe,
        )
        metrics.queue_depth.labels(name).set(batcher.queued_rows)
        results = await batcher.submit(feeds)
        body: dict[str, Any] = {
            "model_name": name,
            "model_version": str(loaded.version),
            "outputs": [to_output(k, results[k]) for k in wanted],
        }
        if request.id is not None:
            body["id"] = request.id
        return body

    # The body is parsed by pydantic-core straight from bytes (InferRequest.model_validate_json)
    # and the answer serialized directly: FastAPI's json.loads + validation + jsonable_encoder
    # path cost a third of the single-row throughput. The schema stays in the OpenAPI document.
    infer_body = {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": InferRequest.model_json_schema()}},
        }
    }

    async def parse(request: Request) -> InferRequest:
        try:
            return InferRequest.model_validate_json(await request.body())
        except ValidationError as exc:
            raise RequestValidationError(
                [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
            ) from None

    @app.post("/v2/models/{name}/infer", response_class=_Json, openapi_extra=infer_body)
    async def model_infer(name: str, request: Request) -> _Json:
        return _Json(await infer(name, None, await parse(request)))

    @app.post(
        "/v2/models/{name}/versions/{version}/infer", response_class=_Json, openapi_extra=infer_body
    )
    async def model_version_infer(name: str, version: str, request: Request) -> _Json:
        return _Json(await infer(name, version, await parse(request)))

    for extra in routers or []:  # domains' routes (``Domain.service``), e.g. /v1/authenticate
        app.include_router(extra)

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
