"""The review queue: which listings wait for an expert, in which order.

A listing is a case when ``/v1/authenticate`` sent it to ``review`` or drew it into the random
audit sample (its prediction-log record says which), and it still needs a verdict:

=================  ==========================================================  ============
kind               when                                                        who
=================  ==========================================================  ============
``review``         the policy sent it to review; no verdict yet                 everyone
``audit``          in the audit sample; no verdict yet                          everyone
``second opinion`` in the audit sample; one verdict, by somebody else: a blind  everyone
                   second look that measures the experts as well as the model
``disagreement``   its verdicts disagree, and the latest is not a senior's      seniors who
                                                                               gave none
``escalated``      a reviewer handed it on, and no senior has decided since     seniors but
                                                                               the escalator
=================  ==========================================================  ============

Nobody is offered a listing they judged already. Verdicts count from the label store (the
marketplace's, as of now) and from the console (``_known.py``). Only the log records that made
a listing a case are kept in memory (the newest such record per listing), so the queue's cost
grows with the cases, not with the traffic; a case stays until it is judged, even if the
listing is scored again.

Order: cases past the service-level target (``sla_h`` since the decision) first, oldest first;
then by the expected value of a review, highest first: the expected cost of the model's best
automatic decision that an expert's verdict saves, scaled by the item's price against the
average price, less the review's cost::

    value = min(p * missed_counterfeit, (1 - p) * wrong_rejection) * price / mean_price - review

A senior sees disagreements and escalations before everything else.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from couturier.domains.authentication.decision import CostModel
from couturier.domains.authentication.review._known import Known, Said
from couturier.domains.authentication.review._store import Reviewer, ReviewStore
from couturier.serving import LatestDecisions

__all__ = ["FIELDS", "SENIOR_KINDS", "Case", "Queue", "ReviewQueue", "is_case"]

SENIOR_KINDS = ("disagreement", "escalated")
#: the prediction-log fields the console reads
FIELDS = (
    "decision",
    "probability",
    "audit",
    "at",
    "listing",
    "models",
    "control_points",
    "evidence",
    "photos",
    "degraded",
    "features",
)


def is_case(record: dict[str, Any]) -> bool:
    """Whether a prediction-log record makes its listing a case (the board keeps only these)."""
    return record.get("decision") == "review" or record.get("audit") is True


@dataclass(frozen=True)
class Case:
    listing_id: int
    kind: str
    decision: str
    probability: float
    price: float
    value: float  # expected value of a review, EUR
    scored_at: datetime
    age_h: float
    overdue: bool
    held_by: int | None  # reviewer id holding it now


@dataclass(frozen=True)
class Queue:
    """One look at the queue for one reviewer: every case's listing id in order (``order``),
    the first of them as :class:`Case` (``cases``), and counts."""

    cases: list[Case]
    order: list[int]
    overdue: int
    senior: int

    @property
    def total(self) -> int:
        return len(self.order)


@dataclass(frozen=True)
class _Scored:
    record: dict[str, Any]
    kind: str  # review or audit
    value: float
    at_s: float  # when it was scored, POSIX seconds


class ReviewQueue:
    """The open cases, from the prediction log (``board``, keeping :func:`is_case` records),
    and what is known of each listing (``known``). ``clock`` is now (a replay's simulated
    time, or the wall clock)."""

    def __init__(
        self,
        *,
        board: LatestDecisions,
        known: Known,
        store: ReviewStore,
        clock: Callable[[], datetime],
        cost: CostModel | None = None,
        sla_h: float = 24.0,
        capacity_per_day: int = 200,
    ) -> None:
        self.board, self.known, self.store, self.clock = board, known, store, clock
        self.cost = cost or CostModel()
        self.sla_h, self.capacity_per_day = sla_h, capacity_per_day
        self._scores: dict[int, _Scored] = {}
        self._mean_price = 0.0

    def record(self, listing_id: int) -> dict[str, Any] | None:
        """The prediction-log record that made ``listing_id`` a case (None: none did)."""
        return self.board.get(listing_id)

    # -- the queue ---------------------------------------------------------------------------

    def cases(self, reviewer: Reviewer, limit: int | None = None) -> Queue:
        """The cases ``reviewer`` may work, best first (held ones included, marked); the first
        ``limit`` of them (all: None) as :class:`Case`."""
        records = self.board.snapshot()
        self._catch_up()
        said, escalation = self.known.reader()
        now = self.clock()
        now_s, sla_s = now.timestamp(), self.sla_h * 3600
        senior_first = reviewer.role == "senior"
        ranked = []
        for key, record in records.items():
            if not isinstance(key, int):
                continue
            scored = self._scored(key, record)
            kind = _kind(scored.kind, said(key), escalation(key), reviewer)
            if kind is None:
                continue
            age_s = now_s - scored.at_s
            overdue = age_s > sla_s
            first = senior_first and kind in SENIOR_KINDS
            ranked.append((not first, not overdue, -age_s if overdue else -scored.value, key, kind))
        ranked.sort()
        held = self.store.held()
        shown = ranked if limit is None else ranked[:limit]
        return Queue(
            cases=[self._case(r[3], r[4], records[r[3]], now, held.get(r[3])) for r in shown],
            order=[r[3] for r in ranked],
            overdue=sum(not r[1] for r in ranked),
            senior=sum(r[4] in SENIOR_KINDS for r in ranked),
        )

    def case(self, reviewer: Reviewer, listing_id: int) -> Case | None:
        """``listing_id`` as a case of ``reviewer``'s (None: not one of theirs to work)."""
        record = self.board.get(listing_id)
        if record is None:
            return None
        self._catch_up()
        said, escalation = self.known.reader()
        base = self._scored(listing_id, record).kind
        kind = _kind(base, said(listing_id), escalation(listing_id), reviewer)
        if kind is None:
            return None
        return self._case(listing_id, kind, record, self.clock(), self.store.held().get(listing_id))

    def _catch_up(self) -> None:
        self.known.refresh()
        if self.known.mean_price != self._mean_price:
            self._mean_price = self.known.mean_price
            self._scores.clear()  # the values were scaled by the old mean

    def _scored(self, listing_id: int, record: dict[str, Any]) -> _Scored:
        """What a record says that does not change: computed once per record."""
        cached = self._scores.get(listing_id)
        if cached is not None and cached.record is record:
            return cached
        p, price = _probability_and_price(record)
        kind = "review" if record.get("decision") == "review" else "audit"
        scored = _Scored(record, kind, self._value(p, price), _parse_time(record.get("at")))
        self._scores[listing_id] = scored
        return scored

    def _value(self, p: float, price: float) -> float:
        """The expected value of a review, EUR (the module's formula)."""
        scale = price / self._mean_price if self._mean_price > 0 and price > 0 else 1.0
        cost = self.cost
        value = min(p * cost.missed_counterfeit, (1 - p) * cost.wrong_rejection) * scale
        return round(value - cost.review, 2)

    def _case(
        self, listing_id: int, kind: str, record: dict[str, Any], now: datetime, held: int | None
    ) -> Case:
        p, price = _probability_and_price(record)
        scored = self._scored(listing_id, record)
        age_h = max((now.timestamp() - scored.at_s) / 3600, 0.0)
        return Case(
            listing_id,
            kind,
            str(record.get("decision")),
            p,
            price,
            scored.value,
            datetime.fromtimestamp(scored.at_s, tz=now.tzinfo),
            age_h,
            age_h > self.sla_h,
            held,
        )

    def capacity_left(self) -> int:
        """Reviews still in today's capacity (UTC day of the clock)."""
        now = self.clock().astimezone(UTC)
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        return max(self.capacity_per_day - self.store.recorded_since(midnight), 0)


