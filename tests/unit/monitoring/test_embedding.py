from __future__ import annotations

import math

import numpy as np
import pytest

from couturier.errors import InvalidInputError, InvalidParameterError
from couturier.monitoring._embedding import MMDDrift

DIM = 64


def _clouds(
    seed: int, n: int, *, shift: float = 0.0, scale: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Reference and current Gaussian embeddings; the current one shifted along a random
    direction by ``shift`` standard deviations and its first 8 dimensions scaled by ``scale``."""
    rng = np.random.default_rng(seed)
    direction = rng.normal(size=DIM)
    direction /= np.linalg.norm(direction)
    ref, cur = rng.normal(size=(n, DIM)), rng.normal(size=(n, DIM))
    cur[:, :8] *= scale
    return ref, cur + shift * direction


def test_mean_shift_along_a_random_direction_is_flagged() -> None:
    results = [MMDDrift(seed=s).fit(ref).score(cur) for s, (ref, cur) in _runs(10, shift=1.0)]
    assert sum(r.drifted for r in results) >= 9
    assert all(r.p_value < 0.01 and r.mmd2 > r.threshold for r in results if r.drifted)


def test_covariance_change_is_flagged() -> None:
    results = [MMDDrift(seed=s).fit(ref).score(cur) for s, (ref, cur) in _runs(10, scale=2.0)]
    assert sum(r.drifted for r in results) >= 9


def test_no_shift_raises_no_alarm_at_max_samples() -> None:
    results = [MMDDrift(seed=s).fit(ref).score(cur) for s, (ref, cur) in _runs(20)]
    assert not any(r.drifted for r in results)
    assert np.mean([r.mmd2 for r in results]) == pytest.approx(0.0, abs=2e-4)  # unbiased


def test_no_shift_at_small_n_keeps_false_alarms_near_alpha() -> None:
    results = [MMDDrift(seed=s).fit(ref).score(cur) for s, (ref, cur) in _runs(40, n=60)]
    assert sum(r.drifted for r in results) <= 2  # alpha = 0.01: 0.4 expected
    assert results[0].threshold > MMDDrift().min_effect  # here the noise bound decides


def test_negligible_shift_in_a_huge_batch_is_not_flagged() -> None:
    ref, cur = _clouds(0, 5000, shift=0.15)
    result = MMDDrift().fit(ref).score(cur)
    assert not result.drifted
    assert (result.n_reference, result.n_current) == (5000, 5000)


def test_scores_are_reproducible_for_a_seed() -> None:
    ref, cur = _clouds(1, 300, shift=0.3)
    first = MMDDrift(seed=4).fit(ref).score(cur)
    assert MMDDrift(seed=4).fit(ref).score(cur) == first


def test_fit_learns_a_median_heuristic_bandwidth() -> None:
    ref, _ = _clouds(2, 400)
    detector = MMDDrift(max_samples=200).fit(ref)
    assert detector.reference_.shape == (200, DIM)
    assert detector.bandwidth_ == pytest.approx(math.sqrt(2 * DIM), rel=0.05)


def test_score_before_fit_and_bad_inputs_raise_clear_errors() -> None:
    ref, cur = _clouds(3, 50)
    with pytest.raises(InvalidInputError, match="not fitted"):
        MMDDrift().score(cur)
    detector = MMDDrift().fit(ref)
    with pytest.raises(InvalidInputError, match="32 dimensions and the reference 64"):
        detector.score(cur[:, :32])
    cur[0, 0] = np.nan
    with pytest.raises(InvalidInputError, match="NaN"):
        detector.score(cur)
    with pytest.raises(InvalidParameterError):
        MMDDrift(permutations=5).fit(ref)


def test_a_batch_of_one_row_gives_nan_instead_of_an_error() -> None:
    ref, cur = _clouds(4, 50)
    result = MMDDrift().fit(ref).score(cur[:1])
    assert math.isnan(result.mmd2) and not result.drifted and result.n_current == 1


def _runs(
    seeds: int, *, n: int = 500, shift: float = 0.0, scale: float = 1.0
) -> list[tuple[int, tuple[np.ndarray, np.ndarray]]]:
    return [(s, _clouds(s, n, shift=shift, scale=scale)) for s in range(seeds)]
