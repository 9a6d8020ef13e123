"""``POST /v1/price-suggestion``: a price for a listing, with its interval and sale odds.

The ``pricing`` model is followed through the platform's context (champion and canary, swapped
as the registry moves). Its market features come from the online store; when the store is down
the answer uses the declared defaults (the market index falls back to the training median) and
says so in ``degraded``. A listing that authentication judged counterfeit gets no suggestion:
the service reads authentication's newest decision for the listing from its prediction stream
(``context.decisions``), never authentication's code.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
import pandas as pd
from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from couturier.domains.pricing._design import log_reference, matrix
from couturier.domains.pricing._features import CATEGORY_CODE, FEATURES, listing_row
from couturier.domains.pricing._pricer import MODEL_NAME, Pricer
from couturier.errors import DependencyUnavailableError, InvalidInputError
from couturier.features import LazyReader, open_online_reader
from couturier.serving import Followed, LatestDecisions, PredictionSink, Served, ServiceContext

__all__ = ["PriceRequest", "PricingService", "mount"]

log = logging.getLogger("couturier.pricing")
MAX_ID = 2**63 - 1
MAX_PRICE = 1_000_000.0
#: an asking price this many times above (or below) the market value is refused as absurd
ABSURD_FACTOR = 20.0
Category = Literal["bag", "small_leather_goods", "shoes", "watch", "scarf"]
Condition = Literal["new", "excellent", "good", "fair"]
if set(CATEGORY_CODE) != {"bag", "small_leather_goods", "shoes", "watch", "scarf"}:
    raise ImportError("the Category literal must list the pricing features' categories")


class PriceRequest(BaseModel):
    """A listing to price: what a seller has filled in so far."""

    model_config = ConfigDict(extra="forbid")

    listing_id: int | None = Field(
        None, ge=0, le=MAX_ID, description="an existing listing: its authentication is checked"
    )
    seller_id: int = Field(ge=0, le=MAX_ID)
    product_id: int = Field(ge=0, le=MAX_ID)
    brand_id: int = Field(ge=0, le=MAX_ID, description="the house")
    category: Category
    condition: Condition
    description: str = Field("", max_length=10_000)
    n_photos: int = Field(1, ge=0, le=20)
    asking_price: float | None = Field(
        None, gt=0, le=MAX_PRICE, description="the seller's own price, EUR: its odds are given"
    )
    horizon_days: Literal[7, 30] = Field(30, description="sell within this many days")
    listed_at: datetime | None = Field(None, description="default: now")


class PricingService:
    def __init__(
        self,
        pricers: Followed[Pricer],
        readers: LazyReader,
        decisions: LatestDecisions,
        sink: PredictionSink | None = None,
        clock: Any = None,
    ) -> None:
        self.pricers, self.readers, self.decisions, self.sink = pricers, readers, decisions, sink
        self.clock = clock or (lambda: datetime.now(UTC))

    def features(self, request: PriceRequest) -> tuple[dict[str, Any], list[str], set[str]]:
        """The store's product, house and seller features, what ran degraded, and the
        entities the store does not know (a new listing's own entity is expected there)."""
        keys = {
            "listing_id": request.listing_id or 0,
            "product_id": request.product_id,
            "brand_id": request.brand_id,
            "seller_id": request.seller_id,
        }
        try:
            reader = self.readers.get()
        except DependencyUnavailableError as exc:
            return dict(keys), [f"features: {exc.message}"], set()
        try:
            found = reader.get([keys])
        except DependencyUnavailableError as exc:
            return reader.defaults([keys]).rows[0], [f"features: {exc.message}"], set()
        missing = set(found.missing)
        degraded = []
        if "house" in missing:
            degraded.append(
                f"features: the store has no market of house {request.brand_id}; the training "
                "median market index stands in"
            )
        return found.rows[0], degraded, missing

    def suggest(self, request: PriceRequest, served: Served[Pricer]) -> dict[str, Any]:
        pricer = served.value
        if request.brand_id not in pricer.params.houses:
            raise InvalidInputError(
                f"brand_id {request.brand_id} is not a house this model knows; the rule is one "
                f"of {', '.join(map(str, pricer.params.houses))}; send the listing's house",
                field="brand_id",
            )
        row, degraded, missing = self.features(request)
        listed = pd.Timestamp(request.listed_at or self.clock())
        row.update(
            listing_row(
                category=request.category,
                condition=request.condition,
                description=request.description,
                n_photos=request.n_photos,
                listed_at=listed if listed.tzinfo else listed.tz_localize(UTC),
            )
        )
        unseen = "product" in missing  # the store answered and does not know the product
        if math.isnan(log_reference(row)):  # the house and category's median reference price
            table = pricer.params.reference_fallback
            key = f"{request.brand_id}:{CATEGORY_CODE[request.category]}"
            row["reference_price"] = table.get(key, float(np.median(list(table.values()))))
        x, index = matrix([row], pricer.params.default_index)
        log_ref = np.array([log_reference(row)])
        category = np.array([CATEGORY_CODE[request.category]])
        asking = None if request.asking_price is None else np.array([request.asking_price])
        found = pricer.suggest(x, index, log_ref, category, request.horizon_days, asking)
        median = float(found.median[0])
        if request.asking_price is not None:
            _check_absurd(request.asking_price, median)
        return _answer(request, found, pricer, unseen=unseen, degraded=degraded)


def _check_absurd(price: float, median: float) -> None:
    if not median / ABSURD_FACTOR <= price <= median * ABSURD_FACTOR:
        raise InvalidInputError(
            f"asking_price {price:,.0f} is absurd for this item, whose market value is about "
            f"{median:,.0f} EUR; the rule is within 1/{ABSURD_FACTOR:g} to {ABSURD_FACTOR:g} "
            "times the market value; check the amount (EUR, not cents)",
            field="asking_price",
        )


def _answer(
    request: PriceRequest, found: Any, pricer: Pricer, *, unseen: bool, degraded: list[str]
) -> dict[str, Any]:
    h = request.horizon_days
    price, p = float(found.price[0]), float(found.probability[0])
    said = f"at {price:,.0f} EUR: {p:.0%} within {h} days"
    asking = None
    if found.asking_probability is not None and request.asking_price is not None:
        q = float(found.asking_probability[0])
        asking = {"price": request.asking_price, "sale_probability": q}
        said += f"; at your {request.asking_price:,.0f} EUR: {q:.0%}"
    return {
        "suggestion": {"price": price, "currency": "EUR", "sale_probability": p},
        "horizon_days": h,
        "market_value": {
            "median": round(float(found.median[0]), 2),
            "lower": round(float(found.lower[0]), 2),
            "upper": round(float(found.upper[0]), 2),
            "confidence": pricer.params.confidence,
        },
        "asking": asking,
        "message": said,
        "unseen_product": unseen,
        "degraded": degraded,
    }


def router(service: PricingService) -> APIRouter:
    api = APIRouter(tags=["pricing"])

    @api.post(
        "/v1/price-suggestion",
        summary="Suggest a price: market value interval, and the odds of selling at each price",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": PriceRequest.model_json_schema()}},
            }
        },
    )
    async def price_suggestion(http: Request) -> dict[str, Any]:
        started = time.perf_counter()
        served = service.pricers.pick()  # 503 naming the missing model before anything else
        try:
            request = PriceRequest.model_validate_json(await http.body())
        except ValidationError as exc:
            raise RequestValidationError(
                [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
            ) from None
        judged = None
        if request.listing_id is not None:  # off the event loop: it may read the log's tail
            judged = await run_in_threadpool(service.decisions.get, request.listing_id)
        if judged is not None and judged.get("decision") == "counterfeit":
            body: dict[str, Any] = {
                "suggestion": None,
                "withheld": "authentication judged this listing counterfeit: it is not priced",
            }
        else:
            body = await run_in_threadpool(service.suggest, request, served)
        answer = {
            "request_id": uuid.uuid4().hex,
            "listing_id": request.listing_id,
            **body,
            "authentication": judged,
            "models": {MODEL_NAME: served.value.version},
            "role": served.role,
            "latency_ms": round((time.perf_counter() - started) * 1000, 3),
        }
        if service.sink is not None:
            record = {**answer, "at": service.clock().isoformat(), "request": request.model_dump()}
            await service.sink.append(record)
        return answer

    return api


def mount(context: ServiceContext) -> APIRouter:
    """The domain's ``service`` hook."""
    pricers = context.follow(MODEL_NAME, Pricer.from_registry)
    readers = LazyReader(
        lambda: open_online_reader(FEATURES, context.settings), what="the pricing features"
    )
    try:  # build the reader now, off the first request; if it cannot be built yet, later
        readers.get()
    except DependencyUnavailableError as exc:
        log.warning("pricing: %s; suggestions use the declared defaults until it can", exc.message)
    decisions = context.decisions("authentication", key="listing_id", fields=("decision", "at"))
    known = decisions.catch_up()  # the history now, while mounting, not on a first request
    log.info("pricing: %d listings judged by authentication so far", known)
    sink = context.predictions("pricing")
    return router(PricingService(pricers, readers, decisions, sink, context.clock))