def _kind(
    base: str, said: list[Said], escalated: tuple[float, int] | None, reviewer: Reviewer
) -> str | None:
    """The module's table, for one listing (its case kind, its verdicts oldest first, its
    latest escalation) and one reviewer."""
    if not said and escalated is None:
        return base  # most cases: nobody has said anything yet
    senior = reviewer.role == "senior"
    parties = {s.reviewer for s in said if s.reviewer is not None}
    settled = max((s.at_s for s in said if s.kind in SENIOR_KINDS), default=None)
    if escalated is not None and (settled is None or settled < escalated[0]):
        return "escalated" if senior and reviewer.id != escalated[1] else None
    if len({s.verdict for s in said}) > 1 and not (said and said[-1].kind in SENIOR_KINDS):
        return "disagreement" if senior and reviewer.id not in parties else None
    if reviewer.id in parties:
        return None  # nobody judges a listing twice
    if not said:
        return base
    return "second opinion" if base == "audit" and len(said) == 1 else None


def _parse_time(value: Any) -> float:
    """An ISO time as POSIX seconds (naive: UTC; unreadable: now, so it is not lost)."""
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return time.time()
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def _probability_and_price(record: dict[str, Any]) -> tuple[float, float]:
    p = float(record.get("probability") or 0.0)
    return p, float((record.get("features") or {}).get("asking_price") or 0.0)
