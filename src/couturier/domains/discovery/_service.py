"""``/v1/search``, ``/v1/similar/{listing_id}``, ``/v1/recommendations/{buyer_id}``.

Two registered models serve them, each followed through the platform's context (champion and
canary, swapped as the registry moves): ``discovery-search`` (the text encoder, the hybrid
index and the similar-items vectors) and ``discovery-recommendations`` (the candidates and the
ranker). Every answer names the versions that made it, whether it is a cold start, and what ran
degraded: the ranker's features come from the online store, and when it is down the ranker
runs on the declared defaults and says so.
"""

from __future__ import annotations

import io
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
import pandas as pd
from fastapi import APIRouter, Path, Query
from starlette.concurrency import run_in_threadpool

from couturier.domains.discovery._candidates import Candidates
from couturier.domains.discovery._encoder import TextEncoder
from couturier.domains.discovery._features import FEATURES, MAX_BUYER_ID, buyer_brand_key
from couturier.domains.discovery._ranker import OnnxRanker
from couturier.domains.discovery._recs_recipe import MODEL_NAME as RECS_MODEL
from couturier.domains.discovery._recs_training import serving_matrix
from couturier.domains.discovery._search import MAX_QUERY_CHARS, HybridSearch
from couturier.domains.discovery._search_recipe import MODEL_NAME as SEARCH_MODEL
from couturier.errors import CouturierError, DependencyUnavailableError, InvalidInputError
from couturier.features import LazyReader, open_online_reader
from couturier.registry import ModelRegistry
from couturier.retrieval import VectorIndex
from couturier.serving import Followed, PredictionSink, Served, ServiceContext

if TYPE_CHECKING:
    from couturier.features import OnlineReader

__all__ = ["DiscoveryService", "RecsModel", "SearchModel", "mount", "router"]

log = logging.getLogger("couturier.discovery")
MAX_ID = 2**63 - 1
MAX_K = 100
Id = Annotated[int, Path(ge=0, le=MAX_ID)]
BuyerId = Annotated[int, Path(ge=0, le=MAX_BUYER_ID)]
K = Annotated[int, Query(ge=1, le=MAX_K, description="how many results")]


class SearchModel:
    """A ``discovery-search`` version: hybrid index, similar-items index, listing facts.

    The facts are held as plain dicts and the popularity order computed once, at load: a
    request touches no DataFrame."""

    def __init__(
        self,
        version: int,
        index: HybridSearch,
        similar: VectorIndex,
        listings: pd.DataFrame,
        look: np.ndarray,
    ) -> None:
        self.version, self.index, self.similar, self.look = version, index, similar, look
        ids = listings["listing_id"].astype(int).tolist()
        self.row = {lid: i for i, lid in enumerate(ids)}
        self.group = listings["group"].to_numpy(np.int64)
        self.facts: dict[int, dict[str, Any]] = {
            int(r["listing_id"]): {
                "listing_id": int(r["listing_id"]),
                "title": str(r["title"]),
                "house": str(r["house"]),
                "category": str(r["category"]),
                "asking_price": float(r["asking_price"]),
            }
            for r in listings.to_dict("records")
        }
        by_popularity = listings.sort_values(["popularity", "listing_id"], ascending=[False, True])
        self.popular = by_popularity["listing_id"].astype(int).tolist()

    @classmethod
    def from_registry(cls, registry: ModelRegistry, version: int) -> SearchModel:
        loaded = registry.load(SEARCH_MODEL, version)
        art = loaded.artifacts
        encoder = TextEncoder.from_onnx(loaded.onnx_model, art["tokenizer.json"])
        index = HybridSearch.from_artifacts(
            {k[len("search/") :]: v for k, v in art.items() if k.startswith("search/")}, encoder
        )
        similar = VectorIndex.from_files(art, "similar/")
        facts = pd.read_parquet(io.BytesIO(art["listings.parquet"]))
        look = np.load(io.BytesIO(art["look.npy"]), allow_pickle=False)
        return cls(version, index, similar, facts, look)

    def describe(self, ids: list[int]) -> list[dict[str, Any]]:
        return [self.facts[i] for i in ids]

    def similar_to(
        self, listing_id: int, k: int, max_price: float | None = None
    ) -> tuple[list[int], str | None]:
        """(listing ids, cold start): the nearest looks in the listing's category, or the most
        popular listings for a listing the index has never seen."""
        row = self.row.get(listing_id)
        if row is None:
            ids, cold = self.popular, "listing"
        else:
            # a price cap drops some neighbours: ask for more than k when there is one
            want = k + 1 if max_price is None else 4 * k + 1
            found = self.similar.search(
                self.look[row : row + 1], k=want, groups=[int(self.group[row])]
            )
            ids, cold = [int(i) for i in found.ids[0] if i >= 0 and int(i) != listing_id], None
        if max_price is not None:
            ids = [i for i in ids if float(self.facts[i]["asking_price"]) <= max_price]
        return ids[:k], cold


