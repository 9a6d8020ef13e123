from __future__ import annotations

import math
from typing import Literal

import numpy as np
import pandas as pd
import pytest

from couturier.errors import InvalidInputError, InvalidParameterError
from couturier.monitoring._drift import CategoricalDrift, FeatureDrift, NumericDrift, persisted
from couturier.monitoring._embedding import MMDDrift
from couturier.monitoring.types import DriftDetector, DriftResult

Numeric = Literal["psi", "wasserstein"]
NUMERIC: tuple[Numeric, ...] = ("psi", "wasserstein")
BRANDS = np.array(["atelier", "bottega", "celine", "dior"])


def _normal(seed: int, n: int, shift: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=n), rng.normal(size=n) + shift


def _brands(seed: int, n: int, mix: list[float]) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.choice(BRANDS, n, p=[0.4, 0.3, 0.2, 0.1]), rng.choice(BRANDS, n, p=mix)


@pytest.mark.parametrize("statistic", NUMERIC)
def test_half_sd_mean_shift_at_n1000_is_flagged(statistic: Numeric) -> None:
    flagged = 0
    for seed in range(40):
        ref, cur = _normal(seed, 1000, shift=0.5)
        flagged += NumericDrift(statistic).fit(ref).score(cur).drifted
    assert flagged >= 38


@pytest.mark.parametrize("n", [50, 1000])
@pytest.mark.parametrize("statistic", NUMERIC)
def test_no_shift_raises_at_most_one_false_alarm_in_100_seeds(statistic: Numeric, n: int) -> None:
    alarms = 0
    for seed in range(100):
        ref, cur = _normal(seed, n)
        alarms += NumericDrift(statistic).fit(ref).score(cur).drifted
    assert alarms <= 1


@pytest.mark.parametrize("statistic", NUMERIC)
def test_negligible_shift_at_200k_rows_is_not_flagged(statistic: Numeric) -> None:
    ref, cur = _normal(0, 200_000, shift=0.02)
    result = NumericDrift(statistic).fit(ref).score(cur)
    assert result.value > 0  # the shift is measured...
    assert result.threshold == pytest.approx(0.1)  # ...against the minimum effect, not noise
    assert not result.drifted


def test_threshold_falls_with_sample_size_down_to_the_minimum_effect() -> None:
    thresholds = []
    for n in (30, 100, 300, 1000, 10_000):
        ref, cur = _normal(1, n)
        thresholds.append(NumericDrift("psi").fit(ref).score(cur).threshold)
    assert thresholds == sorted(thresholds, reverse=True)
    assert thresholds[0] > 1.0
    assert thresholds[-1] == pytest.approx(0.1)


def test_same_effect_is_noise_at_small_n_and_drift_at_large_n() -> None:
    small = NumericDrift("wasserstein").fit(_normal(3, 30)[0]).score(_normal(4, 30, 0.3)[1])
    large = NumericDrift("wasserstein").fit(_normal(3, 5000)[0]).score(_normal(4, 5000, 0.3)[1])
    assert small.threshold > 0.3 > large.threshold
    assert not small.drifted
    assert large.drifted


def test_a_feature_that_starts_going_missing_is_drift() -> None:
    ref, cur = _normal(5, 2000)
    ref[:20] = np.nan  # 1% missing
    cur[:600] = np.nan  # 30% missing, the rest unchanged
    result = NumericDrift().fit(ref).score(cur)
    assert result.missing_reference == pytest.approx(0.01)
    assert result.missing_current == pytest.approx(0.3)
    assert result.missing_drifted and result.drifted
    assert result.ratio < 1  # the present values did not move


def test_a_small_change_in_missing_share_is_not_drift() -> None:
    ref, cur = _normal(6, 2000)
    ref[:20] = np.nan
    cur[:40] = np.nan  # 1% -> 2%
    assert not NumericDrift().fit(ref).score(cur).drifted


def test_a_feature_missing_entirely_today_is_drift_without_a_crash() -> None:
    ref, _ = _normal(7, 500)
    result = NumericDrift("wasserstein").fit(ref).score(np.full(300, np.nan))
    assert math.isnan(result.value)
    assert result.missing_current == 1.0
    assert result.drifted


def test_categorical_mix_shift_is_flagged() -> None:
    flagged = 0
    for seed in range(40):
        ref, cur = _brands(seed, 1000, [0.25, 0.25, 0.25, 0.25])
        result = CategoricalDrift().fit(ref).score(cur)
        assert result.statistic == "jensen_shannon"
        flagged += result.drifted
    assert flagged >= 38


@pytest.mark.parametrize("n", [50, 1000])
def test_categorical_without_shift_raises_at_most_one_false_alarm(n: int) -> None:
    alarms = sum(
        CategoricalDrift().fit(ref).score(cur).drifted
        for ref, cur in (_brands(seed, n, [0.4, 0.3, 0.2, 0.1]) for seed in range(100))
    )
    assert alarms <= 1


