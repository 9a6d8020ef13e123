"""The review console: experts work the authentication queue in a browser (``/review``), and
every verdict becomes a label.

``couturier serve`` mounts it with the domain's other routes. Reviewers are added with
``couturier authentication reviewer add NAME [--role senior]``. Its state (reviewers, leases,
the console's verdicts and notes) is a SQLite file under ``$COUTURIER_HOME/review``; the labels
go to the marketplace's ``verdicts`` and ``control_points`` tables, where the simulator's experts'
verdicts are. See docs/review.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from couturier.domains.authentication.review._auth import Sessions
from couturier.domains.authentication.review._cases import CaseFiles
from couturier.domains.authentication.review._form import parse_verdict
from couturier.domains.authentication.review._known import Known
from couturier.domains.authentication.review._pages import Console, console_router
from couturier.domains.authentication.review._queue import FIELDS, Case, ReviewQueue, is_case
from couturier.domains.authentication.review._store import Reviewer, ReviewStore
from couturier.marketplace import MANIFEST, Marketplace

if TYPE_CHECKING:
    from couturier.serving import ServiceContext
    from couturier.settings import Settings

__all__ = [
    "Case",
    "Console",
    "ReviewConfig",
    "ReviewQueue",
    "ReviewStore",
    "Reviewer",
    "build_console",
    "mount_review",
    "parse_verdict",
    "store_path",
]


@dataclass(frozen=True)
class ReviewConfig:
    """``lease_s``: a case stays held this long after the last sign of life from its page;
    ``sla_h``: the service-level target, hours from the model's decision to a verdict;
    ``capacity_per_day``: verdicts the team can give a day."""

    lease_s: float = 300.0
    sla_h: float = 24.0
    capacity_per_day: int = 200


def store_path(settings: Settings) -> Path:
    return settings.paths.home / "review" / "authentication.db"


class _Market:
    """The marketplace the server reads, opened when it exists (a demo may come later)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._market: Marketplace | None = None

    def __call__(self) -> Marketplace | None:
        if self._market is None and (self.path / MANIFEST).is_file():
            self._market = Marketplace(self.path)
        return self._market


def build_console(context: ServiceContext, config: ReviewConfig | None = None) -> Console:
    config = config or ReviewConfig()
    store = ReviewStore(store_path(context.settings), lease_s=config.lease_s)
    market = _Market(context.settings.active_marketplace)
    board = context.decisions("authentication", key="listing_id", fields=FIELDS, keep=is_case)
    queue = ReviewQueue(
        board=board,
        known=Known(market, store, context.clock),
        store=store,
        clock=context.clock,
        sla_h=config.sla_h,
        capacity_per_day=config.capacity_per_day,
    )
    recorded = Counter(
        "couturier_review_verdicts",
        "verdicts recorded in the review console, by kind of case and verdict",
        ["kind", "verdict"],
        registry=context.metrics.registry,
    )
    context.metrics.registry.register(_QueueMetrics(queue))
    cases = CaseFiles(
        market, store, context.clock, on_recorded=lambda v: recorded.labels(v.kind, v.verdict).inc()
    )
    return Console(store, queue, cases, Sessions(store.secret))


def mount_review(context: ServiceContext, config: ReviewConfig | None = None) -> APIRouter:
    """The console's routes (``/review``), for the domain's ``pages`` hook."""
    if context.settings.profile == "production":
        return _unavailable()
    console = build_console(context, config)
    console.queue.board.catch_up()  # read the log's history now, not on the first page
    return console_router(console)


class _QueueMetrics(Collector):
    """The queue's size at each scrape: open cases and those past the service-level target."""

    def __init__(self, queue: ReviewQueue) -> None:
        self.queue = queue

    def collect(self) -> Iterator[Metric]:
        view = self.queue.cases(_EVERYONE, limit=0)
        yield GaugeMetricFamily(
            "couturier_review_open_cases", "cases waiting for a verdict", value=view.total
        )
        yield GaugeMetricFamily(
            "couturier_review_overdue_cases",
            "cases waiting past the service-level target",
            value=view.overdue,
        )


#: sees every case (the metrics', the throughput page's view)
_EVERYONE = Reviewer(-1, "", "senior")


def _unavailable() -> APIRouter:
    """The production profile's console: not yet (its store is one machine's SQLite file)."""
    api = APIRouter(prefix="/review", include_in_schema=False)

    @api.get("")
    def review() -> HTMLResponse:
        return HTMLResponse(
            "<h1>The review console is not available in the production profile yet</h1><p>Its "
            "leases and verdicts are kept in one machine's SQLite file, which replicas on "
            "several machines cannot share; it needs a shared database (docs/review.md).</p>",
            status_code=503,
        )

    return api
