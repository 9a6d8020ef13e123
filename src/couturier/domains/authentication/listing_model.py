"""The listing/seller model: LightGBM on the feature service's training set, exported to ONNX.

The first model of the authentication recipe: it scores a listing from its listing, seller and
product features alone (no photos). Missing values stay NaN: LightGBM and its ONNX export
route them the same way. ONNX export uses onnxmltools at ``target_opset=15`` (the opset it
converts LightGBM at).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from couturier.domains.authentication.features import FEATURES
from couturier.marketplace import CATEGORIES
from couturier.registry import ModelPackage

__all__ = ["MODEL_NAME", "NUMERIC_FEATURES", "design_matrix", "package", "train"]

MODEL_NAME = "authentication-listing"
_CATEGORY_CODE = {name: float(i) for i, name in enumerate(CATEGORIES)}
#: Every numeric feature of the service, in a fixed order; the category is coded after them.
NUMERIC_FEATURES: list[str] = [
    f.name for _, f in FEATURES.all_fields if f.dtype in ("int64", "float64", "bool")
]
INPUTS: list[str] = [*NUMERIC_FEATURES, "category_code"]


def design_matrix(frame: pd.DataFrame) -> np.ndarray:
    """Rows of the model's inputs, float32, NaN where a feature is missing."""
    x = frame[NUMERIC_FEATURES].apply(pd.to_numeric, errors="coerce").astype("float64")
    code = frame["category"].map(_CATEGORY_CODE).astype("float64")
    return np.column_stack([x.to_numpy(), code.to_numpy()]).astype(np.float32)


def design_rows(rows: list[dict[str, Any]]) -> np.ndarray:
    """:func:`design_matrix` for a few dict rows (serving), without pandas' per-call cost.

    Same coercion: numbers and booleans as floats, anything else (None, text) as NaN.
    """
    out = np.full((len(rows), len(INPUTS)), np.nan, dtype=np.float32)
    for i, row in enumerate(rows):
        for j, name in enumerate(NUMERIC_FEATURES):
            value = row.get(name)
            if isinstance(value, int | float | np.integer | np.floating):  # NaN stays NaN
                out[i, j] = float(value)
        out[i, -1] = _CATEGORY_CODE.get(str(row.get("category")), np.nan)
    return out


def train(x: np.ndarray, y: np.ndarray, seed: int = 7) -> Any:
    import lightgbm as lgb

    model = lgb.LGBMClassifier(
        n_estimators=300,
        learning_rate=0.05,
        num_leaves=15,
        min_child_samples=40,
        subsample=0.8,
        subsample_freq=1,
        colsample_bytree=0.8,
        reg_lambda=1.0,
        random_state=seed,
        verbose=-1,
    )
    return model.fit(x, y)


def package(model: Any, sample: np.ndarray, thresholds: dict[str, float]) -> ModelPackage:
    import onnxmltools
    from onnxmltools.convert.common.data_types import FloatTensorType

    onx = onnxmltools.convert_lightgbm(
        model,
        initial_types=[("features", FloatTensorType([None, len(INPUTS)]))],
        target_opset=15,
        zipmap=False,
    )
    return ModelPackage(
        name=MODEL_NAME,
        onnx_model=onx.SerializeToString(),
        features=INPUTS,
        reference=model.predict_proba,
        sample=sample,
        output="probabilities",
        preprocessing={"category_code": _CATEGORY_CODE, "missing": "NaN"},
        thresholds=thresholds,
        tolerance=1e-4,
        description="counterfeit probability from listing, seller and product features",
    )
