"""``POST /v1/authenticate``: one listing and its photos in; a decision with evidence out.

The stages, with their times in the answer (``latency_ms``)::

    online features (thread, budget) ──────────────────────────────────────┐
    decode photos ──> image model ──> reference search (thread, budget) ───┴─> listing model
                                                                             -> fusion -> decision

The feature read starts first (it needs only the ids) and runs beside the photos' decoding,
the image model and the reference search, which follows the image model in the same worker
thread. When the online store is down or slower than ``feature_timeout_s``, the listing is
scored on the features' declared defaults and the answer says so in ``degraded``; when the
search is slower than ``retrieval_timeout_s`` it is skipped, likewise. The photos still speak.
Bad input is refused before any model runs:
``photos[2].data`` is not base64, not an image, too large; ``photos`` has 0 or 5 items; a view
or a category nobody knows.

The platform mounts this router through the domain's ``service`` hook; it never imports it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import to_json

from couturier.domains.authentication import fusion, image_model, listing_model
from couturier.domains.authentication._answer import (
    ImageOutputs,
    decision_fields,
    log_record,
    photo_outputs,
)
from couturier.domains.authentication.graph import AuthenticationGraph
from couturier.domains.authentication.monitoring import in_audit_sample
from couturier.domains.authentication.photos import DEFAULT_LIMITS, decode_photo
from couturier.errors import CouturierError, DependencyUnavailableError, InvalidInputError
from couturier.features import LazyReader, open_online_reader
from couturier.marketplace import CATEGORIES, VIEWS
from couturier.serving import (
    Followed,
    Metrics,
    PredictionSink,
    RemoteModel,
    Served,
    ServiceContext,
    settle,
)

if TYPE_CHECKING:
    from couturier.features import OnlineReader

__all__ = ["AuthenticateRequest", "AuthenticationService", "Listing", "mount", "router"]

View = Literal["front", "monogram", "hardware", "label"]
if set(VIEWS) != {"front", "monogram", "hardware", "label"}:  # the API's enum follows the catalog
    raise ImportError(f"the View literal must list the marketplace's views {VIEWS}")

#: The largest id any store holds (int64: Parquet, Feast's entity keys, PostgreSQL bigint).
MAX_ID = 2**63 - 1


class PhotoIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    view: View
    data: str = Field(description="the photo file (JPEG, PNG or WebP), base64-encoded")


class Listing(BaseModel):
    """What the request says of the listing besides its photos."""

    model_config = ConfigDict(extra="forbid")

    listing_id: int = Field(ge=0, le=MAX_ID)
    seller_id: int = Field(ge=0, le=MAX_ID)
    product_id: int = Field(ge=0, le=MAX_ID)
    brand_id: int = Field(ge=0, le=MAX_ID)
    category: str

    def entity_keys(self) -> dict[str, int]:
        """The join keys of the feature service's entities."""
        return {
            "listing_id": self.listing_id,
            "seller_id": self.seller_id,
            "product_id": self.product_id,
        }


class AuthenticateRequest(Listing):
    """The JSON body: the listing and its photos, base64-encoded."""

    photos: list[PhotoIn] = Field(min_length=1, max_length=4)


MAX_PHOTOS = 4
log = logging.getLogger("couturier.authentication")


