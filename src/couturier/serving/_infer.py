"""``POST /v2/models/{name}[/versions/{v}]/infer`` as a plain ASGI endpoint.

The infer routes are the hot path, so they do not go through FastAPI: the service's
``__call__`` hands every request to :meth:`InferEndpoint.handle` first, which answers those
whose method and path match, and everything else goes on to FastAPI. FastAPI's routing,
dependency solving and exception middleware cost more than the whole model call for a small
tabular model (a cProfile of 3,000 single-row requests put them
first; ``docs/serving.md`` has the throughput before and after). The routes still appear in
the OpenAPI document (``openapi_paths``).

Bodies are JSON tensors, or the Open Inference Protocol's binary tensor data extension (what
tritonclient sends by default): the ``Inference-Header-Content-Length`` header gives the size
of the JSON part, and inputs with ``parameters.binary_data_size`` take their values, in order,
from the bytes after it. Outputs come back binary when the request asks for it
(``parameters.binary_data_output`` for all, or ``outputs[i].parameters.binary_data``).
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
import zlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import ValidationError
from pydantic_core import to_json

from couturier.errors import CouturierError, InvalidInputError, PayloadTooLargeError
from couturier.serving._batching import OverloadedError
from couturier.serving._problems import problem_bytes, validation_problem
from couturier.serving._tensors import InferRequest, to_array, to_binary_output, to_output

if TYPE_CHECKING:
    from couturier.serving._batching import Batching
    from couturier.serving._metrics import Metrics
    from couturier.serving._predictions import PredictionSink
    from couturier.serving._repository import LoadedVersion, ModelRepository

__all__ = ["MAX_BODY_BYTES", "InferEndpoint", "check_declared", "openapi_paths", "read_body"]

log = logging.getLogger("couturier.serving")
Send = Callable[[dict[str, Any]], Awaitable[None]]
Outputs = dict[str, np.ndarray]
INFER_PATH = re.compile(r"/v2/models/([^/]+)(?:/versions/([^/]+))?/infer")
ROUTE = "/v2/models/{name}/infer"
VERSION_ROUTE = "/v2/models/{name}/versions/{version}/infer"
#: Largest request body, compressed or not, by default: four 8 MiB photos in base64 fit
#: (/v1/authenticate); 64 photos of 96 x 96 x 3 as JSON tensors are ~7 MB.
MAX_BODY_BYTES = 48 * 1024 * 1024
_JSON = [(b"content-type", b"application/json")]


class _RefusedError(Exception):
    """A request refused before it reached a model: status and problem already built."""

    def __init__(self, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
        self.status, self.body, self.headers = status, body, headers


class InferEndpoint:
    """Answers the infer routes; :meth:`handle` says whether a request was one.

    An unversioned request goes to the model's default version, or, for ``canary_share`` of
    them, to its canary when it has one; when it has a shadow, the same inputs are run by the
    shadow after the answer is sent, and both outputs go to ``shadow_log`` (never to the
    caller; a failing shadow fails no request).
    """

    def __init__(
        self,
        repository: ModelRepository,
        batching: Callable[[str], Batching],
        metrics: Metrics,
        canary_share: float = 0.0,
        shadow_log: PredictionSink | None = None,
        seed: int | None = None,
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        self.max_body_bytes = max_body_bytes
        self.repository = repository
        self.batching = batching
        self.metrics = metrics
        self.canary_share = canary_share
        self.shadow_log = shadow_log
        self._random = random.Random(seed).random
        self._background: set[asyncio.Task[None]] = set()
        self._counted: dict[tuple[str, str, int], Any] = {}  # prometheus children, by label
        self._timed: dict[tuple[str, str, int], Any] = {}

    async def handle(self, scope: dict[str, Any], receive: Any, send: Send) -> bool:
        """Answer the request if it is an infer request; False (untouched) otherwise."""
        if scope["type"] == "http" and scope["method"] == "POST":
            match = INFER_PATH.fullmatch(scope["path"])
            if match is not None:
                await self._answer(match.group(1), match.group(2), scope, receive, send)
                return True
        return False

    async def _answer(
        self, name: str, version: str | None, scope: dict[str, Any], receive: Any, send: Send
    ) -> None:
        start = time.perf_counter()
        route = ROUTE if version is None else VERSION_ROUTE
        try:
            asked = dict(scope["headers"])  # ASGI servers send header names lower-cased
            body = await read_body(asked.get(b"content-length"), receive, self.max_body_bytes)
            status, headers, payload = await self.infer(name, version, body, asked)
        except _RefusedError as refused:
            status, headers, payload = refused.status, refused.headers, refused.body
        except CouturierError as exc:
            if isinstance(exc, OverloadedError):
                self.metrics.shed.labels(name).inc()
            status, headers, payload = problem_bytes(exc)
        except Exception:
            log.exception("unexpected error on %s", scope["path"])
            status, headers, payload = problem_bytes(None)
        # with a content-length, uvicorn writes the body as it is, not chunked
        headers = [*headers, (b"content-length", str(len(payload)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})
        # Prometheus children are cached by label: labels() costs as much as the model call
        key = (route, name, status)
        counter = self._counted.get(key)
        if counter is None:
            counter = self._counted[key] = self.metrics.requests.labels(route, name, str(status))
        counter.inc()
        timer = self._timed.get(key)
        if timer is None:
            timer = self._timed[key] = self.metrics.latency.labels(route, name, str(status))
        timer.observe(time.perf_counter() - start)

    async def _run(self, loaded: LoadedVersion, feeds: dict[str, np.ndarray]) -> Outputs:
        batcher = loaded.batcher
        if batcher is None:  # the version's first request: its batcher, with today's limits
            limits = self.batching(loaded.name)
            batcher = loaded.batched(
                max_batch=limits.max_batch,
                max_wait_ms=limits.max_wait_ms,
                max_queue=limits.max_queue,
                max_queue_ms=limits.max_queue_ms,
                inline_below_ms=limits.inline_below_ms,
                observe=self.metrics.observer(loaded.name),
            )
        results = await batcher.submit(feeds)
        if not batcher.inline:
            self.metrics.queue_depth.labels(loaded.name).set(batcher.queued_rows)
        return results

    async def _shadow(
        self,
        shadow: LoadedVersion,
        served: LoadedVersion,
        feeds: dict[str, np.ndarray],
        results: Outputs,
        request_id: str | None,
    ) -> None:
        """Run the shadow on a copy of the request and log both answers; never raises."""
        record: dict[str, Any] = {
            "at": datetime.now(UTC).isoformat(),
            "model": served.name,
            "request_id": request_id,
            "served": {"version": served.version, "outputs": _listed(results)},
        }
        try:
            mirrored = await self._run(shadow, feeds)
            record["shadow"] = {"version": shadow.version, "outputs": _listed(mirrored)}
            outcome = "ok"
        except Exception as exc:  # the shadow's failure is logged, never the caller's
            record["shadow"] = {"version": shadow.version, "error": f"{type(exc).__name__}: {exc}"}
            outcome = "failed"
        self.metrics.shadow.labels(served.name, outcome).inc()
        if self.shadow_log is not None:
            try:
                await self.shadow_log.append(record)
            except Exception:
                log.exception("could not write the shadow log")

    async def infer(
        self, name: str, version: str | None, body: bytes, headers: dict[bytes, bytes]
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """One request: status, headers and body of the answer. Raises CouturierError."""
        loaded = self.repository.get(name, version)  # held to the end: a swap cannot pull it
        shadow = None
        if version is None and self.repository.has_roles(name):
            canary = self.repository.role(name, "canary")
            if canary is not None and self._random() < self.canary_share:
                loaded = canary
            shadow = self.repository.role(name, "shadow")
            self.metrics.routed.labels(name, "canary" if loaded is canary else "default").inc()
        request, feeds, wanted = parse_infer(body, headers, loaded, self.max_body_bytes)
        results = await self._run(loaded, feeds)
        if shadow is not None and shadow is not loaded:
            task = asyncio.get_running_loop().create_task(
                self._shadow(shadow, loaded, feeds, results, request.id)
            )
            self._background.add(task)  # held until done: the loop keeps only weak references
            task.add_done_callback(self._background.discard)
        return answer_infer(request, name, loaded.version, wanted, results)


def parse_infer(
    body: bytes, headers: dict[bytes, bytes], loaded: LoadedVersion, max_body_bytes: int
) -> tuple[InferRequest, dict[str, np.ndarray], list[str]]:
    """An infer request's body for ``loaded``: the request, its inputs as arrays (checked
    against the model's declared inputs) and the outputs to answer. Raises InvalidInputError
    naming the field. Every server of the protocol here parses with it (``ray_tier`` too)."""
    request, binary = _parse(body, headers, max_body_bytes)
    declared = loaded.declared
    raw = _binary_parts(request, binary)
    feeds = {
        item.name: to_array(item, i, declared.get(item.name), raw[i])
        for i, item in enumerate(request.inputs)
    }
    unclaimed = len(binary) and len(binary) - sum(len(p) for p in raw if p is not None)
    if unclaimed:
        raise InvalidInputError(
            f"{unclaimed} binary bytes follow the JSON part that no input claims; "
            "give each binary input its parameters.binary_data_size",
            field="inference-header-content-length",
        )
    wanted = loaded.check(feeds, [o.name for o in request.outputs] if request.outputs else None)
    rows = {len(v) if v.ndim else 1 for v in feeds.values()}
    if len(rows) != 1 or 0 in rows:
        raise InvalidInputError(
            f"inputs have {sorted(rows)} rows; every input needs the same number (>= 1) "
            "along its first axis",
            field="inputs",
        )
    return request, feeds, wanted


def answer_infer(
    request: InferRequest, name: str, version: int, wanted: list[str], results: Outputs
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """The answer to an infer request: JSON tensors, or binary ones where the request asks."""
    answer: dict[str, Any] = {"model_name": name, "model_version": str(version)}
    if request.id is not None:
        answer["id"] = request.id
    as_binary = _binary_outputs(request, wanted)
    if not any(as_binary):
        answer["outputs"] = [to_output(k, results[k]) for k in wanted]
        return 200, _JSON, to_json(answer)
    outputs, blobs = [], []
    for k, binary_out in zip(wanted, as_binary, strict=True):
        if binary_out:
            described, blob = to_binary_output(k, results[k])
            outputs.append(described)
            blobs.append(blob)
        else:
            outputs.append(to_output(k, results[k]))
    answer["outputs"] = outputs
    head = to_json(answer)
    return (
        200,
        [
            (b"content-type", b"application/octet-stream"),
            (b"inference-header-content-length", str(len(head)).encode()),
        ],
        b"".join([head, *blobs]),
    )


def _listed(outputs: Outputs) -> dict[str, Any]:
    return {k: to_output(k, v)["data"] for k, v in outputs.items()}


async def read_body(declared: bytes | None, receive: Any, limit: int) -> bytes:
    """The whole request body, or PayloadTooLargeError once it is over ``limit`` bytes, by its
    declared content-length or as it arrives (chunked, or a length that lies)."""
    check_declared(declared, limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise too_large(size, limit)
        chunks.append(chunk)
        if not message.get("more_body"):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def check_declared(declared: bytes | None, limit: int) -> None:
    """PayloadTooLargeError when the content-length header alone is over ``limit``."""
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large(int(declared), limit)


def too_large(size: int, limit: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(
        f"the request body is {size:,} bytes or more; the limit is {limit:,}; send less "
        "(fewer rows or photos per request; the binary tensor extension for tensors)",
        field="body",
    )


def _parse(body: bytes, headers: dict[bytes, bytes], limit: int) -> tuple[InferRequest, memoryview]:
    """The JSON part as an InferRequest, and the binary part (empty without the extension)."""
    encoding = headers.get(b"content-encoding", b"identity").lower()
    if encoding in (b"gzip", b"deflate"):
        try:  # gzip: a gzip header; deflate: a zlib stream (what tritonclient sends)
            body = zlib.decompressobj(wbits=31 if encoding == b"gzip" else 15).decompress(
                body, limit + 1
            )
        except zlib.error:
            raise InvalidInputError(
                f"the body is not valid {encoding.decode()} data; send it uncompressed or "
                "compress it again",
                field="body",
            ) from None
        if len(body) > limit:
            raise too_large(len(body), limit)
    elif encoding != b"identity":
        raise InvalidInputError(
            f"Content-Encoding {encoding.decode(errors='replace')!r} is not supported; "
            "send identity, gzip or deflate",
            field="content-encoding",
        )
    head_size = headers.get(b"inference-header-content-length")
    if head_size is None:
        json_part, binary = body, memoryview(b"")
    else:
        if not head_size.isdigit() or int(head_size) > len(body):
            raise InvalidInputError(
                f"Inference-Header-Content-Length {head_size.decode(errors='replace')!r} must be "
                f"a whole number of bytes no larger than the body ({len(body)} bytes)",
                field="inference-header-content-length",
            )
        n = int(head_size)
        json_part, binary = body[:n], memoryview(body)[n:]
    try:
        return InferRequest.model_validate_json(json_part), binary
    except ValidationError as exc:
        status, problem_headers, payload = validation_problem(exc.errors(include_url=False))
        raise _RefusedError(status, payload, problem_headers) from None


def _binary_parts(request: InferRequest, binary: memoryview) -> list[memoryview | None]:
    """Each input's slice of the binary part, in order (None: its data is in the JSON)."""
    if not binary and all(item.parameters is None for item in request.inputs):
        return [None] * len(request.inputs)  # plain JSON tensors
    parts: list[memoryview | None] = []
    offset = 0
    for i, item in enumerate(request.inputs):
        size = (item.parameters or {}).get("binary_data_size")
        if size is None:
            parts.append(None)
            continue
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise InvalidInputError(
                f"inputs[{i}].parameters.binary_data_size must be a whole number of bytes, "
                f"not {size!r}",
                field=f"inputs[{i}].parameters.binary_data_size",
            )
        if item.data:
            raise InvalidInputError(
                f"inputs[{i}] has both data and binary_data_size; send its values one way",
                field=f"inputs[{i}].data",
            )
        if offset + size > len(binary):
            raise InvalidInputError(
                f"inputs[{i}].parameters.binary_data_size is {size} but only "
                f"{len(binary) - offset} binary bytes are left; set "
                "Inference-Header-Content-Length to the size of the JSON part",
                field=f"inputs[{i}].parameters.binary_data_size",
            )
        parts.append(binary[offset : offset + size])
        offset += size
    return parts