@dataclass
class RecsModel:
    """A ``discovery-recommendations`` version: the candidate stage and the ONNX ranker."""

    version: int
    candidates: Candidates
    ranker: OnnxRanker

    def __post_init__(self) -> None:
        listings = self.candidates.listings
        self.facts: dict[int, dict[str, Any]] = {
            int(r["listing_id"]): {
                "listing_id": int(r["listing_id"]),
                "product_id": int(r["product_id"]),
                "brand_id": int(r["brand_id"]),
                "category": str(r["category"]),
                "asking_price": float(r["asking_price"]),
            }
            for r in listings.to_dict("records")
        }

    @classmethod
    def from_registry(cls, registry: ModelRegistry, version: int) -> RecsModel:
        loaded = registry.load(RECS_MODEL, version)
        return cls(
            version, Candidates.from_artifacts(loaded.artifacts), OnnxRanker(loaded.onnx_model)
        )

    def describe(self, ids: list[int]) -> list[dict[str, Any]]:
        return [self.facts[i] for i in ids]


class DiscoveryService:
    def __init__(
        self,
        search: Followed[SearchModel],
        recs: Followed[RecsModel],
        readers: LazyReader,
        sink: PredictionSink | None,
    ) -> None:
        self.search, self.recs, self.readers, self.sink = search, recs, readers, sink

    def reader(self) -> OnlineReader | None:
        """The online reader, or ``None`` while it cannot be built (the answer degrades)."""
        try:
            return self.readers.get()
        except DependencyUnavailableError:
            return None

    async def answer(
        self,
        kind: str,
        served: Served[Any],
        model: str,
        started: float,
        body: dict[str, Any],
        degraded: list[str] | None = None,
    ) -> dict[str, Any]:
        """``body`` with what every answer carries (the version that made it, its role, what
        ran degraded, the time), logged before it is returned."""
        answer = {
            "request_id": uuid.uuid4().hex,
            **body,
            "models": {model: served.value.version},
            "role": served.role,
            "degraded": degraded or [],
            "latency_ms": round((time.perf_counter() - started) * 1000, 3),
        }
        if self.sink is not None:
            await self.sink.append({**answer, "kind": kind, "at": datetime.now(UTC).isoformat()})
        return answer

    def features(
        self, reader: OnlineReader, buyer_id: int, frame: pd.DataFrame
    ) -> tuple[list[dict[str, Any]], list[str]]:
        """The feature store's features of each candidate row, or the declared defaults."""
        rows = [
            {"buyer_id": buyer_id, "listing_id": int(lid), "buyer_brand": int(bb)}
            for lid, bb in zip(
                frame["listing_id"],
                buyer_brand_key(buyer_id, frame["brand_id"].to_numpy()),
                strict=True,
            )
        ]
        try:
            return reader.get(rows).rows, []
        except CouturierError as exc:
            return reader.defaults(rows).rows, [f"features: {exc.message}"]

    def rank(
        self, model: RecsModel, buyer_id: int, k: int
    ) -> tuple[list[int], list[str], str | None]:
        """(listing ids, degraded notes, cold start) for one buyer.

        A known buyer's candidates are ordered by the ranker on the store's features; a buyer
        the models have never seen gets their segment's popular listings in popularity order
        (the ranker never saw such rows). Listings the store says are sold since the snapshot
        are dropped. Without a readable store, the candidate order serves, marked degraded."""
        cands = model.candidates
        reader = self.reader()
        known = cands.knows(buyer_id)
        if known:
            frame, cold = cands.for_buyer(buyer_id), None
        else:
            frame, cold = cands.popular(self._segment(reader, buyer_id)), "buyer"
        if frame.empty:
            return [], [], cold
        ids = frame["listing_id"].to_numpy()
        if reader is None:
            note = f"features: {FEATURES.service_name} is not readable; candidate order"
            return [int(i) for i in ids[:k]], [note], cold
        rows, degraded = self.features(reader, buyer_id, frame)
        sold = np.array([bool(r.get("sold")) for r in rows])
        if known:
            scores = model.ranker.predict(serving_matrix(frame, rows, cands.reference_s))
        else:
            scores = -np.arange(len(ids), dtype=np.float64)  # keep the popularity order
        scores[sold] = -np.inf
        best = np.argsort(-scores, kind="stable")[: min(k, int((~sold).sum()))]
        return [int(i) for i in ids[best]], degraded, cold

    @staticmethod
    def _segment(reader: OnlineReader | None, buyer_id: int) -> str | None:
        """A new buyer's segment: the favourite category the store knows, if any."""
        if reader is None:
            return None
        try:  # the service's rows name every key; only the buyer's view matters here
            got = reader.get([{"buyer_id": buyer_id, "listing_id": 0, "buyer_brand": 0}])
        except CouturierError:
            return None
        category = got.rows[0].get("favourite_category")
        return None if category in (None, "unknown") else str(category)