class AuthenticationService:
    """Scores one listing through the champion (or canary) graph the registry names now.

    ``graphs`` follows the ``authentication`` model (``ServiceContext.follow``); each request
    takes one graph and keeps it to the end, so its answer never mixes two graphs' components.
    ``open_reader`` builds the online-feature reader: it is called on first use and again after
    a failure (at most every ``reader_retry_s``), so the service mounts before the features
    are registered and recovers when they are.

    Feature reads run in a pool of their own: a store that hangs holds those threads only,
    never the ones the image model and the reference search need.
    """

    def __init__(  # noqa: PLR0913 - keyword-only settings, each with its default
        self,
        graphs: Followed[AuthenticationGraph],
        open_reader: Callable[[], OnlineReader],
        *,
        feature_timeout_s: float = 0.05,
        retrieval_timeout_s: float = 0.05,
        threads: int = 2,
        feature_threads: int = 4,
        log: PredictionSink | None = None,
        reader_retry_s: float = 5.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        image_tier: RemoteModel | None = None,
    ) -> None:
        self.graphs = graphs
        #: the image model on a tier of its own (``COUTURIER_REMOTE_MODELS``); None: in process
        self.image_tier = image_tier
        self.clock = clock  # the time a decision is logged at (a replay simulates it)
        self._readers = LazyReader(
            open_reader, retry_s=reader_retry_s, what="the authentication features"
        )
        self.log = log  # every answer is in the log before it is sent
        self.feature_timeout_s = feature_timeout_s
        self.retrieval_timeout_s = retrieval_timeout_s
        # in process, the image model keeps ``threads`` cores busy; on its own tier, a thread
        # mostly waits on the network, and the pool must not cap the calls in flight below
        # what the client's connection pool holds
        workers = threads if image_tier is None else max(threads, image_tier.connections)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="auth-model")
        self._feature_pool = ThreadPoolExecutor(
            max_workers=feature_threads, thread_name_prefix="auth-features"
        )

    @property
    def reader(self) -> OnlineReader:
        """The online reader, built on first use; 503 while it cannot be built (a blocking
        call: requests build it in the feature pool, never in the event loop)."""
        return self._readers.get()

    @staticmethod
    def from_base64(request: AuthenticateRequest) -> list[tuple[str, bytes, str]]:
        """The JSON body's photos as (view, file bytes, field name for errors)."""
        # base64 is 4/3 of the bytes: refuse an oversized string before decoding it
        limit = DEFAULT_LIMITS.max_bytes * 4 // 3 + 4
        photos: list[tuple[str, bytes, str]] = []
        for i, photo in enumerate(request.photos):
            where = f"photos[{i}].data"
            if len(photo.data) > limit:
                raise InvalidInputError(
                    f"{where} is {len(photo.data):,} base64 characters; the limit is {limit:,} "
                    f"({DEFAULT_LIMITS.max_bytes:,} bytes); send a smaller photo",
                    field=where,
                )
            try:
                raw = base64.b64decode(photo.data, validate=True)
            except (binascii.Error, ValueError):
                raise InvalidInputError(
                    f"{where} is not base64; encode the file's bytes with standard base64",
                    field=where,
                ) from None
            photos.append((photo.view, raw, where))
        return photos

    @staticmethod
    def _decode(photos: list[tuple[str, bytes, str]]) -> np.ndarray:
        images = np.empty((len(photos), 96, 96, 3), np.uint8)
        for i, (_, raw, where) in enumerate(photos):
            images[i] = decode_photo(raw, field=where)
        return images

    def _features(
        self, request: Listing, deadline: float
    ) -> tuple[dict[str, Any], str | None, float]:
        """The listing's online features, why they are defaults if they are, and the seconds
        the read took. A read that would start after its request stopped waiting is skipped:
        under an outage, queued reads must not pile up behind hung ones."""
        t = time.perf_counter()
        keys = request.entity_keys()
        if t > deadline:
            return self.reader.defaults([keys]).rows[0], "feature read skipped: late", 0.0
        try:
            got = self.reader.get([keys])
        except CouturierError as exc:  # the store is down: declared defaults, and say so
            down = exc.message  # "online store (redis) not read: its circuit breaker is open..."
            return self.reader.defaults([keys]).rows[0], down, time.perf_counter() - t
        missing = [name for name, flags in got.defaulted.items() if flags[0]]
        note = f"no online features for {', '.join(sorted(missing))}: defaults" if missing else None
        return got.rows[0], note, time.perf_counter() - t

    async def authenticate(
        self,
        request: Listing,
        photos: list[tuple[str, bytes, str]],
        served: Served[AuthenticationGraph] | None = None,
    ) -> dict[str, Any]:
        """``photos``: (view, file bytes, field name for errors), 1 to 4 of them. ``served``:
        the graph to score with (default: the one the registry names now)."""
        started = time.perf_counter()
        if request.category not in CATEGORIES:
            raise InvalidInputError(
                f"category {request.category!r} is unknown; accepted: {', '.join(CATEGORIES)}",
                field="category",
            )
        served = served or self.graphs.pick()  # one graph for the whole request
        graph = served.value
        loop = asyncio.get_running_loop()
        # built at mount; else built off the loop (503 if it cannot be)
        reader = self._readers.current
        if reader is None:
            reader = await loop.run_in_executor(self._feature_pool, lambda: self.reader)
        views = [view for view, _, _ in photos]
        contexts = image_model.context_codes([request.brand_id] * len(photos), views)
        # the feature read needs only the ids: it starts before the photos are decoded
        deadline = started + self.feature_timeout_s
        feature_task = loop.run_in_executor(self._feature_pool, self._features, request, deadline)
        try:
            images = self._decode(photos)
        except BaseException:
            _quiet(feature_task)
            raise
        decoded = time.perf_counter()
        # the reference search follows the image model in the same worker, with no hop back
        # to the loop in between; the loop gets the image outputs as soon as they exist
        image_done: asyncio.Future[ImageOutputs] = loop.create_future()

        image_s = 0.0  # the image model's own time, in its worker (or the image tier's call)

        def image_then_search() -> Any:
            nonlocal image_s
            t = time.perf_counter()
            try:
                outputs = photo_outputs(self.image_tier, graph, images, contexts)
            except BaseException as exc:
                loop.call_soon_threadsafe(settle, image_done, None, exc)
                raise
            image_s = time.perf_counter() - t
            loop.call_soon_threadsafe(settle, image_done, outputs, None)
            got = outputs[0]  # None: the image tier is down, and there is nothing to search
            return None if got is None else graph.references.search(got[1], contexts)

        search = loop.run_in_executor(self._pool, image_then_search)
        _quiet(search)  # its failure is the image model's, raised through image_done
        degraded: dict[str, str] = {}
        waited = time.perf_counter() - started
        try:
            row, note, features_s = await asyncio.wait_for(
                asyncio.shield(feature_task), timeout=max(0.0, self.feature_timeout_s - waited)
            )
            if note:
                degraded["features"] = note
        except TimeoutError:
            row = reader.defaults([request.entity_keys()]).rows[0]
            degraded["features"] = (
                f"online store slower than {self.feature_timeout_s * 1000:.0f} ms: defaults"
            )
            features_s = time.perf_counter() - started
        outputs, image_note = await image_done
        images_done = time.perf_counter()
        row = {**row, "category": request.category}
        x = listing_model.design_rows([row])
        if outputs is None:  # the image tier is down: no photo speaks, an expert decides
            degraded["image_model"] = image_note or "image model unavailable"
            scores = None
        else:
            neighbours = await self._neighbours(search, graph, len(images), degraded)
            ids = np.array([request.listing_id])
            scores = graph.score(
                ids,
                x,
                np.repeat(ids, len(images)),
                contexts=contexts,
                photo_outputs=outputs,
                neighbours=neighbours,
            )
        done = time.perf_counter()
        answer = {
            "request_id": uuid.uuid4().hex,
            "listing_id": request.listing_id,
            **decision_fields(graph, scores, x, views),
            "audit": in_audit_sample(request.listing_id),
            # the versions of the models that spoke: not the image model's when it was down
            "models": graph.versions
            if outputs is not None
            else {k: v for k, v in graph.versions.items() if k != image_model.MODEL_NAME},
            "role": served.role,
            "degraded": degraded,
            "latency_ms": {
                "decode": round((decoded - started) * 1000, 3),
                "features": round(features_s * 1000, 3),
                "image_model": round(image_s * 1000, 3),
                "retrieval_fusion": round((done - images_done) * 1000, 3),
                "total": round((done - started) * 1000, 3),
            },
        }
        if self.log is not None:
            await self.log.append(
                log_record(answer, request.model_dump(), self.clock(), x, outputs, scores)
            )
        return answer

    async def _neighbours(
        self, search: asyncio.Future[Any], graph: AuthenticationGraph, n: int, degraded: Any
    ) -> Any:
        """The reference search's answer, or nobody (and a note) when it is too slow."""
        try:
            return await asyncio.wait_for(asyncio.shield(search), timeout=self.retrieval_timeout_s)
        except TimeoutError:  # no neighbours: the references' base rate, and no evidence
            degraded["retrieval"] = (
                f"reference search slower than {self.retrieval_timeout_s * 1000:.0f} ms: "
                "skipped (retrieval score = the references' base rate; no evidence)"
            )
            return graph.references.nobody(n)