def test_unseen_category_is_reported_with_its_share() -> None:
    ref, cur = _brands(8, 1000, [0.4, 0.3, 0.2, 0.1])
    cur = cur.astype(object)
    cur[:300] = "maison-x"
    cur[300] = "one-off"
    cur[301] = None
    result = CategoricalDrift(feature="brand").fit(ref).score(cur)
    assert result.new_values == ("maison-x", "one-off")
    assert result.new_share == pytest.approx(301 / 999)
    assert result.drifted
    assert result.feature == "brand"


def test_a_long_tail_of_rare_ids_is_not_drift() -> None:
    rng = np.random.default_rng(9)
    ids = np.arange(20_000)
    weights = 1.0 / (ids + 10)
    weights /= weights.sum()
    ref, cur = rng.choice(ids, 3000, p=weights), rng.choice(ids, 3000, p=weights)
    result = CategoricalDrift().fit(ref).score(cur)
    assert result.new_share > 0.1  # many ids are new every day...
    assert len(result.new_values) == 20  # ...the report is truncated...
    assert not result.drifted  # ...and that is the tail, not drift


@pytest.mark.parametrize("detector", [NumericDrift(), CategoricalDrift()])
def test_score_before_fit_raises_a_clear_error(detector: NumericDrift | CategoricalDrift) -> None:
    with pytest.raises(InvalidInputError, match="not fitted; call fit"):
        detector.score([1.0, 2.0])


def test_fit_returns_the_detector_and_learns_state_in_underscore_attributes() -> None:
    detector = NumericDrift("psi", bins=5)
    assert not hasattr(detector, "edges_")
    ref, _ = _normal(10, 1000)
    assert detector.fit(ref) is detector
    assert detector.edges_.size == 4
    assert detector.reference_counts_.sum() == 1000
    assert isinstance(detector, DriftDetector)
    assert isinstance(MMDDrift(), DriftDetector)


def test_reference_without_any_value_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="no present value"):
        NumericDrift(feature="price").fit([np.nan, np.nan])


@pytest.mark.parametrize(
    "detector", [NumericDrift(alpha=0.0), NumericDrift(bins=1), CategoricalDrift(min_effect=-1)]
)
def test_impossible_configuration_is_refused_at_fit(
    detector: NumericDrift | CategoricalDrift,
) -> None:
    with pytest.raises(InvalidParameterError):
        detector.fit([1.0, 2.0, 3.0])


def test_feature_drift_fits_one_detector_per_column() -> None:
    rng = np.random.default_rng(11)
    n = 1000

    def frame(shift: float) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "price": rng.lognormal(6 + shift, 1, n),
                "photos": rng.integers(1, 9, n),
                "brand": rng.choice(BRANDS, n),
                "brand_id": rng.integers(0, 4, n),
            }
        )

    drift = FeatureDrift(categorical=("brand_id",), numeric=NumericDrift("wasserstein"))
    results = drift.fit(frame(0.0)).score(frame(1.0))
    assert [r.feature for r in results] == ["price", "photos", "brand", "brand_id"]
    assert [r.statistic for r in results] == [
        "wasserstein",
        "wasserstein",
        "jensen_shannon",
        "jensen_shannon",
    ]
    assert [r.drifted for r in results] == [True, False, False, False]
    with pytest.raises(InvalidInputError, match=r"lacks columns \['brand'\]"):
        drift.score(frame(0.0).drop(columns="brand"))


def test_drift_result_ratio_and_dict() -> None:
    result = DriftResult("price", "psi", 0.3, 0.1, True, 10, 10, 0.0, 0.0)
    assert result.ratio == pytest.approx(3.0)
    assert result.as_dict()["ratio"] == pytest.approx(3.0)


@pytest.mark.parametrize(
    ("history", "window", "need", "expected"),
    [
        ([], 3, 2, False),
        ([True], 3, 2, False),
        ([True, True], 3, 2, True),
        ([True, False, True], 3, 2, True),
        ([True, False, False], 3, 2, False),
        ([True, True, False, False], 3, 2, False),  # the old days left the window
        ([False, False, False, True], 3, 1, True),
        ([True, True, True, False], 3, 3, False),
        ([True, True, True], 3, 3, True),
        ([False, True], 1, 1, True),
    ],
)
def test_persisted(history: list[bool], window: int, need: int, expected: bool) -> None:
    assert persisted(history, window=window, need=need) is expected


@pytest.mark.parametrize(("window", "need"), [(3, 0), (3, 4)])
def test_persisted_refuses_impossible_windows(window: int, need: int) -> None:
    with pytest.raises(InvalidParameterError):
        persisted([True], window=window, need=need)
