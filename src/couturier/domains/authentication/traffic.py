"""Authentication in a replay: each new listing is a ``POST /v1/authenticate`` with its photos,
and a day's answers are judged against the simulator's truth (PR-AUC, recall at 1% FPR and the
cost of the decisions actually served)."""

from __future__ import annotations

import base64
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np

from couturier.domains.authentication.decision import CostModel, decision_cost_per_1000
from couturier.evaluation import recall_at_fpr
from couturier.replay import Answer, ReplayRequest, Traffic

if TYPE_CHECKING:
    from couturier.marketplace import Marketplace

__all__ = ["TRAFFIC"]

_LISTING = ["listing_id", "seller_id", "product_id", "brand_id", "category", "created_at"]


def requests(market: Marketplace, start: datetime, end: datetime) -> Iterator[ReplayRequest]:
    """The listings that arrived in ``[start, end)``, oldest first, with their photos."""
    listings = market.read("listings", columns=_LISTING)
    day = listings[(listings["created_at"] >= start) & (listings["created_at"] < end)]
    day = day.sort_values("created_at", kind="stable")
    if day.empty:
        return
    ids = set(day["listing_id"].tolist())
    photos: dict[int, list[dict[str, str]]] = {}
    for part in market.iter_parts(
        "photos", ["listing_id", "position", "view", "image", "created_at"]
    ):
        part = part[part["listing_id"].isin(ids) & (part["created_at"] < end)].sort_values(
            "position"
        )
        for lid, view, image in zip(part["listing_id"], part["view"], part["image"], strict=True):
            photos.setdefault(int(lid), []).append(
                {"view": str(view), "data": base64.b64encode(image).decode()}
            )
    for row in day.to_dict("records"):
        lid = int(row["listing_id"])
        body = {
            "listing_id": lid,
            "seller_id": int(row["seller_id"]),
            "product_id": int(row["product_id"]),
            "brand_id": int(row["brand_id"]),
            "category": str(row["category"]),
            "photos": photos.get(lid, [])[:4],
        }
        if body["photos"]:
            yield ReplayRequest("/v1/authenticate", body, row["created_at"].to_pydatetime(), lid)


def outcome(market: Marketplace, answers: Sequence[Answer]) -> dict[str, float]:
    """Quality of the answers served, against the truth."""
    from sklearn.metrics import average_precision_score

    ok = [a for a in answers if a.status == 200]
    if not ok:
        return {"answered": 0.0}
    truth = market.read("truth", columns=["listing_id", "is_counterfeit"]).set_index("listing_id")
    keys = [a.request.key for a in ok]
    y = truth.loc[keys, "is_counterfeit"].to_numpy().astype(bool)
    p = np.array([a.body["probability"] for a in ok])
    decision = np.array([a.body["decision"] for a in ok])
    has_both = 0 < y.sum() < len(y)
    return {
        "answered": float(len(ok)),
        "positives": float(y.sum()),
        "pr_auc": float(average_precision_score(y, p)) if has_both else float("nan"),
        "recall_at_1pct_fpr": float(recall_at_fpr(y, p, 0.01)) if has_both else float("nan"),
        "expected_cost_per_1000": decision_cost_per_1000(decision, y, CostModel()),
        "review_share": float(np.mean(decision == "review")),
        "degraded_share": float(np.mean([bool(a.body.get("degraded")) for a in ok])),
    }


TRAFFIC = Traffic(model="authentication", requests=requests, outcome=outcome)
