"""What monitoring watches of authentication, and the random audit sample.

The served ``authentication`` graph logs every decision to the ``authentication`` stream
(``service.py``): the listing model's inputs, the request's ids, the photos' mean embedding,
the probability and the decision. Labels are the experts' verdicts, counted from when they
arrived (``created_at``), never from when they were decided.

**The audit sample.** Experts see the listings the policy flags (``review``, ``counterfeit``)
first, so at any moment the labelled listings over-represent high scores, and performance
measured on them alone is biased. A small uniform random sample (``AUDIT_RATE`` of listings,
by a hash of the id: reproducible, and independent of the score) is sent to experts whatever
its score; monitoring weights each labelling route (flagged, audit, the rest) by its label
coverage, so the audit is what makes the unflagged majority visible.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd

from couturier.domains.authentication.features import FEATURES
from couturier.monitoring import AlertPolicy, Watch

if TYPE_CHECKING:
    from couturier.marketplace import Marketplace

__all__ = ["AUDIT_RATE", "WATCH", "in_audit_sample"]

#: share of listings sent to an expert whatever their score
AUDIT_RATE = 0.02
#: Drift is watched on what describes the listing and its seller. Running totals (a seller's
#: sales, verdicts, account age) grow with time by construction, and a house's or a product's
#: aggregates are one point mass per entity that moves as its window fills: measured on the
#: first replay, brand_listings_30d alone read PSI 2.3 on an unchanged world. They stay in the
#: log and the listing model; they are not signals of the world changing.
WATCHED = (
    "asking_price",
    "price_ratio",
    "log_price_ratio",
    "n_photos",
    "condition_rank",
    "title_length",
    "description_length",
    "serial_stated",
    "serial_malformed",
    "rating",
    "listings_7d",
    "new_seller",
    "seller_counterfeit_rate",
    "price_vs_recent_mean",
)
NUMERIC = tuple(f"features.{name}" for name in WATCHED)
if missing := set(WATCHED) - {f.name for _, f in FEATURES.all_fields}:
    raise ImportError(f"the watch names features the feature set lacks: {sorted(missing)}")


def in_audit_sample(listing_id: int, rate: float = AUDIT_RATE) -> bool:
    """Whether ``listing_id`` is in the uniform random audit sample (a hash: no state)."""
    digest = hashlib.blake2b(listing_id.to_bytes(8, "little", signed=False), digest_size=8)
    return int.from_bytes(digest.digest(), "little") / 2**64 < rate


def stratum(record: Mapping[str, Any]) -> str:
    """The labelling route a decision took."""
    if record.get("decision") in ("review", "counterfeit"):
        return "flagged"
    return "audit" if record.get("audit") else "rest"


def labels(market: Marketplace) -> pd.DataFrame:
    """The experts' verdicts as labels: counterfeit = 1, from when each arrived."""
    v = market.read("verdicts", columns=["listing_id", "verdict", "created_at"])
    v = v.sort_values("created_at", kind="stable")
    return pd.DataFrame(
        {
            "key": v["listing_id"].to_numpy(),
            "label": (v["verdict"] == "counterfeit").astype(int).to_numpy(),
            "arrived_at": v["created_at"].to_numpy(),
        }
    )


def listing_ids(market: Marketplace) -> Collection[int]:
    ids = market.read("listings", columns=["listing_id"])["listing_id"]
    return frozenset(int(i) for i in ids.tolist())


WATCH = Watch(
    model="authentication",
    stream="authentication",
    key="listing_id",
    score="probability",
    numeric=NUMERIC,
    categorical=("listing.brand_id", "listing.category"),
    embedding="embedding",
    degraded="degraded",
    version="models.authentication",
    stratum=stratum,
    labels=labels,
    keys=listing_ids,
    maturity_days=10.0,  # the simulator's label delay: p50 4 days, p90 7.6
    reference_days=7,
    # A young marketplace's seller mix moves on its own: on 30 replayed days of an unchanged
    # world, listings_7d read PSI 0.19-0.21 and seller_counterfeit_rate 0.24-0.29 on some days,
    # and the share of sellers without a rating went 6% -> 15% (h 0.29): two false alarms.
    # The conventional "significant" floors keep them below alarm.
    min_psi=0.25,
    min_missing_h=0.5,
    alerts=AlertPolicy(window=3, need=2, tolerance=0.10),
)