def _binary_outputs(request: InferRequest, wanted: list[str]) -> list[bool]:
    if request.parameters is None and request.outputs is None:
        return [False] * len(wanted)
    everything = bool((request.parameters or {}).get("binary_data_output", False))
    asked = {o.name: (o.parameters or {}) for o in request.outputs or []}
    return [bool(asked.get(name, {}).get("binary_data", everything)) for name in wanted]


def openapi_paths() -> dict[str, Any]:
    """The infer routes' entries for the OpenAPI document."""
    body = {
        "required": True,
        "content": {
            "application/json": {"schema": InferRequest.model_json_schema()},
            "application/octet-stream": {
                "schema": {"type": "string", "format": "binary"},
                "description": "binary tensor data extension: JSON part, then raw tensors; "
                "the Inference-Header-Content-Length header gives the JSON part's size",
            },
        },
    }
    problem = {"description": "application/problem+json naming the field and the rule"}
    responses = {
        "200": {"description": "the model's outputs, as JSON or binary tensors"},
        "404": {"description": "unknown model or version"},
        "413": problem,
        "422": problem,
        "503": {"description": "overloaded: retry after the Retry-After header's seconds"},
    }
    paths = {}
    for route in (ROUTE, VERSION_ROUTE):
        parameters = [
            {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
            for p in re.findall(r"{(\w+)}", route)
        ]
        paths[route] = {
            "post": {
                "summary": "Open Inference Protocol infer",
                "operationId": "infer" if route == ROUTE else "infer_version",
                "parameters": parameters,
                "requestBody": body,
                "responses": responses,
            }
        }
    return paths
