"""A world for the review console: a small simulated marketplace, the prediction-log records
``/v1/authenticate`` would have written for some of its listings, and a server over both.

The records are written in the service's own schema (decision, probability, audit, control
points with their photo, evidence, model versions, features) without training a model: the
console reads the log, it does not score. The clock stands just before the first simulated
verdict arrives, so no listing has a verdict yet unless a test gives it one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from couturier.domain import Domain
from couturier.marketplace import CONTROL_POINTS, Marketplace, SimulationConfig, simulate
from couturier.registry import ModelRegistry
from couturier.serving import ModelRepository, create_app
from couturier.settings import Settings

__all__ = [
    "PASSWORD",
    "ReviewWorld",
    "csrf_of",
    "lease_of",
    "scored_record",
    "signed_in",
    "write_records",
]

PASSWORD = "correct horse battery"


def scored_record(
    listing: Mapping[Any, Any],
    photos: Sequence[Mapping[Any, Any]],
    *,
    decision: str,
    probability: float,
    audit: bool,
    at: datetime,
    references: list[dict[str, Any]],
) -> dict[str, Any]:
    """What ``/v1/authenticate`` logs for a listing (the fields the console reads)."""
    rng = np.random.default_rng(int(listing["listing_id"]))
    views = [str(p["view"]) for p in photos]
    points = []
    for point in CONTROL_POINTS:
        shown = [i for i, v in enumerate(views) if v in point.views]
        if shown:
            points.append(
                {
                    "point": point.name,
                    "label": point.label,
                    "suspicion": float(rng.normal()),
                    "photo": shown[0],
                }
            )
    return {
        "request_id": f"r{listing['listing_id']}",
        "listing_id": int(listing["listing_id"]),
        "decision": decision,
        "probability": probability,
        "audit": audit,
        "at": at.isoformat(),
        "photos": [
            {"view": v, "logit": float(rng.normal()), "retrieval_score": 0.1} for v in views
        ],
        "control_points": sorted(points, key=lambda c: -c["suspicion"]),
        "evidence": references,
        "models": {"authentication": 1, "authentication-image": 1, "authentication-listing": 1},
        "degraded": {},
        "listing": {
            k: (int(listing[k]) if k.endswith("_id") else str(listing[k]))
            for k in ("listing_id", "seller_id", "product_id", "brand_id", "category")
        },
        "features": {"asking_price": float(listing["asking_price"])},
    }


def write_records(
    home: Path,
    market: Marketplace,
    listings: Sequence[Mapping[Any, Any]],
    *,
    decision: str,
    clock: datetime,
    audit: bool = False,
) -> None:
    """Append to ``home``'s authentication log a record of each of ``listings``, scored 2 h
    and more before ``clock`` (3 h apart), with varied probabilities and three references."""
    photos = market.lookup(
        "photos",
        "listing_id",
        [int(r["listing_id"]) for r in listings],
        ["photo_id", "listing_id", "view"],
    )
    by_listing = {k: g.sort_values("photo_id") for k, g in photos.groupby("listing_id")}
    reference = photos.head(3)
    references = [
        {"photo_id": int(p), "listing_id": int(lid), "verdict": v, "similarity": 0.9 - 0.1 * i}
        for i, (p, lid, v) in enumerate(
            zip(
                reference["photo_id"],
                reference["listing_id"],
                ["authentic", "counterfeit", "authentic"],
                strict=False,
            )
        )
    ]
    folder = home / "predictions" / "authentication"
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / f"predictions-{clock.date().isoformat()}.jsonl").open("a") as f:
        for i, row in enumerate(listings):
            mine = by_listing.get(row["listing_id"], photos.iloc[:0])
            record = scored_record(
                row,
                mine.to_dict("records"),
                decision=decision,
                probability=0.2 + 0.6 * ((i * 37) % 100) / 100,
                audit=audit,
                at=clock - timedelta(hours=2 + 3 * (i % 20)),
                references=references,
            )
            f.write(json.dumps(record) + "\n")


@dataclass
class ReviewWorld:
    """``cases``: listing ids sent to review; ``audits``: listing ids drawn for the audit."""

    settings: Settings
    market: Marketplace
    clock: datetime
    cases: list[int]
    audits: list[int]

    @classmethod
    def build(
        cls, folder: Path, *, listings: int = 300, review: int = 12, audit: int = 3
    ) -> ReviewWorld:
        market = simulate(
            SimulationConfig.of(listings=listings, days=20, chunk_size=listings),
            folder / "market",
            workers=1,
        )
        first_verdict = market.read("verdicts", ["created_at"])["created_at"].min()
        clock = (first_verdict - timedelta(minutes=1)).to_pydatetime()
        settings = Settings(home=folder / "home", marketplace_run=folder / "market")
        rows = market.read("listings")
        rows = rows[rows["created_at"] <= clock].sort_values("listing_id")
        world = cls(settings, market, clock, [], [])
        chosen = rows.head(review + audit).to_dict("records")
        world.cases = [int(r["listing_id"]) for r in chosen[:review]]
        world.audits = [int(r["listing_id"]) for r in chosen[review:]]
        world.log(chosen[:review], decision="review")
        world.log(chosen[review:], decision="authentic", audit=True)
        return world

    def log(
        self, listings: Sequence[Mapping[Any, Any]], *, decision: str, audit: bool = False
    ) -> None:
        """Append the service's records of ``listings`` to the prediction log."""
        write_records(
            self.settings.home,
            self.market,
            listings,
            decision=decision,
            clock=self.clock,
            audit=audit,
        )

    def prior_verdict(self, listing_id: int, verdict: str) -> None:
        """An expert's verdict from an hour before the clock, already in the label store."""
        when = pd.Timestamp(self.clock - timedelta(hours=1))
        row = {"verdict_id": 10**9 + listing_id, "listing_id": listing_id, "expert_id": 3,
               "verdict": verdict, "decided_at": when, "created_at": when}  # fmt: skip
        self.market.append("verdicts", pd.DataFrame([row]))

    def app(self, clock: Callable[[], datetime] | None = None) -> Any:
        from couturier.domain import get_domain

        domain: Domain = get_domain("authentication")
        return create_app(
            ModelRepository(),
            registry=lambda: ModelRegistry(self.settings),
            follow=False,
            domains=[domain],
            settings=self.settings,
            clock=clock or (lambda: self.clock),
        )

    def add_reviewer(self, name: str, role: str = "reviewer") -> None:
        from couturier.domains.authentication.review import ReviewStore, store_path

        store = ReviewStore(store_path(self.settings))
        try:
            store.add_reviewer(name, PASSWORD, role)
        finally:
            store.close()

    def labels(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The label store's rows the console wrote (verdicts, control points)."""
        from couturier.domains.authentication.review._store import CONSOLE_VERDICT_BASE

        v = self.market.read("verdicts")
        c = self.market.read("control_points")
        return (
            v[v["verdict_id"] >= CONSOLE_VERDICT_BASE].reset_index(drop=True),
            c[c["verdict_id"] >= CONSOLE_VERDICT_BASE].reset_index(drop=True),
        )


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def lease_of(html: str) -> str:
    found = re.search(r'name="lease" value="([^"]+)"', html)
    assert found, "no lease on the page"
    return found.group(1)


@contextmanager
def signed_in(url: str, name: str) -> Iterator[Any]:
    """A requests session signed in as ``name``."""
    import requests

    s = requests.Session()
    page = s.get(f"{url}/review/login", timeout=10)
    token = re.search(r'name="token" value="([^"]+)"', page.text)
    assert token
    r = s.post(
        f"{url}/review/login",
        data={"token": token.group(1), "name": name, "password": PASSWORD},
        timeout=10,
    )
    assert r.status_code == 200 and "Queue" in r.text, r.text[:500]
    try:
        yield s
    finally:
        s.close()