def router(service: DiscoveryService) -> APIRouter:
    api = APIRouter(tags=["discovery"])

    @api.get("/v1/search", summary="Hybrid search (BM25 + dense, fused) over available listings")
    async def search(
        q: Annotated[
            str | None, Query(description=f"the query text, 1 to {MAX_QUERY_CHARS} characters")
        ] = None,
        k: K = 10,
        house: str | None = None,
        category: str | None = None,
        condition: str | None = None,
        min_price: Annotated[float | None, Query(ge=0)] = None,
        max_price: Annotated[float | None, Query(ge=0)] = None,
    ) -> dict[str, Any]:
        served = service.search.pick()  # 503 naming the model before anything else
        if q is None:
            raise InvalidInputError(
                "the query parameter q is missing; search needs a query, e.g. ?q=saddle+bag",
                field="q",
            )
        started = time.perf_counter()
        filters: dict[str, Any] = {
            name: value
            for name, value in (("house", house), ("category", category), ("condition", condition))
            if value is not None
        }
        if min_price is not None or max_price is not None:
            filters["asking_price"] = (min_price, max_price)
        # the model's work runs in the thread pool: the event loop keeps serving other routes
        hits = await run_in_threadpool(served.value.index.search, q, k=k, filters=filters)
        facts = served.value.describe([int(h.doc_id) for h in hits])
        results = [
            {**d, "score": round(h.score, 6), "found_by": list(h.sources)}
            for h, d in zip(hits, facts, strict=True)
        ]
        body = {"query": q, "results": results}
        return await service.answer("search", served, SEARCH_MODEL, started, body)

    @api.get("/v1/similar/{listing_id}", summary="Listings that look like a listing, same category")
    async def similar(
        listing_id: Id,
        k: K = 10,
        max_price: Annotated[float | None, Query(ge=0)] = None,
    ) -> dict[str, Any]:
        served = service.search.pick()
        model = served.value
        started = time.perf_counter()
        ids, cold = await run_in_threadpool(model.similar_to, listing_id, k, max_price)
        body = {"listing_id": listing_id, "results": model.describe(ids), "cold_start": cold}
        return await service.answer("similar", served, SEARCH_MODEL, started, body)

    @api.get(
        "/v1/recommendations/{buyer_id}",
        summary="Listings a buyer is likely to want: candidates, then a learned ranker",
    )
    async def recommendations(buyer_id: BuyerId, k: K = 10) -> dict[str, Any]:
        served = service.recs.pick()
        started = time.perf_counter()
        ids, degraded, cold = await run_in_threadpool(service.rank, served.value, buyer_id, k)
        body = {"buyer_id": buyer_id, "results": served.value.describe(ids), "cold_start": cold}
        return await service.answer("recommendations", served, RECS_MODEL, started, body, degraded)

    return api


def mount(context: ServiceContext) -> APIRouter:
    """The domain's ``service`` hook."""

    search = context.follow(SEARCH_MODEL, SearchModel.from_registry)
    recs = context.follow(RECS_MODEL, RecsModel.from_registry)
    readers = LazyReader(
        lambda: open_online_reader(FEATURES, context.settings), what="the discovery features"
    )
    try:  # build the reader now, off the first request; if it cannot be built yet, later
        readers.get()
    except DependencyUnavailableError as exc:
        log.warning("discovery: %s; recommendations degrade until it can", exc.message)
    return router(DiscoveryService(search, recs, readers, context.predictions("discovery")))
