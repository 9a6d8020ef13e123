"""Embedding drift: MMD between reference and current embeddings, as a whole.

Per-dimension tests on embeddings multiply false alarms and miss shifts that only show in
several dimensions together; the maximum mean discrepancy (Gretton et al., 2012) compares the two
clouds of points at once. The kernel is an RBF whose bandwidth is the median distance between
reference points (the median heuristic), fixed at ``fit`` so that every day is measured with the
same ruler.

MMD² is the unbiased U-statistic, whose mean under no drift is 0 whatever the sample sizes. Its
null comes from a permutation test that relabels the rows of one precomputed kernel matrix:
each relabelling is a column of a label matrix, so all ``permutations`` statistics come from one
matrix product, which is what keeps 500 x 500 points of 64 dimensions with 200 permutations at a
few tens of milliseconds. Both batches are subsampled to ``max_samples`` rows, so a huge day
does not make a negligible shift significant, and a drift also needs MMD² above ``min_effect``.

Plain numpy on purpose: monitoring is a platform layer and must not pull in torch.

>>> detector = MMDDrift(seed=0).fit(reference_embeddings)         # doctest: +SKIP
>>> detector.score(todays_embeddings).drifted                     # doctest: +SKIP
"""

from __future__ import annotations

import math
from typing import Any, Self

import numpy as np

from couturier.errors import InvalidInputError, InvalidParameterError
from couturier.monitoring.types import EmbeddingDriftResult

__all__ = ["MMDDrift"]


class MMDDrift:
    """Drift of a batch of embeddings against a reference, by an MMD permutation test.

    ``alpha`` is the permutation test's level (0.01: one daily check per model, and an alert
    further needs persistence). ``min_effect`` is the least MMD² that counts as drift: 0.001 by
    default, about what a mean shift of half a standard deviation along one direction of a
    64-dimensional Gaussian produces (0.0012), and twice the permutation null's 99% quantile at
    500 + 500 rows, so that at ``max_samples`` the effect, not the noise, decides.
    """

    def __init__(
        self,
        *,
        permutations: int = 200,
        max_samples: int = 500,
        alpha: float = 0.01,
        min_effect: float = 0.001,
        seed: int = 0,
    ) -> None:
        self.permutations = permutations
        self.max_samples = max_samples
        self.alpha = alpha
        self.min_effect = min_effect
        self.seed = seed

    def fit(self, reference: Any) -> Self:
        self._validate()
        x = _embeddings(reference, "reference")
        self.n_reference_ = x.shape[0]
        self.reference_ = self._subsample(x, np.random.default_rng(self.seed))
        d2 = _squared_distances(self.reference_, self.reference_)
        off_diagonal = d2[~np.eye(d2.shape[0], dtype=bool)]
        median = math.sqrt(float(np.median(off_diagonal))) if off_diagonal.size else 0.0
        self.bandwidth_ = median if median > 0 else 1.0  # identical points: any unit will do
        return self

    def score(self, current: Any) -> EmbeddingDriftResult:
        if not hasattr(self, "reference_"):
            raise InvalidInputError(
                "MMDDrift is not fitted; call fit(reference_embeddings) before score(current)",
                field="model",
            )
        y = _embeddings(current, "current")
        if y.shape[1] != self.reference_.shape[1]:
            raise InvalidInputError(
                f"current embeddings have {y.shape[1]} dimensions and the reference "
                f"{self.reference_.shape[1]}; compare embeddings of the same model",
                field="current",
            )
        rng = np.random.default_rng(self.seed + 1)  # the same day scores the same, every time
        y = self._subsample(y, rng)
        x = self.reference_
        n, m = x.shape[0], y.shape[0]
        if n < 2 or m < 2:
            return EmbeddingDriftResult(
                math.nan, math.nan, math.nan, False, self.n_reference_, len(current), 0
            )
        z = np.vstack([x, y])
        kernel = np.exp(-_squared_distances(z, z) / (2 * self.bandwidth_**2))
        labels = np.zeros((n + m, self.permutations + 1))
        labels[:n, 0] = 1.0
        labels[:, 1:] = rng.permuted(np.repeat(labels[:, :1], self.permutations, axis=1), axis=0)
        stats = _mmd2(kernel, labels, n, m)
        observed, null = float(stats[0]), np.sort(stats[1:])[::-1]
        # exceeding the k-th largest null value is exactly p-value <= k / (permutations + 1)
        k = max(1, math.floor(self.alpha * (self.permutations + 1)))
        threshold = max(self.min_effect, float(null[k - 1]))
        return EmbeddingDriftResult(
            mmd2=observed,
            p_value=float((1 + np.sum(null >= observed)) / (1 + self.permutations)),
            threshold=threshold,
            drifted=observed > threshold,
            n_reference=self.n_reference_,
            n_current=len(current),
            permutations=self.permutations,
        )

    def _validate(self) -> None:
        if self.permutations < 20:
            raise InvalidParameterError(
                f"permutations={self.permutations} must be >= 20 (default 200)",
                field="permutations",
            )
        if self.max_samples < 2:
            raise InvalidParameterError(
                f"max_samples={self.max_samples} must be >= 2 (default 500)", field="max_samples"
            )
        if not 0.0 < self.alpha < 1.0:
            raise InvalidParameterError(f"alpha={self.alpha} must lie in (0, 1)", field="alpha")

    def _subsample(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if x.shape[0] <= self.max_samples:
            return x
        return x[rng.choice(x.shape[0], self.max_samples, replace=False)]


def _embeddings(values: Any, which: str) -> np.ndarray:
    x = np.asarray(values, dtype=float)
    if x.ndim != 2:
        raise InvalidInputError(
            f"{which} embeddings have shape {x.shape}; pass a 2-d array (rows x dimensions)",
            field=which,
        )
    bad = int((~np.isfinite(x).all(axis=1)).sum())
    if bad:
        raise InvalidInputError(
            f"{bad} {which} embeddings hold NaN or infinite values; drop those rows first",
            field=which,
        )
    return x


def _squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    aa = np.einsum("ij,ij->i", a, a)
    bb = np.einsum("ij,ij->i", b, b)
    d2: np.ndarray = np.maximum(aa[:, None] + bb[None, :] - 2 * a @ b.T, 0.0)
    return d2


def _mmd2(kernel: np.ndarray, labels: np.ndarray, n: int, m: int) -> np.ndarray:
    """Unbiased MMD² for each column of ``labels`` (1 marks the rows of the first sample)."""
    rows = kernel.sum(axis=1)
    s_xx = np.einsum("ij,ij->j", labels, kernel @ labels)
    s_xy = labels.T @ rows - s_xx
    s_yy = rows.sum() - s_xx - 2 * s_xy
    # the RBF kernel's diagonal is 1: the U-statistic leaves out the n and m self-pairs
    result: np.ndarray = (
        (s_xx - n) / (n * (n - 1)) + (s_yy - m) / (m * (m - 1)) - 2 * s_xy / (n * m)
    )
    return result