def _quiet(future: asyncio.Future[Any]) -> None:
    """Retrieve a future's exception when it ends: one nobody awaits must not warn."""
    future.add_done_callback(lambda f: f.cancelled() or f.exception())


def _schema_errors(exc: ValidationError) -> RequestValidationError:
    return RequestValidationError(
        [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
    )


async def _from_json(http: Request) -> tuple[Listing, list[tuple[str, bytes, str]]]:
    try:
        request = AuthenticateRequest.model_validate_json(await http.body())
    except ValidationError as exc:
        raise _schema_errors(exc) from None
    return request, AuthenticationService.from_base64(request)


async def _from_form(http: Request) -> tuple[Listing, list[tuple[str, bytes, str]]]:
    """multipart/form-data: the listing's fields, then ``views`` and ``photos`` repeated in the
    same order (``curl -F listing_id=1 ... -F views=front -F photos=@front.jpg``)."""
    try:
        form = await http.form(max_files=MAX_PHOTOS, max_fields=len(Listing.model_fields) + 8)
    except Exception as exc:  # the parser's own refusals: too many parts, a broken body
        raise InvalidInputError(
            f"the multipart body could not be read: {exc}; send the listing's fields, then "
            f"views and photos (at most {MAX_PHOTOS})",
            field="body",
        ) from None
    try:
        fields = {k: form[k] for k in Listing.model_fields if k in form}
        strays = sorted(set(form) - set(Listing.model_fields) - {"views", "photos"})
        if strays:
            raise InvalidInputError(
                f"unknown form field {strays[0]!r}; send {', '.join(Listing.model_fields)}, "
                "views and photos",
                field=strays[0],
            )
        try:
            listing = Listing.model_validate(fields)
        except ValidationError as exc:
            raise _schema_errors(exc) from None
        views, files = form.getlist("views"), form.getlist("photos")
        if not 1 <= len(files) <= MAX_PHOTOS:
            raise InvalidInputError(
                f"photos: {len(files)} given; send 1 to {MAX_PHOTOS} files named photos",
                field="photos",
            )
        if len(views) != len(files):
            raise InvalidInputError(
                f"views: {len(views)} given for {len(files)} photos; send one views field per "
                "photo, in the same order",
                field="views",
            )
        photos = []
        for i, (view, file) in enumerate(zip(views, files, strict=True)):
            if view not in VIEWS:
                raise InvalidInputError(
                    f"views[{i}] is {view!r}; accepted: {', '.join(VIEWS)}", field=f"views[{i}]"
                )
            if isinstance(file, str):
                raise InvalidInputError(
                    f"photos[{i}] is a text field; send the photo as a file part",
                    field=f"photos[{i}]",
                )
            raw = await file.read(DEFAULT_LIMITS.max_bytes + 1)
            photos.append((str(view), raw, f"photos[{i}]"))
        return listing, photos
    finally:
        await form.close()


def router(service: AuthenticationService, metrics: Metrics | None = None) -> APIRouter:
    api = APIRouter(tags=["authentication"])

    # The JSON body is parsed by pydantic-core straight from bytes and the answer serialized
    # by it too: FastAPI's json.loads + validation + jsonable_encoder cost ~0.5 ms a request
    # here. Both bodies stay in the OpenAPI document.
    multipart = {
        "type": "object",
        "required": [*Listing.model_fields, "views", "photos"],
        "properties": {
            **Listing.model_json_schema()["properties"],
            "views": {"type": "array", "items": {"type": "string", "enum": list(VIEWS)}},
            "photos": {"type": "array", "items": {"type": "string", "format": "binary"}},
        },
    }
    body_schema = {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": AuthenticateRequest.model_json_schema()},
                "multipart/form-data": {"schema": multipart},
            },
        }
    }

    @api.post(
        "/v1/authenticate",
        summary="Decide authentic / review / counterfeit for a listing, with evidence",
        openapi_extra=body_schema,
        response_class=Response,
    )
    async def authenticate(http: Request) -> Response:
        served = service.graphs.pick()  # 503 naming the missing model before anything else
        kind = http.headers.get("content-type", "application/json").split(";")[0].strip()
        if kind == "multipart/form-data":
            listing, photos = await _from_form(http)
        elif kind in ("application/json", ""):
            listing, photos = await _from_json(http)
        else:
            raise InvalidInputError(
                f"Content-Type {kind!r} is not accepted; send application/json (photos in "
                "base64) or multipart/form-data (photos as files)",
                field="content-type",
            )
        answer = await service.authenticate(listing, photos, served)
        if metrics is not None:
            metrics.decisions.labels(fusion.MODEL_NAME, answer["decision"]).inc()
            for stage in answer["degraded"]:
                metrics.degraded.labels(fusion.MODEL_NAME, stage).inc()
        return Response(to_json(answer), media_type="application/json")

    return api


def build_service(context: ServiceContext) -> AuthenticationService:
    """The service ``/v1/authenticate`` runs: the graph the registry's ``authentication``
    champion (or canary) names, followed as it moves, with the context's settings, prediction
    log, clock and image tier. (``benchmarks/serving.py`` calls it in process too.)"""
    from couturier.domains.authentication.features import FEATURES

    graphs = context.follow(
        fusion.MODEL_NAME, AuthenticationGraph.from_registry, check=AuthenticationGraph.check
    )
    return AuthenticationService(
        graphs,
        lambda: open_online_reader(FEATURES, context.settings),
        feature_timeout_s=context.settings.online_budget_ms / 1000,
        log=context.predictions("authentication"),
        clock=context.clock,
        image_tier=context.remote(image_model.MODEL_NAME),
    )


def mount(context: ServiceContext) -> APIRouter:
    """The domain's ``service`` hook: ``/v1/authenticate`` over :func:`build_service`."""
    service = build_service(context)
    try:  # build the reader now, off the first request; if it cannot be built yet, retry later
        _ = service.reader
    except DependencyUnavailableError as exc:
        log.warning("authentication: %s; requests answer 503 until it can", exc.message)
    return router(service, context.metrics)
