"""The seams of monitoring: what a drift detector is, and the results every check returns.

Results are frozen dataclasses so that a monitoring job can log, compare and serialize them
without fearing that a later step changed them; intervals are ``Interval(value, low, high)``
with NaN bounds when a cohort is too small or degenerate to say anything.

>>> Interval(0.81, 0.77, 0.85).contains(0.8)
True
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol, Self, TypeVar, runtime_checkable

import numpy as np

__all__ = [
    "CohortPerformance",
    "DriftDetector",
    "DriftResult",
    "EmbeddingDriftResult",
    "EstimatedPerformance",
    "Interval",
    "LabelWeights",
    "Statistic",
]

Statistic = Literal["psi", "wasserstein", "jensen_shannon"]

ResultT_co = TypeVar("ResultT_co", covariant=True)


@runtime_checkable
class DriftDetector(Protocol[ResultT_co]):
    """What plugs in as a drift detector: the scikit-learn contract, scoring one batch.

    Configuration goes to ``__init__``; ``fit`` learns the reference (state in attributes that
    end in ``_``) and returns the detector; ``score`` compares a current batch with it.
    """

    def fit(self, reference: Any) -> Self: ...

    def score(self, current: Any) -> ResultT_co: ...


@dataclass(frozen=True)
class Interval:
    """A point estimate and its 95% interval; all three are NaN when nothing can be said."""

    value: float
    low: float
    high: float

    @classmethod
    def nan(cls) -> Interval:
        return cls(math.nan, math.nan, math.nan)

    @property
    def known(self) -> bool:
        return not math.isnan(self.value)

    def contains(self, x: float) -> bool:
        return self.low <= x <= self.high

    def overlaps(self, other: Interval) -> bool:
        """Whether the two intervals share a point (False when either is unknown)."""
        return self.low <= other.high and other.low <= self.high


@dataclass(frozen=True)
class DriftResult:
    """One feature's drift on one batch.

    ``value`` is the effect size (``statistic``); ``threshold`` is what an effect must exceed at
    these sample sizes: the larger of the configured minimum effect and the sampling-noise bound.
    ``drifted`` is true when ``value > threshold`` or when the share of missing values moved
    (``missing_drifted``). ``n_reference``/``n_current`` count rows, missing ones included;
    ``value`` is NaN when the current batch has no present value (then only the missing share
    speaks). ``new_values`` are categorical values the reference never had (most frequent first,
    truncated), ``new_share`` the share of present current rows they cover.
    """

    feature: str
    statistic: Statistic
    value: float
    threshold: float
    drifted: bool
    n_reference: int
    n_current: int
    missing_reference: float
    missing_current: float
    missing_drifted: bool = False
    new_values: tuple[str, ...] = ()
    new_share: float = 0.0

    @property
    def ratio(self) -> float:
        """The effect as a multiple of its threshold: above 1 the effect alone is drift."""
        return self.value / self.threshold if self.threshold > 0 else math.nan

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "new_values": list(self.new_values), "ratio": self.ratio}


@dataclass(frozen=True)
class EmbeddingDriftResult:
    """MMD² between reference and current embeddings, with its permutation p-value.

    ``threshold`` is the larger of the minimum effect and the permutation null's (1 - alpha)
    quantile; ``drifted`` is ``mmd2 > threshold``. NaN with ``drifted=False`` when either batch
    has fewer than two rows.
    """

    mmd2: float
    p_value: float
    threshold: float
    drifted: bool
    n_reference: int
    n_current: int
    permutations: int

    @property
    def ratio(self) -> float:
        """MMD² as a multiple of its threshold: above 1 is drift."""
        return self.mmd2 / self.threshold if self.threshold > 0 else math.nan

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio}


@dataclass(frozen=True)
class CohortPerformance:
    """Realized performance of one cohort whose labels matured.

    ``n`` counts labelled rows, ``positives`` the labelled positives (unweighted counts); the
    metrics are weighted (see ``label_weights``) so that they describe the whole cohort, not
    just the rows experts chose to label. ``reason`` says why some interval is NaN.
    """

    n: int
    positives: int
    prevalence: Interval
    pr_auc: Interval
    recall_at_fpr: Interval
    ece: Interval
    fpr: float
    reason: str | None = None


@dataclass(frozen=True)
class EstimatedPerformance:
    """Label-free estimate of a cohort's performance from its calibrated probabilities.

    ``prevalence`` is the expected share of positives (the mean probability). Each interval is
    where the realized metric would fall (95%) if the probabilities are calibrated, its value
    the metric's expectation. ``trusted`` turns false, with the evidence in ``reason``, when a
    matured cohort shows that they are not (see ``check_trust``).
    """

    n: int
    prevalence: float
    pr_auc: Interval
    recall_at_fpr: Interval
    fpr: float
    trusted: bool = True
    reason: str | None = None


@dataclass(frozen=True, eq=False)
class LabelWeights:
    """Inverse label-coverage weights of a cohort, one per labelled row, in the rows' order.

    ``coverage`` maps each stratum to its labelled share; ``uncovered`` names strata with no
    label at all, which no weight can represent (the metrics then describe only the covered
    rows, ``covered_share`` of the cohort).
    """

    weights: np.ndarray
    coverage: dict[str, float] = field(default_factory=dict)
    uncovered: tuple[str, ...] = ()
    covered_share: float = 1.0
