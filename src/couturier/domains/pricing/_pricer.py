"""The served pricing model: ONNX Runtime sessions and the numbers beside them.

One object answers for the recipe's evaluation and for ``/v1/price-suggestion``, so the
holdout scores exactly what is served. Its parts travel as one registered version:
``model.onnx`` (the median market value), ``lower.onnx`` and ``upper.onnx`` (the interval's
ends), ``sale_<H>d.onnx`` (sale probability within H days) and ``pricing.json``.

The suggestion is the price on a grid around the median market value (-70% .. +82%, 2.5%
steps) that maximizes ``price x P(sold within H days | price)``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from couturier.domains.pricing._design import INPUTS, relative_price
from couturier.domains.pricing._train import GLOBAL, Fitted, cloglog_probability
from couturier.registry import ModelPackage, ParityError, session

__all__ = ["GRID", "MODEL_NAME", "Pricer", "PricingParams", "Suggestions"]

MODEL_NAME = "pricing"
PARITY_TOLERANCE = 1e-4
#: candidate prices, as log(price / median market value)
GRID = np.linspace(-1.2, 0.6, 73)


@dataclass
class PricingParams:
    """Everything but the trees: ``pricing.json``."""

    confidence: float
    horizons: list[int]
    offsets: dict[str, tuple[float, float]]  # category code or "*" -> (lower, upper), log units
    sale: dict[str, tuple[float, float, float]]  # horizon -> (price elasticity beta, a, b)
    default_index: float
    houses: list[int]
    #: "brand_id:category_code" -> median reference price, for a product the store never saw
    reference_fallback: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> PricingParams:
        data = json.loads(raw)
        data["offsets"] = {k: tuple(v) for k, v in data["offsets"].items()}
        data["sale"] = {k: (v[0], v[1], v[2]) for k, v in data["sale"].items()}
        return cls(**data)


@dataclass(frozen=True)
class Suggestions:
    """Per row: the interval and median market value, the suggested price and its sale
    probability, and (where an asking price was given) the sale probability at that price."""

    lower: np.ndarray
    median: np.ndarray
    upper: np.ndarray
    price: np.ndarray
    probability: np.ndarray
    asking_probability: np.ndarray | None


class Pricer:
    def __init__(self, sessions: dict[str, Any], params: PricingParams, version: int = 0) -> None:
        self.sessions, self.params, self.version = sessions, params, version

    # ---- building ----------------------------------------------------------------------
    @classmethod
    def from_fitted(
        cls, fitted: Fitted, params: PricingParams, sample: np.ndarray
    ) -> tuple[Pricer, ModelPackage]:
        """Export to ONNX. The package's main graph is the median market value (the registry
        checks it); the others travel as artifacts and are checked here, on ``sample``."""
        models = {**fitted.quantiles, **{f"sale_{h}d": m for h, m in fitted.sale.items()}}
        graphs = {name: _onnx(m, len(INPUTS)) for name, m in models.items()}
        pricer = cls({name: session(raw) for name, raw in graphs.items()}, params)
        x = np.asarray(sample, dtype=np.float32)
        for name, model in models.items():
            want = np.asarray(model.predict(x, raw_score=name.startswith("sale")), float)
            error = float(np.max(np.abs(pricer._run(name, x).reshape(-1) - want)))
            if error > PARITY_TOLERANCE:
                raise ParityError(
                    f"{name}: ONNX Runtime differs from LightGBM by {error:.3g} on "
                    f"{len(x)} rows (tolerance {PARITY_TOLERANCE:g}); the model was not "
                    "registered",
                    field=name,
                )
        median = fitted.quantiles["median"]
        package = ModelPackage(
            name=MODEL_NAME,
            onnx_model=graphs["median"],
            features=list(INPUTS),
            reference=lambda rows: median.predict(rows).reshape(-1, 1),
            sample=x,
            output="variable",
            preprocessing={"target": "log(sale price / reference) - market index"},
            tolerance=PARITY_TOLERANCE,
            description="market value with a conformal interval, and sale probability by price",
            artifacts={
                **{f"{name}.onnx": raw for name, raw in graphs.items() if name != "median"},
                "pricing.json": params.to_json(),
            },
        )
        return pricer, package

    @classmethod
    def from_registry(cls, registry: Any, version: int) -> Pricer:
        loaded = registry.load(MODEL_NAME, version)
        art = loaded.artifacts
        params = PricingParams.from_json(art["pricing.json"])
        sessions = {"median": session(loaded.onnx_model)}
        for name in ("lower", "upper", *(f"sale_{h}d" for h in params.horizons)):
            sessions[name] = session(art[f"{name}.onnx"])
        return cls(sessions, params, version)

    # ---- answering ---------------------------------------------------------------------
    def _run(self, name: str, x: np.ndarray) -> np.ndarray:
        (out,) = self.sessions[name].run(["variable"], {"input": x.astype(np.float32)})
        return np.asarray(out)

    def market_value(
        self, x: np.ndarray, index: np.ndarray, log_ref: np.ndarray, category: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(lower, median, upper) market value in EUR."""
        base = log_ref + index
        q = {n: self._run(n, x).reshape(-1).astype(float) for n in ("lower", "median", "upper")}
        lo_off, hi_off = self.offsets(category)
        lower = np.exp(base + np.minimum(q["lower"] - lo_off, q["median"]))
        upper = np.exp(base + np.maximum(q["upper"] + hi_off, q["median"]))
        return lower, np.exp(base + q["median"]), upper

    def offsets(self, category: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each row's conformal corrections: its category's, else the global ones."""
        table = self.params.offsets
        pairs = [table.get(str(int(c)), table[GLOBAL]) for c in category]
        both = np.array(pairs, dtype=float).reshape(-1, 2)
        return both[:, 0], both[:, 1]

    def sale_probability(
        self, x: np.ndarray, relative_price: np.ndarray, horizon: int
    ) -> np.ndarray:
        """Calibrated P(sold within ``horizon`` days) at each row's relative price:
        ``1 - exp(-exp(a * (g(x) - beta * r) + b))``, ``g`` the trees' raw score."""
        g = self._run(f"sale_{horizon}d", x).reshape(-1).astype(np.float64)
        beta, a, b = self.params.sale[str(horizon)]
        return cloglog_probability(a * (g - beta * np.asarray(relative_price, float)) + b)

    def curve(
        self,
        x: np.ndarray,
        index: np.ndarray,
        log_ref: np.ndarray,
        median: np.ndarray,
        horizon: int,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(prices, sale probabilities), each (rows, len(GRID)): the demand curve per row."""
        n, g = len(x), len(GRID)
        prices = median[:, None] * np.exp(GRID)[None, :]
        relative = relative_price(prices, log_ref[:, None], index[:, None])
        p = self.sale_probability(np.repeat(x, g, axis=0), relative.reshape(-1), horizon)
        return prices, p.reshape(n, g)

    def suggest(
        self,
        x: np.ndarray,
        index: np.ndarray,
        log_ref: np.ndarray,
        category: np.ndarray,
        horizon: int,
        asking: np.ndarray | None = None,
    ) -> Suggestions:
        """The revenue-maximizing price per row, on :data:`GRID` around the median value."""
        lower, median, upper = self.market_value(x, index, log_ref, category)
        prices, p = self.curve(x, index, log_ref, median, horizon)
        best = np.argmax(prices * p, axis=1)
        rows = np.arange(len(x))
        asked = None
        if asking is not None:
            asked = self.sale_probability(x, relative_price(asking, log_ref, index), horizon)
        return Suggestions(
            lower=lower,
            median=median,
            upper=upper,
            price=np.round(prices[rows, best]),
            probability=p[rows, best],
            asking_probability=asked,
        )


def _onnx(model: Any, n_inputs: int) -> bytes:
    """A LightGBM model as ONNX; one trained with the custom sale objective converts as a
    regression booster (its raw score: the converter knows no custom objectives)."""
    import lightgbm as lgb
    import onnxmltools
    from onnxmltools.convert.common.data_types import FloatTensorType

    if callable(model.get_params().get("objective")):
        text = model.booster_.model_to_string()
        text = text.replace("\nfeature_names=", "\nobjective=regression\nfeature_names=", 1)
        model = lgb.Booster(model_str=text)
        model.params["objective"] = "regression"
    onx = onnxmltools.convert_lightgbm(
        model,
        initial_types=[("input", FloatTensorType([None, n_inputs]))],
        target_opset=15,
        zipmap=False,
    )
    raw: bytes = onx.SerializeToString()
    return raw
