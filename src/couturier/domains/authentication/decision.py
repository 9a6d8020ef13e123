"""From a calibrated probability to a decision: authentic, review, or counterfeit.

The thresholds come from a cost model: a missed counterfeit costs far more than an expert's
review, and a wrongly rejected authentic item costs a seller's trust. Without a capacity limit
the Bayes-optimal rule sends a listing to review when reviewing is cheaper than either
mistake's expected cost::

    review  iff  review_cost < min(p * missed_cost, (1 - p) * rejection_cost)

With the experts' daily capacity, the review band is narrowed, on held-out predictions, to the
cheapest pair of thresholds whose review share fits the capacity.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from couturier.errors import InvalidInputError

__all__ = ["CostModel", "DecisionPolicy", "expected_cost_per_1000", "fit_policy"]

Decision = Literal["authentic", "review", "counterfeit"]


@dataclass(frozen=True)
class CostModel:
    """Costs in EUR per listing, and the experts' capacity (None: unlimited)."""

    missed_counterfeit: float = 600.0
    wrong_rejection: float = 150.0
    review: float = 10.0
    review_share_capacity: float | None = 0.08  # reviews per day / listings per day

    def __post_init__(self) -> None:
        for name in ("missed_counterfeit", "wrong_rejection", "review"):
            if getattr(self, name) < 0:
                raise InvalidInputError(f"{name}={getattr(self, name)}: costs are >= 0", field=name)
        cap = self.review_share_capacity
        if cap is not None and not 0 <= cap <= 1:
            raise InvalidInputError(
                f"review_share_capacity={cap}: a share in [0, 1]", field="review_share_capacity"
            )


@dataclass(frozen=True)
class DecisionPolicy:
    review_above: float
    counterfeit_above: float

    def decide(self, p: Any) -> np.ndarray:
        q = np.asarray(p, dtype=float)
        return np.where(
            q > self.counterfeit_above,
            "counterfeit",
            np.where(q > self.review_above, "review", "authentic"),
        )

    def as_thresholds(self) -> dict[str, float]:
        return {"review": self.review_above, "counterfeit": self.counterfeit_above}

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def expected_cost_per_1000(p: Any, y: Any, policy: DecisionPolicy, cost: CostModel) -> float:
    """Cost per 1,000 listings when experts judge the reviews correctly."""
    return decision_cost_per_1000(policy.decide(p), y, cost)


def decision_cost_per_1000(decision: Any, y: Any, cost: CostModel) -> float:
    """Cost per 1,000 listings of ``decision`` (authentic / review / counterfeit, per listing)
    against the truth ``y``, when experts judge the reviews correctly."""
    decision = np.asarray(decision)
    fake = np.asarray(y).astype(bool)
    total = (
        cost.missed_counterfeit * np.sum(fake & (decision == "authentic"))
        + cost.wrong_rejection * np.sum(~fake & (decision == "counterfeit"))
        + cost.review * np.sum(decision == "review")
    )
    return float(1000.0 * total / max(len(fake), 1))


def fit_policy(p: Any, y: Any, cost: CostModel, grid: int = 200) -> DecisionPolicy:
    """The cheapest thresholds on held-out (p, y) whose review share fits the capacity."""
    q = np.asarray(p, dtype=float)
    fake = np.asarray(y).astype(bool)
    if q.shape != fake.shape or q.ndim != 1 or len(q) == 0:
        raise InvalidInputError("p and y must be equal-length, non-empty 1-d arrays", field="p")
    low = cost.review / cost.missed_counterfeit if cost.missed_counterfeit else 1.0
    high = 1.0 - (cost.review / cost.wrong_rejection if cost.wrong_rejection else 0.0)
    bayes = DecisionPolicy(min(low, high), max(low, high))
    cap = cost.review_share_capacity
    if cap is None or np.mean(bayes.decide(q) == "review") <= cap:
        return bayes
    # capacity binds: search threshold pairs (quantiles of p) with review share <= cap
    order = np.argsort(q)
    qs, fs = q[order], fake[order]
    n = len(qs)
    cum_fake = np.concatenate([[0], np.cumsum(fs)])
    cum_auth = np.concatenate([[0], np.cumsum(~fs)])
    cuts = np.unique(np.linspace(0, n, grid + 1).astype(int))
    i, j = np.meshgrid(cuts, cuts, indexing="ij")
    ok = (j >= i) & ((j - i) <= cap * n)
    total = (
        cost.missed_counterfeit * cum_fake[i]
        + cost.review * (j - i)
        + cost.wrong_rejection * (cum_auth[n] - cum_auth[j])
    )
    total = np.where(ok, total, np.inf)
    bi, bj = np.unravel_index(np.argmin(total), total.shape)
    a, b = int(i[bi, bj]), int(j[bi, bj])

    def between(k: int) -> float:  # a threshold between sorted scores k-1 and k
        if k <= 0:
            return float(np.nextafter(qs[0], -np.inf))
        if k >= n:
            return float(qs[-1])
        return float((qs[k - 1] + qs[k]) / 2)

    return DecisionPolicy(between(a), between(b))
