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
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from http import HTTPStatus
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from couturier import __version__
from couturier.errors import CouturierError, PayloadTooLargeError
from couturier.monitoring import MonitoringCollector, MonitoringStore
from couturier.registry import ModelRegistry
from couturier.serving._admin import admin_router
from couturier.serving._batching import Batching
from couturier.serving._context import Mountable, ServiceContext
from couturier.serving._follow import Follower
from couturier.serving._infer import (
    MAX_BODY_BYTES,
    InferEndpoint,
    check_declared,
    openapi_paths,
    read_body,
)
from couturier.serving._metrics import Metrics
from couturier.serving._predictions import PredictionSink
from couturier.serving._problems import (
    PROBLEM,
    answer,
    problem,
    problem_bytes,
    validation_problem,
)
from couturier.serving._repository import ModelRepository
from couturier.settings import Settings

__all__ = ["create_app"]

log = logging.getLogger("couturier.serving")


def _response(answer: tuple[int, list[tuple[bytes, bytes]], bytes]) -> Response:
    status, headers, body = answer
    extra = {k.decode(): v.decode() for k, v in headers if k != b"content-type"}
    return Response(body, status_code=status, media_type=PROBLEM, headers=extra)


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
            self.metrics.latency.labels(path, model, str(status)).observe(
                time.perf_counter() - start
            )


@dataclass
class Routing:
    """How unversioned requests reach a model that has a canary (``docs/serving.md``)."""

    canary_share: float = 0.1  # the share of requests the canary answers
    seed: int | None = None  # for tests: a reproducible draw


#: Paths the in-flight gauge leaves out: the scrape itself and the kubelet's probes.
_UNCOUNTED = frozenset(("/metrics", "/v2/health/live", "/v2/health/ready"))


class _Service(FastAPI):
    """FastAPI, with the infer routes answered ahead of its middleware stack and router, one
    body limit for every route, and every request counted in flight while it is answered."""

    infer: InferEndpoint | None = None
    max_body_bytes: int = MAX_BODY_BYTES
    metrics: Metrics | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        # inline, not a wrapper: this runs on every request of a latency-benchmarked server
        metrics = self.metrics
        counted = scope["type"] == "http" and scope["path"] not in _UNCOUNTED
        if counted and metrics is not None:
            metrics.in_flight += 1
        try:
            if self.infer is not None and await self.infer.handle(scope, receive, send):
                return
            if scope["type"] == "http":
                declared = dict(scope["headers"]).get(b"content-length")
                try:
                    if declared is None and scope["method"] in ("POST", "PUT", "PATCH"):
                        # a chunked body: read it here, counting, and hand it on whole
                        body = await read_body(None, receive, self.max_body_bytes)
                        receive = _replay(body, receive)
                    else:
                        check_declared(declared, self.max_body_bytes)
                except PayloadTooLargeError as exc:
                    status, headers, payload = problem_bytes(exc)
                    await send(
                        {"type": "http.response.start", "status": status, "headers": headers}
                    )
                    await send({"type": "http.response.body", "body": payload})
                    return
            await super().__call__(scope, receive, send)
        finally:  # also when an exception is re-raised after its 500 was sent
            if counted and metrics is not None:
                metrics.in_flight -= 1


