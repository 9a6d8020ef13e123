"""One registered ONNX model as a Ray Serve application: the heavy model's own autoscaled tier.

::

    serve run couturier.serving.ray_tier:build model=authentication-image [ref=champion]

reads the model's version from the registry the ``COUTURIER_*`` environment names (the same
settings as ``couturier serve``); tests and benchmarks build it from ONNX bytes with
:func:`application`. KubeRay's RayService runs the same import path on Kubernetes
(``couturier deploy render``).

It answers the paths ``couturier serve`` answers for one model, parsed and answered by the same
code (``_infer.parse_infer`` / ``answer_infer``: JSON or binary tensors), so the authentication
service's remote client (``COUTURIER_REMOTE_MODELS``) calls either one alike:

* ``POST /v2/models/{name}[/versions/{v}]/infer``; another model or version: 404;
* ``GET /v2/health/live`` and ``/v2/health/ready``.

Each replica holds one ONNX Runtime session. Requests arriving together run as one batch
(``@serve.batch``: up to ``MAX_BATCH`` photos' requests, waiting at most ``BATCH_WAIT_S``), and
Ray Serve adds replicas while the requests in flight per replica stay above
``target_ongoing_requests`` and removes them when they fall (``autoscaling_config``).
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

import numpy as np
from starlette.requests import Request
from starlette.responses import Response

from couturier.errors import CouturierError, NotFoundError
from couturier.extras import require
from couturier.serving._infer import INFER_PATH, MAX_BODY_BYTES, answer_infer, parse_infer
from couturier.serving._problems import problem_bytes
from couturier.serving._repository import LoadedVersion, serving_onnx

__all__ = ["AUTOSCALING", "OnnxTier", "application", "build"]

serve = require(
    "ray.serve", extra="tier", purpose="the Ray Serve tier (couturier.serving.ray_tier)"
)

#: Requests (not rows) one batch takes at most, and how long the first one waits for company.
MAX_BATCH = 16
BATCH_WAIT_S = 0.005
#: Ray Serve's autoscaling: replicas between these bounds, aiming at this many requests in
#: flight per replica; quick up, slower down (a surge must not wait, a lull must not flap).
#: Ray's defaults average the load over 30 s, reported every 10 s: a surge would be half over
#: before the first replica is asked for (benchmarks/production.py measured 35 s to the first
#: one with them). Here: over 5 s, reported every second. (Ray 2.60 warns that
#: ``metrics_interval_s`` will move to an environment variable in a later release.)
AUTOSCALING: dict[str, Any] = {
    "min_replicas": 1,
    "max_replicas": 4,
    "target_ongoing_requests": 2,
    "metrics_interval_s": 1.0,
    "look_back_period_s": 5.0,
    "upscale_delay_s": 2.0,
    "downscale_delay_s": 10.0,
}


@serve.deployment(max_ongoing_requests=32, ray_actor_options={"num_cpus": 0.5})
class OnnxTier:
    """A replica: one model version, its session, and a batch queue."""

    def __init__(
        self, name: str, version: int, onnx_model: bytes, spec: dict[str, Any], threads: int = 1
    ) -> None:
        self.loaded = LoadedVersion.from_onnx(name, version, onnx_model, spec, threads)
        # requests per batch, the latest ones only: a replica runs for weeks
        self.batches: deque[int] = deque(maxlen=10_000)

    @serve.batch(max_batch_size=MAX_BATCH, batch_wait_timeout_s=BATCH_WAIT_S)  # type: ignore[untyped-decorator]
    async def run(self, requests: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
        """The requests' inputs concatenated along the rows, one session call, split back."""
        self.batches.append(len(requests))
        rows = [len(next(iter(feeds.values()))) for feeds in requests]
        joined = {k: np.concatenate([feeds[k] for feeds in requests]) for k in requests[0]}
        outputs = await asyncio.to_thread(self.loaded.run_all, joined)  # the loop stays free
        cuts = np.cumsum(rows)[:-1]
        split = {k: np.split(v, cuts) for k, v in outputs.items()}
        return [{k: parts[i] for k, parts in split.items()} for i in range(len(requests))]

    async def __call__(self, request: Request) -> Response:
        path = request.url.path
        if request.method == "GET" and path in ("/v2/health/live", "/v2/health/ready"):
            return Response(status_code=200)
        try:
            status, headers, payload = await self._infer(request, path)
        except CouturierError as exc:
            status, headers, payload = problem_bytes(exc)
        return Response(
            payload, status_code=status, headers={k.decode(): v.decode() for k, v in headers}
        )

    async def _infer(self, request: Request, path: str) -> tuple[int, Any, bytes]:
        loaded = self.loaded
        match = INFER_PATH.fullmatch(path) if request.method == "POST" else None
        name, version = match.groups() if match else (None, None)
        if name != loaded.name or version not in (None, str(loaded.version)):
            raise NotFoundError(
                f"{request.method} {path}: this tier serves {loaded.name} v{loaded.version} "
                f"only; POST /v2/models/{loaded.name}[/versions/{loaded.version}]/infer",
                model=name,
            )
        body = await request.body()
        parsed, feeds, wanted = parse_infer(body, dict(request.headers.raw), loaded, MAX_BODY_BYTES)
        results = await self.run(feeds)
        return answer_infer(parsed, loaded.name, loaded.version, wanted, results)

    def batch_sizes(self) -> list[int]:
        """Requests per batch of this replica's latest 10,000 batches (tests, benchmarks)."""
        return list(self.batches)


def application(
    name: str,
    version: int,
    onnx_model: bytes,
    spec: dict[str, Any] | None = None,
    *,
    autoscaling: dict[str, Any] | None = None,
    threads: int = 1,
) -> Any:
    """The tier for one model version: a bound Ray Serve application for ``serve.run``."""
    config = {**AUTOSCALING, **(autoscaling or {})}
    tier: Any = OnnxTier  # a Ray Serve Deployment once decorated
    return tier.options(autoscaling_config=config).bind(
        name, version, onnx_model, spec or {}, threads
    )


def build(args: dict[str, str]) -> Any:
    """Ray Serve's application builder, from the settings' registry::

        serve run couturier.serving.ray_tier:build model=NAME [ref=champion] [graph=GRAPH]

    ``ref``: the version of ``model`` an alias or a number names. ``graph``: instead, the
    version of ``model`` that ``GRAPH``'s ``ref`` names among its components (``components`` in
    its spec): the one its front asks for, which need not be ``model``'s own champion once a
    retraining promoted a graph whose component was not (e.g. ``model=authentication-image
    graph=authentication``)."""
    from couturier.registry import ModelRegistry
    from couturier.settings import Settings

    if "model" not in args:
        raise ValueError(
            "give the model to serve: model=authentication-image [ref=champion] "
            "[graph=authentication]"
        )
    model, ref = args["model"], args.get("ref", "champion")
    version: str | int = ref
    registry = ModelRegistry(Settings.load())
    try:
        if "graph" in args:
            components = registry.load(args["graph"], ref).spec.get("components") or {}
            if model not in components:
                raise ValueError(f"{args['graph']} {ref} has no component {model!r}")
            version = int(components[model])
        loaded = registry.load(model, version)
    finally:
        registry.close()
    return application(loaded.name, loaded.version, serving_onnx(loaded), loaded.spec)
