"""Who said what of each listing, as of now: the queue's memory of verdicts and escalations.

Two sources, both append-only, so each is read incrementally:

* the label store (the marketplace's ``verdicts``): every expert's verdicts, the simulator's
  and the console's, each counted from its arrival (``created_at``). New parts are read when
  they appear (the folder is listed every ``refresh_s``); a row that has not arrived yet (a
  simulated world's future) waits in a heap until the clock passes it;
* the console's database: its verdicts (with the reviewer and the kind of case) and its
  escalations, read row by row as they are recorded, at every call.

One entry per verdict id: a console verdict is in both, and the console's entry (which knows
the reviewer) wins. A crash between the label write and the console's commit leaves a label the
console does not list; it still counts here, so its case is not offered again.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from couturier.domains.authentication.review._store import ReviewStore
from couturier.marketplace import Marketplace

__all__ = ["Known", "Said"]


@dataclass(frozen=True)
class Said:
    """One verdict: when it arrived (POSIX seconds), what, and, from the console, who
    (reviewer id) and on which kind of case; ``None`` for the label store's other experts."""

    at_s: float
    verdict: str
    reviewer: int | None = None
    kind: str | None = None


class Known:
    """The verdicts and escalations known now (``clock``), per listing."""

    def __init__(
        self,
        market: Callable[[], Marketplace | None],
        store: ReviewStore,
        clock: Callable[[], datetime],
        refresh_s: float = 5.0,
    ) -> None:
        self.market, self.store, self.clock, self.refresh_s = market, store, clock, refresh_s
        self._labels: dict[int, dict[int, Said]] = defaultdict(dict)
        self._console: dict[int, dict[int, Said]] = defaultdict(dict)
        self._escalated: dict[int, tuple[float, int]] = {}  # listing -> (at, reviewer), latest
        self._pending: list[tuple[float, int, int, str]] = []  # (at, listing, verdict_id, verdict)
        self._parts: set[Path] = set()
        self._listing_parts = -1
        self._listed_at = -float("inf")
        self._last_verdict = self._last_escalation = 0
        self.mean_price = 0.0
        self._lock = threading.Lock()

    def refresh(self) -> None:
        """Catch up with both sources (cheap when nothing is new)."""
        with self._lock:
            now = self.clock().timestamp()
            if time.monotonic() - self._listed_at >= self.refresh_s:
                self._read_label_store(now)
                self._listed_at = time.monotonic()
            while self._pending and self._pending[0][0] <= now:
                at, listing, verdict_id, verdict = heapq.heappop(self._pending)
                self._labels[listing][verdict_id] = Said(at, verdict)
            for seq, verdict_id, listing, reviewer, verdict, kind, when in self.store.said_since(
                self._last_verdict
            ):
                self._console[listing][verdict_id] = Said(_seconds(when), verdict, reviewer, kind)
                self._last_verdict = seq
            for seq, listing, reviewer, when in self.store.escalations_since(self._last_escalation):
                self._escalated[listing] = (_seconds(when), reviewer)
                self._last_escalation = seq

    def _read_label_store(self, now: float) -> None:
        market = self.market()
        if market is None:
            return
        for part in sorted(set(market.parts("verdicts")) - self._parts):
            rows = pq.read_table(
                part, columns=["verdict_id", "listing_id", "verdict", "created_at"]
            )
            for verdict_id, listing, verdict, at_us in zip(
                rows.column("verdict_id").to_pylist(),
                rows.column("listing_id").to_pylist(),
                rows.column("verdict").to_pylist(),
                rows.column("created_at").cast(pa.int64()).to_pylist(),  # microseconds, UTC
                strict=True,
            ):
                at = at_us / 1e6
                if at <= now:
                    self._labels[listing][verdict_id] = Said(at, verdict)
                else:
                    heapq.heappush(self._pending, (at, listing, verdict_id, verdict))
            self._parts.add(part)
        listing_parts = market.parts("listings")
        if len(listing_parts) != self._listing_parts:  # the price scale of a review's value
            prices = market.read("listings", ["asking_price"])["asking_price"]
            self.mean_price = float(prices.mean()) if len(prices) else 0.0
            self._listing_parts = len(listing_parts)

    def said(self, listing_id: int) -> list[Said]:
        """Every verdict on ``listing_id`` known now, oldest first."""
        return self.reader()[0](listing_id)

    def reader(
        self,
    ) -> tuple[Callable[[int], list[Said]], Callable[[int], tuple[float, int] | None]]:
        """Look-ups for one pass over many listings, without a lock per listing: the verdicts
        on a listing (oldest first), and its latest escalation (when, by which reviewer)."""
        with self._lock:
            labels, console, escalated = self._labels, self._console, dict(self._escalated)
        none: dict[int, Said] = {}

        def said(listing_id: int) -> list[Said]:
            theirs, ours = labels.get(listing_id), console.get(listing_id)
            if not theirs and not ours:
                return []
            merged = {**(theirs or none), **(ours or none)}
            return sorted(merged.values(), key=lambda s: s.at_s)

        return said, escalated.get

    def judged(self) -> Iterator[tuple[int, list[Said]]]:
        """Every listing with a verdict, with its verdicts (for the throughput page)."""
        with self._lock:
            listings = set(self._labels) | set(self._console)
        for listing in listings:
            yield listing, self.said(listing)


def _seconds(iso: str) -> float:
    parsed = datetime.fromisoformat(iso)
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
