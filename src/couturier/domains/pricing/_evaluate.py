"""How good the prices are, on the holdout: the interval's coverage (overall, by segment and
over time) and width, the median's error against a house x product x condition median, the sale
probability's calibration, and, where the simulator's truth is there, the expected revenue at
the suggested price against the oracle price.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "MIN_SEGMENT_SALES",
    "PRICE_BANDS",
    "ValueScores",
    "baseline_prices",
    "coverage_table",
    "price_band",
    "segment_columns",
]

#: segments with fewer holdout sales than this are reported, not judged
MIN_SEGMENT_SALES = 200
#: reference-price bands, EUR
PRICE_BANDS = (0.0, 500.0, 1500.0, 5000.0, float("inf"))
_BAND_NAMES = ("<500", "500-1500", "1500-5000", ">=5000")


def price_band(reference: np.ndarray) -> np.ndarray:
    idx = np.clip(np.searchsorted(PRICE_BANDS, reference, side="right") - 1, 0, 3)
    return np.array(_BAND_NAMES)[idx]


def segment_columns(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """The segments coverage is reported by: house, category, price band, condition."""
    return {
        "house": frame["brand_id"].astype(int).to_numpy(),
        "category": frame["category"].astype(str).to_numpy(),
        "price_band": price_band(frame["reference_price"].to_numpy(float)),
        "condition": frame["condition"].astype(str).to_numpy(),
    }


@dataclass(frozen=True)
class ValueScores:
    """Holdout sales: their price, the interval and median, and the baseline's price."""

    sale: np.ndarray
    lower: np.ndarray
    median: np.ndarray
    upper: np.ndarray
    baseline: np.ndarray
    segments: Mapping[str, np.ndarray] = field(default_factory=dict)

    @property
    def covered(self) -> np.ndarray:
        covered: np.ndarray = (self.sale >= self.lower) & (self.sale <= self.upper)
        return covered

    def metrics(self) -> dict[str, float]:
        ape = np.abs(self.median - self.sale) / self.sale
        base = np.abs(self.baseline - self.sale) / self.sale
        segments = coverage_table(self)
        judged = segments[segments["n"] >= MIN_SEGMENT_SALES]
        return {
            "n_sales": float(len(self.sale)),
            "coverage": float(self.covered.mean()),
            "segment_coverage_min": float(judged["coverage"].min()) if len(judged) else np.nan,
            "interval_width": float(np.median((self.upper - self.lower) / self.median)),
            "mdape": float(np.median(ape)),
            "baseline_mdape": float(np.median(base)),
            "neg_mdape": -float(np.median(ape)),
        }

    def slices(self) -> dict[str, dict[str, float]]:
        """Per segment value: what the registry's gate compares with the champion's."""
        out: dict[str, dict[str, float]] = {}
        ape = np.abs(self.median - self.sale) / self.sale
        for name, values in self.segments.items():
            for value in np.unique(values):
                mask = values == value
                out[f"{name}={value}"] = {
                    "n": float(mask.sum()),
                    "neg_mdape": -float(np.median(ape[mask])),
                    "coverage": float(self.covered[mask].mean()),
                }
        return out


def coverage_table(scores: ValueScores) -> pd.DataFrame:
    """Coverage, sales and median relative width per segment value."""
    rows: list[dict[str, Any]] = []
    width = (scores.upper - scores.lower) / scores.median
    for name, values in scores.segments.items():
        for value in np.unique(values):
            mask = values == value
            rows.append(
                {
                    "segment": name,
                    "value": str(value),
                    "n": int(mask.sum()),
                    "coverage": float(scores.covered[mask].mean()),
                    "width": float(np.median(width[mask])),
                }
            )
    return pd.DataFrame(rows, columns=["segment", "value", "n", "coverage", "width"])


def baseline_prices(train: pd.DataFrame, rows: pd.DataFrame) -> np.ndarray:
    """The house x product x condition median sale price of the training window; where a
    product and condition never sold there, the house x category x condition median ratio to
    the reference price, then the condition's."""
    t = train.assign(ratio=train["sale_price"] / train["reference_price"])
    by_product = t.groupby(["product_id", "condition"])["sale_price"].median()
    by_house = t.groupby(["brand_id", "category", "condition"])["ratio"].median()
    by_condition = t.groupby("condition")["ratio"].median()
    out = np.empty(len(rows))
    for i, r in enumerate(rows.itertuples(index=False)):
        key = (r.product_id, r.condition)
        if key in by_product.index:
            out[i] = by_product[key]
        elif (r.brand_id, r.category, r.condition) in by_house.index:
            out[i] = by_house[(r.brand_id, r.category, r.condition)] * r.reference_price
        else:
            out[i] = by_condition.get(r.condition, t["ratio"].median()) * r.reference_price
    return out
