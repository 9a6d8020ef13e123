"""Daily snapshots for batch feature views: what each key had accumulated by each day's start.

A domain's batch view often says, for every key and every day, how many events (listings,
sales, verdicts) had *arrived* by the day's start, and over trailing windows. These helpers
do it with one pass of ``np.add.at`` and a cumulative sum, for any number of keys and days.

>>> grid = pd.date_range("2026-01-01", periods=3, freq="D", tz="UTC")
>>> times = pd.Series(pd.to_datetime(["2026-01-01 10:00", "2026-01-02 09:00"], utc=True))
>>> sums, counts = cumulative(np.array([0, 0]), times, 1, grid)
>>> counts.tolist()   # counted from the first snapshot at or after the arrival
[[0, 1, 2]]
>>> trailing(counts, 1).tolist()
[[0, 1, 1]]
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["cumulative", "epoch_ns", "trailing"]


def epoch_ns(times: pd.Series | pd.DatetimeIndex) -> np.ndarray:
    """Epoch nanoseconds of time-zone-aware times."""
    if isinstance(times, pd.DatetimeIndex):
        naive = times.tz_convert("UTC").tz_localize(None)
        return np.asarray(naive.to_numpy(dtype="datetime64[ns]")).astype(np.int64)
    return np.asarray(times.dt.as_unit("ns").astype("int64"), dtype=np.int64)


def cumulative(
    keys: np.ndarray,
    times: pd.Series,
    n_keys: int,
    grid: pd.DatetimeIndex,
    values: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(sums of ``values``, counts), each (keys, snapshots): over the events of each key that
    arrived at or before each snapshot of ``grid``. Events after the last snapshot are left out;
    without ``values`` the sums are zeros."""
    shape = (n_keys, len(grid))
    sums, counts = np.zeros(shape), np.zeros(shape, dtype=np.int64)
    idx = np.searchsorted(epoch_ns(grid), epoch_ns(times), side="left")
    keep = idx < len(grid)
    np.add.at(counts, (keys[keep], idx[keep]), 1)
    if values is not None:
        np.add.at(sums, (keys[keep], idx[keep]), np.asarray(values, dtype=float)[keep])
    return np.cumsum(sums, axis=1), np.cumsum(counts, axis=1)


def trailing(cum: np.ndarray, days: int) -> np.ndarray:
    """The last ``days`` snapshots' worth out of a cumulative (keys, snapshots) array."""
    shifted = np.zeros_like(cum)
    shifted[:, days:] = cum[:, :-days]
    window: np.ndarray = cum - shifted
    return window
