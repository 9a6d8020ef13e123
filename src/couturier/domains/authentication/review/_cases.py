"""A case's file (what the expert sees) and its verdict's way into the label store.

The file joins what the model said when it scored the listing (its prediction-log record: the
probability, each control point's suspicion and the photo that shows it, the nearest verified
references, the model versions) with what the marketplace knows of the listing, its seller and
its photos. The references are shown with the verdicts that made them references.

A verdict goes to the label store as the simulator's experts' verdicts do: one row in
``verdicts`` and one row per checked point in ``control_points``, ``decided_at`` and
``created_at`` both the moment it was recorded, so it counts for training from then on and never
before (the label view's point-in-time join), and monitoring reads it with the others.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from couturier.domains.authentication.review._store import Reviewer, ReviewStore, StoredVerdict
from couturier.errors import ConflictError, DependencyUnavailableError
from couturier.marketplace import CONTROL_POINTS, Marketplace

if TYPE_CHECKING:
    from couturier.domains.authentication.review._form import VerdictForm
    from couturier.domains.authentication.review._queue import Case

__all__ = ["CaseFiles", "label_rows_of"]

_POINT_INDEX = {p.name: i for i, p in enumerate(CONTROL_POINTS)}
_LISTING = [
    "listing_id",
    "seller_id",
    "product_id",
    "brand_id",
    "category",
    "listed_at",
    "asking_price",
    "currency",
    "condition",
    "title",
    "description",
    "serial_number",
]
_SELLER = ["seller_id", "country", "created_at", "prior_sales", "rating"]


class CaseFiles:
    """Case files from ``market()`` (the label store too; None when there is no marketplace)."""

    def __init__(
        self,
        market: Callable[[], Marketplace | None],
        store: ReviewStore,
        clock: Callable[[], datetime],
        on_recorded: Callable[[StoredVerdict], None] | None = None,
    ) -> None:
        self.market, self.store, self.clock = market, store, clock
        self.on_recorded = on_recorded

    def file(self, listing_id: int, record: dict[str, Any] | None) -> dict[str, Any]:
        record = record or {}
        market = self.market()
        listing: dict[str, Any] = {}
        seller: dict[str, Any] = {}
        photos: list[dict[str, Any]] = []
        references: list[dict[str, Any]] = []
        if market is not None:
            listing = _first(market.lookup("listings", "listing_id", [listing_id], _LISTING))
            if listing:
                seller = _first(
                    market.lookup("sellers", "seller_id", [int(listing["seller_id"])], _SELLER)
                )
            shown = market.lookup("photos", "listing_id", [listing_id], ["photo_id", "view"])
            rows: list[dict[str, Any]] = shown.sort_values("photo_id").to_dict("records")  # type: ignore[assignment]
            photos = _with_scores(rows, record)
            references = _references(market, record.get("evidence") or [])
        return {
            "listing": listing,
            "seller": seller,
            "photos": photos,
            "record": record,
            "control_points": record.get("control_points") or [],
            "references": references,
            "verdicts": self.store.verdicts(listing_id),
        }

    def photo(self, photo_id: int) -> bytes | None:
        market = self.market()
        if market is None:
            return None
        found = market.lookup("photos", "photo_id", [photo_id], ["image"])
        return bytes(found["image"].iat[0]) if len(found) else None  # type: ignore[arg-type]

    def record(
        self,
        reviewer: Reviewer,
        listing_id: int,
        lease_token: str,
        form: VerdictForm,
        case: Case | None,
    ) -> StoredVerdict:
        """Store the verdict (console and label store) under the reviewer's lease."""
        market = self.market()
        if market is None:
            raise ConflictError(
                "there is no marketplace to record labels in; set COUTURIER_MARKETPLACE_RUN "
                "or run `couturier demo`",
                field="marketplace",
            )
        self.store.check_lease(reviewer, listing_id, lease_token)  # a used form: told so
        if case is None:  # the lease is held, so only a verdict recorded meanwhile did this
            self.store.release(reviewer)
            raise ConflictError(
                f"listing {listing_id} is no longer a case of yours: a verdict was recorded for "
                "it meanwhile; nothing was stored. Take the next case from the queue.",
                field="listing_id",
            )
        at = self.clock()

        def write_labels(verdict_id: int) -> None:
            """The report first, the verdict last: the verdict's row completes the pair (a
            report without its verdict is refused by the label rules), and what was written is
            removed again when the rest fails."""
            verdicts, reports = label_rows_of(verdict_id, listing_id, reviewer, form, at)
            written: list[Path] = []
            try:
                if len(reports):
                    written.append(market.append("control_points", reports))
                written.append(market.append("verdicts", verdicts))
            except BaseException:
                for part in written:
                    part.unlink(missing_ok=True)
                raise

        try:
            stored = self.store.record(
                reviewer,
                listing_id=listing_id,
                lease_token=lease_token,
                verdict=form.verdict,
                kind=case.kind,
                note=form.note,
                report=form.report,
                model={"decision": case.decision, "probability": case.probability},
                at=at,
                write_labels=write_labels,
            )
        except OSError as exc:
            raise DependencyUnavailableError(
                f"the label store could not be written ({exc}); nothing was stored and the case "
                "is still yours: save again, and tell an administrator if it persists",
                dependency="label store",
            ) from exc
        if self.on_recorded is not None:
            self.on_recorded(stored)
        return stored


def label_rows_of(
    verdict_id: int, listing_id: int, reviewer: Reviewer, form: VerdictForm, at: datetime
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The verdict's row and its report's rows, in the label store's schema."""
    when = pd.Timestamp(at).tz_convert("UTC")
    verdicts = pd.DataFrame(
        {
            "verdict_id": [verdict_id],
            "listing_id": [listing_id],
            "expert_id": [reviewer.expert_id],
            "verdict": [form.verdict],
            "decided_at": [when],
            "created_at": [when],
        }
    )
    reports = pd.DataFrame(
        {
            # the simulator's convention: a report's rows are verdict_id * 8 + the point's index
            "check_id": [verdict_id * 8 + _POINT_INDEX[r["control_point"]] for r in form.report],
            "verdict_id": verdict_id,
            "listing_id": listing_id,
            "expert_id": reviewer.expert_id,
            "control_point": [r["control_point"] for r in form.report],
            "result": [r["result"] for r in form.report],
            "measurement": pd.array([r["measurement"] for r in form.report], dtype="Float64"),
            "decided_at": when,
            "created_at": when,
        }
    )
    return verdicts, reports


def _with_scores(photos: list[dict[str, Any]], record: dict[str, Any]) -> list[dict[str, Any]]:
    """Each photo with the image model's logit when the scored request sent these photos, in
    this order (the traffic does; another client may not: then no logit is shown)."""
    scored = record.get("photos") or []
    same = [p["view"] for p in photos] == [s.get("view") for s in scored]
    return [{**p, "logit": scored[i].get("logit") if same else None} for i, p in enumerate(photos)]


def _first(frame: pd.DataFrame) -> dict[str, Any]:
    return {str(k): v for k, v in frame.iloc[0].items()} if len(frame) else {}


def _references(market: Marketplace, evidence: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The evidence's reference photos, with their listing's title, house and verdict."""
    ids = sorted({int(e["listing_id"]) for e in evidence if "listing_id" in e})
    if not ids:
        return []
    listings = market.lookup("listings", "listing_id", ids, ["listing_id", "title", "asking_price"])
    titles = listings.set_index("listing_id")["title"].to_dict()
    return [{**e, "title": titles.get(int(e["listing_id"]), "")} for e in evidence]
