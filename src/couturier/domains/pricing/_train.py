"""Fitting: the market-value models with their conformal interval, and the sale-probability
models, monotone in price and calibrated.

* **Market value.** Three LightGBM quantile regressions (the interval's two ends and the
  median) of ``log(sale price / reference) - market index``. Raw quantile models under-cover,
  so the interval is conformalized on a later calibration window with MAPIE's CQR
  (``ConformalizedQuantileRegressor``, prefit). It is *Mondrian*: each category with enough
  calibration sales gets its own correction, the rest share the global one, so no category's
  coverage rides on another's.
* **Sale probability.** For each horizon (7 and 30 days), a complementary log-log model of
  "sold within H days at the listed price" (a sale hazard proportional to a power of the
  price): LightGBM for the listing and its market, a non-negative price elasticity for the
  relative price, recalibrated on the calibration window (:func:`fit_sale_model`). The
  probability falls as the price rises by construction, and extrapolates smoothly below the
  prices sellers tried; decision 0013 records the two models tried before it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

__all__ = ["Fitted", "PricingConfig", "fit_market_value", "fit_sale_model"]

GLOBAL = "*"


@dataclass(frozen=True)
class PricingConfig:
    """What the recipe fits. ``split``: the train / calibration / holdout boundaries, as
    shares of the examples in listing-time order."""

    confidence: float = 0.9
    horizons: tuple[int, ...] = (7, 30)
    split: tuple[float, float] = (0.6, 0.8)
    min_segment: int = 150  # Mondrian: fewer calibration sales than this share the global offset
    n_estimators: int = 300
    seed: int = 7


@dataclass
class Fitted:
    """LightGBM models and the numbers serving needs beside them."""

    quantiles: dict[str, Any]  # "lower", "median", "upper" -> LGBMRegressor
    offsets: dict[str, tuple[float, float]]  # category code ("*" for all) -> (lower, upper)
    sale: dict[int, Any] = field(default_factory=dict)  # horizon -> LGBMClassifier
    sale_params: dict[int, tuple[float, float, float]] = field(default_factory=dict)  # beta, a, b


def _regressor(alpha: float, config: PricingConfig) -> Any:
    import lightgbm as lgb

    return lgb.LGBMRegressor(
        objective="quantile",
        alpha=alpha,  # passed for the median too: MAPIE's CQR reads each model's alpha
        n_estimators=config.n_estimators,
        learning_rate=0.05,
        num_leaves=15,
        min_child_samples=30,
        subsample=0.8,
        subsample_freq=1,
        colsample_bytree=0.9,
        random_state=config.seed,
        deterministic=True,  # the same trees on any machine, whatever its core count
        force_row_wise=True,
        verbose=-1,
    )


def fit_market_value(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_cal: np.ndarray,
    y_cal: np.ndarray,
    segment_cal: np.ndarray,
    config: PricingConfig,
) -> Fitted:
    """The three quantile models and their conformal offsets (global and per category)."""
    a = (1.0 - config.confidence) / 2.0
    models = {
        "lower": _regressor(a, config).fit(x_train, y_train),
        "upper": _regressor(1.0 - a, config).fit(x_train, y_train),
        "median": _regressor(0.5, config).fit(x_train, y_train),
    }
    offsets = {GLOBAL: _offsets(models, x_cal, y_cal, config.confidence)}
    for seg in np.unique(segment_cal):
        mask = segment_cal == seg
        if mask.sum() >= config.min_segment:
            offsets[str(int(seg))] = _offsets(models, x_cal[mask], y_cal[mask], config.confidence)
    return Fitted(quantiles=models, offsets=offsets)


def _offsets(
    models: dict[str, Any], x: np.ndarray, y: np.ndarray, confidence: float
) -> tuple[float, float]:
    """CQR's corrections on one calibration set, read back from MAPIE's interval: the lower
    end moves down by the first, the upper end up by the second (negative: the raw interval
    was too wide)."""
    from mapie.regression import ConformalizedQuantileRegressor

    cqr = ConformalizedQuantileRegressor(
        [models["lower"], models["upper"], models["median"]],
        confidence_level=confidence,
        prefit=True,
    )
    cqr.conformalize(x, y)
    # the corrections are the same for every row: read them on the row whose raw interval is
    # widest (ends that cross make MAPIE log a warning through the root logger)
    widest = int(np.argmax(models["upper"].predict(x) - models["lower"].predict(x)))
    row = x[widest : widest + 1]
    _, interval = cqr.predict_interval(row)
    lower = float(models["lower"].predict(row)[0] - interval[0, 0, 0])
    upper = float(interval[0, 1, 0] - models["upper"].predict(row)[0])
    return lower, upper


def fit_sale_model(
    train: tuple[np.ndarray, np.ndarray, np.ndarray],
    calibration: tuple[np.ndarray, np.ndarray, np.ndarray],
    horizon: int,
    fitted: Fitted,
    config: PricingConfig,
) -> None:
    """P(sold within ``horizon`` days | price, listing) = 1 - exp(-exp(a * (g(x) - beta * r) + b)).

    A complementary log-log model: the grouped-time form of a sale hazard proportional to
    ``exp(g(x)) * (price)^-beta``. ``r`` is the relative price, ``g`` a LightGBM model (with
    that likelihood as its objective) of everything else. ``g`` and ``beta`` are fitted by
    backfitting on the training window (the trees with ``c - beta * r`` as their initial score,
    then ``beta`` and ``c`` by maximum likelihood with the trees' score as an offset, three
    rounds); ``a`` and ``b`` recalibrate on the calibration window. ``beta >= 0`` and ``a > 0``:
    the probability falls as the price rises, smoothly, also below the prices sellers tried.
    Each of ``train`` and ``calibration`` is (inputs, relative price, label).
    """
    import lightgbm as lgb

    x, r, y = train
    beta, c = _fit_linear(r, y, np.zeros(len(y)))
    model = None
    for _ in range(3):
        model = lgb.LGBMRegressor(
            objective=cast(Any, _cloglog_objective),
            n_estimators=config.n_estimators,
            learning_rate=0.05,
            num_leaves=15,
            min_child_samples=40,
            subsample=0.8,
            subsample_freq=1,
            colsample_bytree=0.9,
            random_state=config.seed,
            deterministic=True,
            force_row_wise=True,
            verbose=-1,
        ).fit(x, y, init_score=c - beta * r)
        beta, c = _fit_linear(r, y, np.asarray(model.predict(x, raw_score=True)))
    xc, rc, yc = calibration
    z = np.asarray(model.predict(xc, raw_score=True)) + c - beta * rc  # type: ignore[union-attr]
    a, b = _fit_recalibration(z, yc)
    fitted.sale[horizon] = model
    fitted.sale_params[horizon] = (beta, a, a * c + b)


def cloglog_probability(eta: np.ndarray) -> np.ndarray:
    """1 - exp(-exp(eta)), the probability of at least one event of a Poisson process."""
    p: np.ndarray = -np.expm1(-np.exp(np.clip(eta, -30.0, 5.0)))
    return p


def _nll(eta: np.ndarray, y: np.ndarray) -> float:
    """The Bernoulli negative log-likelihood under the complementary log-log link."""
    p = np.clip(cloglog_probability(eta), 1e-12, 1.0 - 1e-12)
    return float(-np.sum(y * np.log(p) + (1.0 - y) * np.log1p(-p)))


def _cloglog_objective(y: np.ndarray, eta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gradient and hessian of :func:`_nll` in the raw score, for LightGBM."""
    mu = np.exp(np.clip(eta, -30.0, 5.0))
    em1 = np.maximum(np.expm1(mu), 1e-300)
    grad = np.where(y > 0, -mu / em1, mu)
    hess = np.where(y > 0, mu * (mu * np.exp(mu) - em1) / em1**2, mu)
    return grad, np.maximum(hess, 1e-6)


def _fit_linear(r: np.ndarray, y: np.ndarray, offset: np.ndarray) -> tuple[float, float]:
    """(beta, c) of ``offset + c - beta * r`` by maximum likelihood, beta in [0, 20]."""
    from scipy.optimize import minimize

    done = minimize(
        lambda v: _nll(offset + v[1] - v[0] * r, y),
        x0=np.array([1.0, 0.0]),
        bounds=[(0.0, 20.0), (-10.0, 10.0)],
        method="L-BFGS-B",
    )
    return float(done.x[0]), float(done.x[1])


def _fit_recalibration(z: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(a, b) of ``a * z + b``, a in [0.05, 20] so the order of ``z`` is kept."""
    from scipy.optimize import minimize

    done = minimize(
        lambda v: _nll(v[0] * z + v[1], y),
        x0=np.array([1.0, 0.0]),
        bounds=[(0.05, 20.0), (-10.0, 10.0)],
        method="L-BFGS-B",
    )
    return float(done.x[0]), float(done.x[1])