def _replay(body: bytes, receive: Any) -> Any:
    """A receive that gives ``body`` once, whole, then whatever comes next (a disconnect)."""
    sent = False

    async def replay() -> Any:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def create_app(  # noqa: PLR0913 - the server's one constructor: each keyword is a documented knob
    repository: ModelRepository,
    *,
    expected: list[str] | None = None,
    batching: Batching | None = None,
    registry: Callable[[], ModelRegistry] | None = None,
    follow: bool = True,
    follow_interval_s: float = 2.0,
    domains: Sequence[Mountable] = (),
    settings: Settings | None = None,
    sinks: Callable[[str], PredictionSink] | None = None,
    routing: Routing | None = None,
    admin_token: str | None = None,
    shadow_log: PredictionSink | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
    clock: Callable[[], datetime] | None = None,
) -> FastAPI:
    """The service over ``repository``.

    ``expected``: names that must be loaded to be ready. ``registry``: a factory of registry
    clients; with it the service follows the registry's champion, canary and shadow moves
    (hot swap, one :class:`Follower` for the repository and the domains; ``follow=False``
    turns that off) and the admin
    routes can reload and move aliases. ``admin_token``: the bearer token of the admin routes
    (None: they answer 403). ``shadow_log``: where shadow comparisons are written.
    ``max_body_bytes``: the largest request body on any route (413 beyond). ``clock``: the
    time domains log their predictions at (default: the wall clock; a replay simulates it).

    ``domains``: their ``service`` hooks are mounted through a :class:`ServiceContext` (with
    ``settings``, a registry from ``registry``, and ``sinks`` for their prediction logs); their
    routes follow the registry like the ``/v2`` routes. A domain whose service fails to mount,
    like a champion that fails to load, leaves the server up: ``/v2/health/ready`` answers 503
    naming it, and everything else keeps serving.
    """
    defaults = batching or Batching()
    per_model: dict[str, Batching] = {}  # changed at run time by PUT /admin/.../batching

    def limits(name: str) -> Batching:
        found = per_model.get(name)
        if found is None:
            found = per_model[name] = replace(defaults)
        return found

    routing = routing or Routing()
    metrics = Metrics()
    repository.on_swap = _swap_counter(repository, metrics)
    context: ServiceContext | None = None
    if domains:
        if registry is None or settings is None:
            raise ValueError(
                "create_app(domains=...) mounts domains through a registry and settings: pass "
                "registry=lambda: ModelRegistry(settings) and settings=settings"
            )
        context = ServiceContext(
            settings,
            registry(),
            metrics,
            sinks,
            routing.canary_share,
            routing.seed,
            on_swap=repository.on_swap,
        )
        if clock is not None:
            context.clock = clock
    if settings is not None:  # the monitoring layer's newest results, on the same /metrics
        metrics.registry.register(MonitoringCollector(MonitoringStore(settings.paths.monitoring)))
    follower = _follower(repository, registry, follow_interval_s, context) if follow else None
    app = _Service(
        title="couturier",
        version=__version__,
        description="Open Inference Protocol (KServe v2) for couturier's registered models.",
        lifespan=_lifespan(follower),
        # FastAPI's native OpenTelemetry hook checks three providers on every request even
        # when none is configured; the service's metrics are Prometheus (GET /metrics)
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.max_body_bytes = max_body_bytes
    app.metrics = metrics
    app.state.repository = repository
    app.state.context = context  # the domains' followed models (a replay waits on their swaps)
    app.state.metrics = metrics
    for name in repository.names():
        metrics.loaded.labels(name).set(repository.get(name).version)
    _install_error_handlers(app)
    app.add_middleware(_Observe, metrics=metrics)
    # the infer routes, answered before FastAPI sees the request (_Service.__call__)
    app.infer = InferEndpoint(
        repository=repository,
        batching=limits,
        metrics=metrics,
        canary_share=routing.canary_share,
        shadow_log=shadow_log,
        seed=routing.seed,
        max_body_bytes=max_body_bytes,
    )
    app.include_router(admin_router(repository, limits, admin_token, registry))
    mount_problems = _mount_domains(app, domains, context) if context is not None else {}

    def problems() -> dict[str, str]:
        found = {n: f"{n} is not loaded" for n in expected or [] if n not in repository.names()}
        found.update(repository.problems)
        if context is not None:
            found.update(context.problems())
        found.update(mount_problems)
        return found

    app.include_router(_health_and_metadata(repository, problems))

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    _install_openapi(app)
    return app


def _swap_counter(
    repository: ModelRepository, metrics: Metrics
) -> Callable[[str, str, int | None, str | None], None]:
    def swapped(name: str, role: str, version: int | None, problem: str | None) -> None:
        metrics.swaps.labels(name, role, "ok" if problem is None else "refused").inc()
        if problem is None and role == "champion" and name in repository.names():
            metrics.loaded.labels(name).set(repository.get(name).version)

    return swapped


def _follower(
    repository: ModelRepository,
    registry: Callable[[], ModelRegistry] | None,
    interval_s: float,
    context: ServiceContext | None,
) -> Callable[[], tuple[threading.Event, ModelRegistry]] | None:
    """What starts the one follower thread at start-up: the OIP repository and every model
    a domain follows subscribe to the same poll of the promotion log."""
    if registry is None:
        return None

    def start() -> tuple[threading.Event, ModelRegistry]:
        client = registry()
        follower = Follower(client, interval_s=interval_s)
        follower.subscribe(repository.handle, sync=repository.sync)
        for followed in context.followed if context is not None else []:
            follower.subscribe(followed.handle, sync=followed.load_current)
        return follower.start(), client

    return start


def _lifespan(
    follower: Callable[[], tuple[threading.Event, ModelRegistry]] | None,
) -> Callable[[FastAPI], Any]:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Everything imported so far (MLflow, Feast, pandas...) is long-lived: move it out of
        # the collector's way, or full collections stall requests (p99 148 -> see docs/serving.md)
        gc.collect()
        gc.freeze()
        if follower is None:
            yield
            return
        stop, client = follower()
        try:
            yield
        finally:
            stop.set()
            client.close()

    return lifespan


def _install_error_handlers(app: FastAPI) -> None:
    """Every error is a problem body; nothing answers a traceback."""

    @app.exception_handler(CouturierError)
    async def _couturier_error(request: Request, exc: CouturierError) -> Response:
        return _response(problem_bytes(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        # unknown routes (404), wrong methods (405)...
        title = HTTPStatus(exc.status_code).phrase.replace(" ", "")
        detail = str(exc.detail)
        if exc.status_code == 404:
            detail = f"no route {request.url.path}; the routes are listed at /docs"
        status, _, body = answer(problem(exc.status_code, title, detail))
        return Response(body, status_code=status, media_type=PROBLEM, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        return _response(validation_problem(list(exc.errors())))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s", request.url.path)
        return _response(problem_bytes(None))


def _mount_domains(
    app: FastAPI, domains: Sequence[Mountable], context: ServiceContext
) -> dict[str, str]:
    """Each domain's routes (``Domain.service``, e.g. /v1/authenticate) and pages
    (``Domain.pages``, e.g. /review); the services that failed, by ``domain:NAME`` (one
    domain's failure must not take the others down). Pages that fail to mount are logged, not
    returned: readiness is the API's, and a console for people must not take it down."""
    problems: dict[str, str] = {}
    for domain in domains:
        if domain.service is not None:
            try:
                app.include_router(domain.service(context))
            except Exception as exc:
                log.exception("domain %s: its service failed to mount", domain.name)
                problems[f"domain:{domain.name}"] = (
                    f"the {domain.name} domain's service failed to mount: "
                    f"{type(exc).__name__}: {exc}"
                )
        if domain.pages is not None:
            try:
                app.include_router(domain.pages(context))
            except Exception:
                log.exception("domain %s: its pages failed to mount (not served)", domain.name)
    context.registry.close()  # the follower thread has a client of its own
    return problems


def _health_and_metadata(
    repository: ModelRepository, problems: Callable[[], dict[str, str]]
) -> APIRouter:
    api = APIRouter()

    @api.get("/v2/health/live")
    async def live() -> dict[str, bool]:
        return {"live": True}

    @api.get("/v2/health/ready")
    async def ready() -> JSONResponse:
        """Ready when every expected model is loaded and nothing failed to load or mount;
        otherwise 503 with what is wrong (the process stays up and serves the rest)."""
        found = problems()
        body: dict[str, Any] = {"ready": not found}
        if found:
            body["problems"] = found
        return JSONResponse(body, status_code=503 if found else 200)

    @api.get("/v2")
    async def server_metadata() -> dict[str, Any]:
        return {"name": "couturier", "version": __version__, "extensions": ["binary_tensor_data"]}

    def metadata(name: str, version: str | None) -> dict[str, Any]:
        loaded = repository.get(name, version)
        return {
            "name": name,
            "versions": [str(loaded.version)],
            "platform": "onnxruntime_onnx",
            "inputs": loaded.inputs,
            "outputs": loaded.outputs,
            "parameters": {"thresholds": loaded.spec.get("thresholds", {})},
        }

    @api.get("/v2/models/{name}")
    async def model_metadata(name: str) -> dict[str, Any]:
        return metadata(name, None)

    @api.get("/v2/models/{name}/versions/{version}")
    async def model_version_metadata(name: str, version: str) -> dict[str, Any]:
        return metadata(name, version)

    @api.get("/v2/models/{name}/ready")
    async def model_ready(name: str) -> dict[str, Any]:
        repository.get(name)
        return {"name": name, "ready": True}

    @api.get("/v2/models/{name}/versions/{version}/ready")
    async def model_version_ready(name: str, version: str) -> dict[str, Any]:
        loaded = repository.get(name, version)
        return {"name": name, "version": str(loaded.version), "ready": True}

    return api


def _install_openapi(app: FastAPI) -> None:
    """FastAPI's document, plus the infer routes that are answered ahead of its router."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            schema["paths"].update(openapi_paths())
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
