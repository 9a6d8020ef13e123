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
``disagreement``   two verdicts disagree, and no senior has decided             seniors
``escalated``      a reviewer handed it on without a verdict                    seniors
=================  ==========================================================  ============

Verdicts count from the label store (the marketplace's, as of now) and from the console.

Order: cases past the service-level target (``sla_h`` since the decision) first, oldest first;
then by the expected value of a review, highest first: the expected cost of the model's best
automatic decision that an expert's verdict saves, scaled by the item's price against the
average price, less the review's cost::

    value = min(p * missed_counterfeit, (1 - p) * wrong_rejection) * price / mean_price - review

A senior sees disagreements and escalations before everything else.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from couturier.domains.authentication.decision import CostModel
from couturier.domains.authentication.review._store import (
    CONSOLE_VERDICT_BASE,
    Reviewer,
    ReviewStore,
)
from couturier.marketplace import Marketplace
from couturier.serving import LatestDecisions

__all__ = ["SENIOR_KINDS", "Case", "ReviewQueue"]

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
    kind: str | None  # review, audit, or None (neither)
    value: float
    at_s: float  # when it was scored, POSIX seconds


@dataclass
class _Verdicts:
    """Who said what of each listing: the label store's and the console's."""

    values: dict[int, list[str]]
    by: dict[int, set[int]]  # listing -> console reviewer ids
    senior: set[int]  # listings a senior decided in the console


class ReviewQueue:
    """The open cases, from the prediction log (``board``), the label store (``market``) and
    the console's store. ``clock`` is now (a replay's simulated time, or the wall clock)."""

    def __init__(
        self,
        *,
        board: LatestDecisions,
        market: Callable[[], Marketplace | None],
        store: ReviewStore,
        clock: Callable[[], datetime],
        cost: CostModel | None = None,
        sla_h: float = 24.0,
        capacity_per_day: int = 200,
        refresh_s: float = 30.0,
    ) -> None:
        self.board, self.market, self.store, self.clock = board, market, store, clock
        self.cost = cost or CostModel()
        self.sla_h, self.capacity_per_day, self.refresh_s = sla_h, capacity_per_day, refresh_s
        self._labels: dict[int, list[str]] = {}
        self._labels_at = -float("inf")
        self._mean_price = 0.0
        self._scores: dict[int, _Scored] = {}
        self._lock = threading.Lock()

    # -- what is known -----------------------------------------------------------------------

    def _label_store(self) -> dict[int, list[str]]:
        """The label store's verdicts by listing (the console's own excluded: they are counted
        from its database, at once), read again every ``refresh_s``."""
        with self._lock:
            if time.monotonic() - self._labels_at < self.refresh_s:
                return self._labels
            market = self.market()
            labels: dict[int, list[str]] = defaultdict(list)
            if market is not None:
                v = market.at(self.clock()).read(
                    "verdicts", ["verdict_id", "listing_id", "verdict"]
                )
                v = v[v["verdict_id"] < CONSOLE_VERDICT_BASE]
                for listing, verdict in zip(v["listing_id"], v["verdict"], strict=True):
                    labels[int(listing)].append(str(verdict))
                prices = market.read("listings", ["asking_price"])["asking_price"]
                mean = float(prices.mean()) if len(prices) else 0.0
                if mean != self._mean_price:
                    self._mean_price = mean
                    self._scores.clear()  # the values were scaled by the old mean
            self._labels, self._labels_at = dict(labels), time.monotonic()
            return self._labels

    def _verdicts(self) -> _Verdicts:
        values = {k: list(v) for k, v in self._label_store().items()}
        by: dict[int, set[int]] = defaultdict(set)
        senior: set[int] = set()
        for listing, reviewer, verdict, kind in self.store.said():
            values.setdefault(listing, []).append(verdict)
            by[listing].add(reviewer)
            if kind in SENIOR_KINDS:
                senior.add(listing)
        return _Verdicts(values, by, senior)

    def all_verdicts(self) -> dict[int, list[str]]:
        """Every verdict value by listing, the label store's and the console's."""
        return self._verdicts().values

    def record(self, listing_id: int) -> dict[str, Any] | None:
        """The newest prediction-log record of ``listing_id`` (None: never scored)."""
        return self.board.get(listing_id)

    # -- the queue ---------------------------------------------------------------------------

    def cases(self, reviewer: Reviewer, limit: int | None = None) -> Queue:
        """The cases ``reviewer`` may work, best first (held ones included, marked); the first
        ``limit`` of them (all: None) as :class:`Case`."""
        records = self.board.snapshot()
        known = self._verdicts()
        escalated = self.store.escalated()
        now = self.clock()
        now_s, sla_s = now.timestamp(), self.sla_h * 3600
        senior_first = reviewer.role == "senior"
        ranked = []
        for key, record in records.items():
            if not isinstance(key, int):
                continue
            scored = self._scored(key, record)
            if scored.kind is None and key not in escalated and key not in known.values:
                continue  # the common case of a listing nobody needs to see: no more work
            kind = self._kind(key, scored.kind, known, escalated, reviewer)
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

    def _scored(self, listing_id: int, record: dict[str, Any]) -> _Scored:
        """What a record says that does not change: computed once per record."""
        cached = self._scores.get(listing_id)
        if cached is not None and cached.record is record:
            return cached
        kind = "review" if record.get("decision") == "review" else None
        kind = kind or ("audit" if record.get("audit") else None)
        p, price = _probability_and_price(record)
        scored = _Scored(record, kind, self._value(p, price), _parse_time(record.get("at")))
        self._scores[listing_id] = scored
        return scored

    def _value(self, p: float, price: float) -> float:
        """The expected value of a review, EUR (the module's formula)."""
        scale = price / self._mean_price if self._mean_price > 0 and price > 0 else 1.0
        cost = self.cost
        value = min(p * cost.missed_counterfeit, (1 - p) * cost.wrong_rejection) * scale
        return round(value - cost.review, 2)

    def _kind(
        self,
        listing_id: int,
        base: str | None,
        known: _Verdicts,
        escalated: dict[int, str],
        reviewer: Reviewer,
    ) -> str | None:
        said = known.values.get(listing_id, [])
        senior = reviewer.role == "senior"
        if listing_id in escalated and listing_id not in known.senior:
            return "escalated" if senior else None
        if len(set(said)) > 1:
            return "disagreement" if senior and listing_id not in known.senior else None
        if reviewer.id in known.by.get(listing_id, set()):
            return None  # nobody judges a listing twice
        if base == "review":
            return "review" if not said else None
        if base == "audit":
            return "audit" if not said else "second opinion" if len(said) == 1 else None
        return None

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

    def case(self, reviewer: Reviewer, listing_id: int) -> Case | None:
        """``listing_id`` as a case of ``reviewer``'s (None: not one of theirs to work)."""
        record = self.board.get(listing_id)
        if record is None:
            return None
        base = self._scored(listing_id, record).kind
        kind = self._kind(listing_id, base, self._verdicts(), self.store.escalated(), reviewer)
        if kind is None:
            return None
        return self._case(listing_id, kind, record, self.clock(), self.store.held().get(listing_id))

    def capacity_left(self) -> int:
        """Reviews still in today's capacity (UTC day of the clock)."""
        now = self.clock()
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        return max(self.capacity_per_day - self.store.recorded_since(midnight), 0)

    def forget_labels(self) -> None:
        """Read the label store again on the next call (after the console wrote to it)."""
        with self._lock:
            self._labels_at = -float("inf")


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
