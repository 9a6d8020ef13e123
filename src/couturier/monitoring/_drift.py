"""Per-feature data drift as effect sizes, with thresholds that know the sample size.

A drift is flagged only when the effect is both practically large (``min_effect``) and larger
than sampling noise at these sample sizes produces (the ``1 - alpha`` quantile of the effect's
null distribution). The first condition stops large samples from flagging negligible shifts,
the second stops small samples from flagging noise; ``DriftResult.threshold`` is the larger.

Effects and their null distributions, ``n``/``m`` the present values of the two batches:

* PSI over ``bins`` reference-quantile bins (default minimum 0.1, the usual "moderate shift"):
  PSI is a symmetrised KL divergence, ~ ``chi2(B - 1) * (1/n + 1/m)`` under no drift. Bins are
  right-closed, so point masses (zero-inflated features) keep their own bin; each count gets
  half a pseudo-count, so an empty bin in a small batch does not send PSI to infinity.
* Wasserstein-1 divided by the reference's spread (IQR / 1.349, else its standard deviation),
  so that the default minimum 0.1 means "a tenth of a standard deviation". Its null comes from
  relabelling the pooled batches (each subsampled to at most 1000 values) ``permutations``
  times: W1 is the integral of |F_a - F_b|, so each relabelling is one cumulative sum. The
  quantile of ``sqrt(nm/(n+m)) * W1`` is read from the lognormal with the permutations' mean and
  variance (alpha = 0.001 is beyond what 500 permutations resolve; a gamma fit was measured
  too light in the tail, the lognormal at or above it) and scaled to the actual sizes.
  Permutations rather than an asymptotic null because heavy-tailed features (prices) made the
  asymptotic one flag several times too often.
* Jensen-Shannon distance (base 2) over the reference's ``max_categories`` most frequent values
  (with at least 5 rows each) plus one tail bucket for everything else, unseen values included,
  so that a long tail of rare ids does not look like drift, yet a large new value does. Default
  minimum 0.1 (about PSI 0.055). Its square is ~ ``chi2(K - 1) * (1/n + 1/m) / (8 ln 2)``.

Missing values (NaN, None, ±inf for numbers) are left out of the effect and compared on their
own: Cohen's h between the two missing shares must exceed ``min_missing_effect`` (0.2, Cohen's
"small") and its noise bound ``z(1 - alpha/2) * sqrt(1/N + 1/M)``, exact for any share because
h is variance-stabilising. ``alpha`` defaults to 0.001 because a job checks tens of features a
day, and an alert further needs the drift to persist (``persisted``).

>>> detector = NumericDrift("psi").fit(reference_scores)                 # doctest: +SKIP
>>> detector.score(todays_scores).drifted                                # doctest: +SKIP
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any, Literal, Self

import numpy as np
import pandas as pd
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2, lognorm, norm, wasserstein_distance

from couturier.errors import InvalidInputError, InvalidParameterError
from couturier.monitoring.types import DriftResult, Statistic

__all__ = ["DEFAULT_MIN_EFFECT", "CategoricalDrift", "FeatureDrift", "NumericDrift", "persisted"]

DEFAULT_MIN_EFFECT: dict[Statistic, float] = {"psi": 0.1, "wasserstein": 0.1, "jensen_shannon": 0.1}
# values per batch for the Wasserstein null: its scaled form barely depends on the sizes
_NULL_SAMPLE = 1000
# a category needs this many reference rows for its own bucket (the chi-square rule of thumb);
# rarer ones share the tail bucket, where their noise does not pass for drift
_MIN_COUNT = 5


class _Detector:
    """Configuration and the missing-share check shared by the numeric and categorical ones."""

    statistic: Statistic

    def __init__(
        self, *, min_effect: float | None, alpha: float, min_missing_effect: float, feature: str
    ) -> None:
        self.min_effect = min_effect
        self.alpha = alpha
        self.min_missing_effect = min_missing_effect
        self.feature = feature

    def _validate(self) -> None:
        if not 0.0 < self.alpha < 1.0:
            raise InvalidParameterError(
                f"alpha={self.alpha} must lie in (0, 1); the default is 0.001", field="alpha"
            )
        effect = DEFAULT_MIN_EFFECT[self.statistic] if self.min_effect is None else self.min_effect
        if effect < 0:
            raise InvalidParameterError(
                f"min_effect={effect} must be >= 0", field="min_effect", statistic=self.statistic
            )
        self.min_effect_ = effect

    def _check_fitted(self) -> None:
        if not hasattr(self, "n_reference_"):
            raise InvalidInputError(
                f"{type(self).__name__} for {self.feature!r} is not fitted; call "
                "fit(reference) before score(current)",
                field="model",
            )

    def _learn_missing(self, n_rows: int, n_present: int) -> None:
        if n_present == 0:
            raise InvalidInputError(
                f"the reference of feature {self.feature!r} has {n_rows} rows and no present "
                "value, so it has no distribution to compare with; pick a reference window "
                "where the feature is filled, or leave the feature out",
                field=self.feature,
            )
        self.n_reference_ = n_rows
        self.missing_reference_ = 1.0 - n_present / n_rows

    def _result(
        self, value: float, noise: float, n_rows: int, n_present: int, **extra: Any
    ) -> DriftResult:
        missing = 1.0 - n_present / n_rows if n_rows else 0.0
        h = abs(_arcsine(missing) - _arcsine(self.missing_reference_))  # Cohen's h
        h_noise = norm.ppf(1 - self.alpha / 2) * math.sqrt(
            1 / max(n_rows, 1) + 1 / self.n_reference_
        )
        missing_drifted = h > max(self.min_missing_effect, h_noise)
        threshold = max(self.min_effect_, noise) if n_present else math.nan
        return DriftResult(
            feature=self.feature,
            statistic=self.statistic,
            value=value,
            threshold=threshold,
            drifted=bool(value > threshold) or missing_drifted,
            n_reference=self.n_reference_,
            n_current=n_rows,
            missing_reference=self.missing_reference_,
            missing_current=missing,
            missing_drifted=missing_drifted,
            **extra,
        )


def _arcsine(share: float) -> float:
    return 2 * math.asin(math.sqrt(share))


def _finite(values: Any) -> tuple[np.ndarray, int]:
    x = np.asarray(pd.Series(np.asarray(values).ravel()).astype("float64"), dtype=float)
    return x[np.isfinite(x)], x.size


def _spread(x: np.ndarray) -> float:
    q1, q3 = np.quantile(x, [0.25, 0.75])
    for spread in ((q3 - q1) / 1.349, float(np.std(x))):
        if spread > 0:
            return float(spread)
    return 1.0  # a constant reference: any movement is measured in the feature's own unit


def _wasserstein_null(
    ref: np.ndarray, cur: np.ndarray, *, alpha: float, permutations: int, seed: int
) -> float:
    """(1 - alpha) quantile of ``sqrt(nm/(n+m)) * W1`` under no drift (see the module)."""
    rng = np.random.default_rng(seed)
    a = ref if ref.size <= _NULL_SAMPLE else rng.choice(ref, _NULL_SAMPLE, replace=False)
    b = cur if cur.size <= _NULL_SAMPLE else rng.choice(cur, _NULL_SAMPLE, replace=False)
    n, m = a.size, b.size
    dz = np.diff(np.sort(np.concatenate([a, b]))).astype(np.float32)
    labels = np.zeros((permutations, n + m), dtype=bool)
    labels[:, :n] = True
    # F_a - F_b at each pooled point is ca/n - (k - ca)/m for ca of the k first labels in a;
    # float32 in place: counts stay exact, and it halves the time of the largest arrays
    gap = np.cumsum(rng.permuted(labels, axis=1)[:, :-1], axis=1, dtype=np.float32)
    gap *= np.float32(1 / n + 1 / m)
    gap -= np.arange(1, n + m, dtype=np.float32) / np.float32(m)
    t = (np.abs(gap, out=gap) @ dz).astype(float) * math.sqrt(n * m / (n + m))
    mean, var = float(t.mean()), float(t.var())
    if mean <= 0 or var <= 0:
        return mean
    s2 = math.log1p(var / mean**2)
    return float(lognorm.ppf(1 - alpha, math.sqrt(s2), scale=mean / math.sqrt(1 + var / mean**2)))


class NumericDrift(_Detector):
    """Drift of one numeric feature (or of a model's scores: prediction drift), PSI or W1.

    >>> NumericDrift("wasserstein").fit(ref).score(cur).drifted          # doctest: +SKIP
    """

    def __init__(
        self,
        statistic: Literal["psi", "wasserstein"] = "psi",
        *,
        bins: int = 10,
        min_effect: float | None = None,
        alpha: float = 0.001,
        min_missing_effect: float = 0.2,
        permutations: int = 500,
        seed: int = 0,
        feature: str = "value",
    ) -> None:
        super().__init__(
            min_effect=min_effect,
            alpha=alpha,
            min_missing_effect=min_missing_effect,
            feature=feature,
        )
        self.statistic = statistic
        self.bins = bins
        self.permutations = permutations
        self.seed = seed

    def fit(self, reference: Any) -> Self:
        if self.statistic not in ("psi", "wasserstein"):
            raise InvalidParameterError(
                f"statistic={self.statistic!r}; numeric drift is 'psi' or 'wasserstein'",
                field="statistic",
            )
        if self.bins < 2:
            raise InvalidParameterError(f"bins={self.bins} must be >= 2", field="bins")
        if self.permutations < 20:
            raise InvalidParameterError(
                f"permutations={self.permutations} must be >= 20 (default 500)",
                field="permutations",
            )
        self._validate()
        x, n_rows = _finite(reference)
        self._learn_missing(n_rows, x.size)
        self.n_present_ = x.size
        if self.statistic == "psi":
            inner = np.linspace(0.0, 1.0, self.bins + 1)[1:-1]
            self.edges_ = np.unique(np.quantile(x, inner))
            self.reference_counts_ = self._counts(x)
        else:
            self.reference_ = np.sort(x)
            self.scale_ = _spread(x)
        return self

    def _counts(self, x: np.ndarray) -> np.ndarray:
        bins = np.searchsorted(self.edges_, x, side="left")  # right-closed: x <= edge
        return np.bincount(bins, minlength=self.edges_.size + 1)

    def score(self, current: Any) -> DriftResult:
        self._check_fitted()
        x, n_rows = _finite(current)
        sizes = 1 / max(x.size, 1) + 1 / self.n_present_
        if x.size == 0:
            value, noise = math.nan, math.nan
        elif self.statistic == "psi":
            p = self.reference_counts_ + 0.5
            q = self._counts(x) + 0.5
            p, q = p / p.sum(), q / q.sum()
            value = float(np.sum((q - p) * np.log(q / p)))
            noise = float(chi2.ppf(1 - self.alpha, p.size - 1)) * sizes
        else:
            value = float(wasserstein_distance(self.reference_, x)) / self.scale_
            null = _wasserstein_null(
                self.reference_, x, alpha=self.alpha, permutations=self.permutations, seed=self.seed
            )
            noise = null / self.scale_ * math.sqrt(sizes)
        return self._result(value, noise, n_rows, x.size)


class CategoricalDrift(_Detector):
    """Drift of one categorical feature: Jensen-Shannon distance; reports unseen values.

    >>> CategoricalDrift(feature="brand").fit(ref).score(cur).new_values  # doctest: +SKIP
    ('maison-x',)
    """

    statistic: Statistic = "jensen_shannon"

    def __init__(
        self,
        *,
        max_categories: int = 50,
        max_new_values: int = 20,
        min_effect: float | None = None,
        alpha: float = 0.001,
        min_missing_effect: float = 0.2,
        feature: str = "value",
    ) -> None:
        super().__init__(
            min_effect=min_effect,
            alpha=alpha,
            min_missing_effect=min_missing_effect,
            feature=feature,
        )
        self.max_categories = max_categories
        self.max_new_values = max_new_values

    def fit(self, reference: Any) -> Self:
        if self.max_categories < 1:
            raise InvalidParameterError(
                f"max_categories={self.max_categories} must be >= 1", field="max_categories"
            )
        self._validate()
        counts, n_rows = _value_counts(reference)
        self._learn_missing(n_rows, int(counts.sum()))
        self.n_present_ = int(counts.sum())
        kept = counts[counts >= _MIN_COUNT]
        self.categories_ = tuple(kept.index[: self.max_categories])
        self.seen_ = frozenset(counts.index)
        self.reference_counts_ = self._buckets(counts)
        return self

    def _buckets(self, counts: pd.Series) -> np.ndarray:
        top = counts.reindex(list(self.categories_), fill_value=0).to_numpy(dtype=float)
        return np.append(top, counts.sum() - top.sum())  # the last bucket: every other value

    def score(self, current: Any) -> DriftResult:
        self._check_fitted()
        counts, n_rows = _value_counts(current)
        n_present = int(counts.sum())
        new = counts[[v not in self.seen_ for v in counts.index]]
        extra = {
            "new_values": tuple(str(v) for v in new.index[: self.max_new_values]),
            "new_share": float(new.sum() / n_present) if n_present else 0.0,
        }
        if n_present == 0:
            return self._result(math.nan, math.nan, n_rows, 0, **extra)
        p, q = self.reference_counts_, self._buckets(counts)
        value = float(jensenshannon(p / p.sum(), q / q.sum(), base=2))
        df = int(np.count_nonzero(p + q)) - 1
        sizes = 1 / n_present + 1 / self.n_present_
        noise = math.sqrt(chi2.ppf(1 - self.alpha, df) * sizes / (8 * math.log(2))) if df else 0.0
        return self._result(value, noise, n_rows, n_present, **extra)


def _value_counts(values: Any) -> tuple[pd.Series, int]:
    s = pd.Series(np.asarray(values, dtype=object).ravel(), dtype=object)
    return s[s.notna()].value_counts(sort=True), len(s)


class FeatureDrift:
    """One detector per column of a DataFrame: categorical ones by name or by dtype.

    ``numeric`` and ``categories`` are unfitted templates copied for each column, so one
    configuration covers them all. Columns of object, string, category or bool dtype are
    categorical whether named or not.

    >>> drift = FeatureDrift(categorical=("brand",)).fit(reference_frame)   # doctest: +SKIP
    >>> [r.feature for r in drift.score(todays_frame) if r.drifted]         # doctest: +SKIP
    """

    def __init__(
        self,
        categorical: Sequence[str] = (),
        *,
        columns: Sequence[str] | None = None,
        numeric: NumericDrift | None = None,
        categories: CategoricalDrift | None = None,
    ) -> None:
        self.categorical = categorical
        self.columns = columns
        self.numeric = numeric
        self.categories = categories

    def fit(self, reference: pd.DataFrame) -> Self:
        columns = list(reference.columns if self.columns is None else self.columns)
        _require_columns(reference, [*columns, *self.categorical], "reference")
        self.detectors_: dict[str, NumericDrift | CategoricalDrift] = {}
        for col in columns:
            dtype = reference[col].dtype
            template: NumericDrift | CategoricalDrift
            if col in self.categorical or not _is_numeric(dtype):
                template = self.categories or CategoricalDrift()
            else:
                template = self.numeric or NumericDrift()
            detector = copy.deepcopy(template)
            detector.feature = col
            self.detectors_[col] = detector.fit(reference[col])
        return self

    def score(self, current: pd.DataFrame) -> list[DriftResult]:
        if not hasattr(self, "detectors_"):
            raise InvalidInputError(
                "FeatureDrift is not fitted; call fit(reference) before score(current)",
                field="model",
            )
        _require_columns(current, list(self.detectors_), "current")
        return [d.score(current[col]) for col, d in self.detectors_.items()]


def _is_numeric(dtype: Any) -> bool:
    return bool(pd.api.types.is_numeric_dtype(dtype)) and not pd.api.types.is_bool_dtype(dtype)


def _require_columns(frame: pd.DataFrame, columns: Sequence[str], which: str) -> None:
    absent = sorted(set(columns) - set(frame.columns))
    if absent:
        raise InvalidInputError(
            f"the {which} frame lacks columns {absent}; drift compares the same columns in "
            "both frames, so pass them (or name fewer in columns=/categorical=)",
            field=absent[0],
        )


def persisted(history: Sequence[bool], *, window: int = 3, need: int = 2) -> bool:
    """Whether drift persists: ``need`` of the last ``window`` days drifted (oldest first).

    One drifted day is often a holiday or a batch glitch; an alert that waits for persistence
    costs a day and saves a retraining run. A history shorter than ``window`` counts what it has.

    >>> persisted([False, True, False, True])
    True
    """
    if not 1 <= need <= window:
        raise InvalidParameterError(
            f"need={need} and window={window}; need must lie in [1, window]", field="need"
        )
    return sum(bool(h) for h in list(history)[-window:]) >= need
