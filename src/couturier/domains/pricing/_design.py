"""The models' inputs: one function from feature rows to matrices, for training and serving.

Prices are modelled relative to the house's market: the *market index* ``m`` is the mean
``log(asking price / reference price)`` of the house's listings over the last 3 days when
there were 15 or more (sellers price against what they see, so it moves first), else over 7
days, else over 30, else the house's sale-price index, else the training set's median. The
market-value models predict ``log(sale price / reference price) - m``; the sale-probability
models read the candidate price as ``log(price / reference price) - m``. A market that moves
(a house's prices drop 20%) moves ``m`` within days, before any retraining.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from couturier.domains.pricing._features import INCLUDED

__all__ = [
    "INPUTS",
    "frame_index",
    "frame_matrix",
    "log_reference",
    "market_index",
    "matrix",
    "relative_price",
]

LISTING_INPUTS = [
    "category_code",
    "condition_rank",
    "n_photos",
    "season_sin",
    "season_cos",
    *INCLUDED,
]
#: market features, read relative to the market index where they are price indices
MARKET_INPUTS = [
    "log_reference",
    "brand_id",
    "product_ask_rel_30d",
    "product_sale_rel_90d",
    "product_sales_90d",
    "house_sale_rel_30d",
    "house_sell_through_30d",
    "house_sales_30d",
    "rating",
    "prior_sales",
]
INPUTS = [*LISTING_INPUTS, *MARKET_INPUTS]
_INDEX_ORDER = (
    "house_ask_index_3d",
    "house_ask_index_7d",
    "house_ask_index_30d",
    "house_sale_index_30d",
)
_RELATIVE = {
    "product_ask_rel_30d": "product_ask_index_30d",
    "product_sale_rel_90d": "product_sale_index_90d",
    "house_sale_rel_30d": "house_sale_index_30d",
}


def _num(value: Any) -> float:
    """A number, or NaN for None, NaN, pandas' NA and anything that is not one."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float | np.integer | np.floating):
        return float(value)
    return math.nan


def market_index(row: Mapping[str, Any], default: float) -> float:
    """The house's market index for one row (see the module's docstring)."""
    for name in _INDEX_ORDER:
        value = _num(row.get(name))
        if not math.isnan(value):
            return value
    return default


def log_reference(row: Mapping[str, Any]) -> float:
    return math.log(r) if (r := _num(row.get("reference_price"))) > 0 else math.nan


def _row(row: Mapping[str, Any], m: float) -> list[float]:
    values = {name: _num(row.get(name)) for name in INPUTS}
    values["log_reference"] = log_reference(row)
    for rel, index in _RELATIVE.items():
        values[rel] = _num(row.get(index)) - m
    return [values[name] for name in INPUTS]


def matrix(
    rows: Sequence[Mapping[str, Any]], default_index: float
) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, market index) for dict rows: float32 inputs in :data:`INPUTS` order, NaN where
    a feature is missing (LightGBM and its ONNX export route NaN the same way)."""
    m = np.array([market_index(r, default_index) for r in rows], dtype=np.float64)
    x = np.array([_row(r, float(mi)) for r, mi in zip(rows, m, strict=True)], dtype=np.float32)
    return x.reshape(len(rows), len(INPUTS)), m


def relative_price(price: np.ndarray, log_ref: np.ndarray, index: np.ndarray) -> np.ndarray:
    """A price as every model reads it: ``log(price / reference price) - market index``."""
    relative: np.ndarray = np.log(price) - log_ref - index
    return relative


def frame_index(frame: pd.DataFrame) -> np.ndarray:
    """:func:`market_index` for a frame's rows, NaN where a row has none (no default)."""
    present = [name for name in _INDEX_ORDER if name in frame.columns]
    numeric = frame[present].apply(pd.to_numeric, errors="coerce")
    values = numeric.to_numpy(dtype=float, na_value=np.nan)
    first = np.full(len(frame), np.nan)
    for column in values.T[::-1]:  # the earliest available index in _INDEX_ORDER wins
        first = np.where(np.isnan(column), first, column)
    return first


def frame_matrix(frame: pd.DataFrame, default_index: float) -> tuple[np.ndarray, np.ndarray]:
    """:func:`matrix` for a training set's frame."""
    rows: list[dict[str, Any]] = [
        {str(k): v for k, v in r.items()} for r in frame.to_dict("records")
    ]
    return matrix(rows, default_index)
