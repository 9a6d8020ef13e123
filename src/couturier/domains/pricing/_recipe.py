"""The pricing recipe, one function a pipeline calls daily: examples from the feature store,
the market-value and sale-probability models, the holdout, the gate, the report.

>>> fit = fit_pricing(market, repo)                   # doctest: +SKIP
>>> fit.metrics["coverage"], fit.metrics["mdape"]     # doctest: +SKIP
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from couturier.domain import RecipeReport
from couturier.domains.pricing import _data
from couturier.domains.pricing._design import frame_index, frame_matrix, relative_price
from couturier.domains.pricing._evaluate import (
    ValueScores,
    baseline_prices,
    coverage_table,
    segment_columns,
)
from couturier.domains.pricing._features import CATEGORY_CODE
from couturier.domains.pricing._pricer import MODEL_NAME, Pricer, PricingParams
from couturier.domains.pricing._train import (
    PricingConfig,
    fit_market_value,
    fit_sale_model,
)
from couturier.errors import CouturierError
from couturier.evaluation import Evaluation, expected_calibration_error
from couturier.features import FeatureRepo
from couturier.marketplace import Marketplace, expected_revenue
from couturier.registry import GatePolicy, ModelPackage, ModelRegistry, RegisteredVersion

__all__ = [
    "EXPERIMENT",
    "POLICY",
    "Holdout",
    "Inputs",
    "PricingFit",
    "ece_noise_floor",
    "fit_pricing",
    "model_inputs",
    "run_recipe",
    "score_holdout",
]

EXPERIMENT = "pricing"
#: the gate: the median's error may not grow against the champion on the same holdout (any
#: category, house, price band or condition with 100+ sales may lose at most 0.02), and the
#: 30-day sale probability is calibrated: its ECE beyond the sampling noise floor
#: (:func:`ece_noise_floor`) is at most 0.05
POLICY = GatePolicy(
    metric="neg_mdape",
    min_improvement=0.0,
    max_slice_regression=0.02,
    min_slice_size=100,
    max_ece=0.05,
    latency_budget_ms=5.0,
)
MIN_COVERAGE = 0.85


@dataclass
class Inputs:
    """The frame's model inputs, computed once."""

    x: np.ndarray
    index: np.ndarray
    log_ref: np.ndarray
    category: np.ndarray

    def take(self, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return self.x[mask], self.index[mask], self.log_ref[mask], self.category[mask]

    def subset(self, mask: np.ndarray) -> Inputs:
        return Inputs(*self.take(mask))

    def relative(self, price: np.ndarray) -> np.ndarray:
        """Each row's ``price`` as the models read it (:func:`relative_price`)."""
        return relative_price(np.asarray(price, dtype=float), self.log_ref, self.index)


@dataclass
class Holdout:
    """What :func:`score_holdout` finds: the gate's evaluation, the sales' intervals, the
    metrics, the tables the report shows, and per listing with the simulator's truth, the
    expected revenue at each price (suggested, the seller's own) over the oracle price's."""

    evaluation: Evaluation
    scores: ValueScores
    metrics: dict[str, float]
    details: dict[str, Any]
    revenue: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class PricingFit:
    data: _data.PricingData
    pricer: Pricer
    package: ModelPackage
    evaluation: Evaluation
    scores: ValueScores
    metrics: dict[str, float]
    inputs: Inputs  # the model inputs of every row of ``data.frame``
    details: dict[str, Any] = field(default_factory=dict)
    revenue: dict[str, np.ndarray] = field(default_factory=dict)  # as in :class:`Holdout`


def model_inputs(frame: pd.DataFrame, default_index: float) -> Inputs:
    x, m = frame_matrix(frame, default_index)
    ref = frame["reference_price"].to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_ref = np.log(ref)
    return Inputs(x, m, log_ref, frame["category"].map(CATEGORY_CODE).to_numpy(np.int64))


def fit_pricing(
    market: Marketplace, repo: FeatureRepo, config: PricingConfig | None = None
) -> PricingFit:
    """Examples, both models, the served ONNX pricer, and its holdout scores."""
    config = config or PricingConfig()
    started = time.perf_counter()
    data = _data.load(market, repo, config.split)
    f = data.frame
    known = f["reference_price"].notna().to_numpy()
    train = data.part("train").to_numpy() & known
    calibration = data.part("calibration").to_numpy() & known
    seen = frame_index(f[train])  # NaN where a row has no market index
    default_index = float(np.median(seen[~np.isnan(seen)])) if (~np.isnan(seen)).any() else 0.0
    inp = model_inputs(f, default_index)
    value = data.value_examples.to_numpy()
    sale = data.sale_examples.to_numpy()
    y_value = inp.relative(f["sale_price"].to_numpy(float))
    rel_ask = inp.relative(f["asking_price"].to_numpy(float))

    tr, cal = value & train, value & calibration
    fitted = fit_market_value(
        inp.x[tr], y_value[tr], inp.x[cal], y_value[cal], inp.category[cal], config
    )
    for h in config.horizons:
        tr, cal = sale & train, sale & calibration
        labels = f[f"sold_{h}d"].to_numpy()
        windows = [(inp.x[w], rel_ask[w], labels[w]) for w in (tr, cal)]
        fit_sale_model(windows[0], windows[1], h, fitted, config)
    fallback = f[known].groupby(["brand_id", "category"])["reference_price"].median()
    params = PricingParams(
        confidence=config.confidence,
        horizons=list(config.horizons),
        offsets=fitted.offsets,
        sale={str(h): v for h, v in fitted.sale_params.items()},
        default_index=default_index,
        houses=sorted(int(b) for b in f["brand_id"].unique()),
        reference_fallback={
            f"{int(key[0])}:{CATEGORY_CODE[str(key[1])]}": float(v)
            for key, v in fallback.items()
            if isinstance(key, tuple)
        },
    )
    pricer, package = Pricer.from_fitted(fitted, params, inp.x[value & train][:64])
    fit_s = time.perf_counter() - started
    held = score_holdout(pricer, data, inp)
    scores, details = held.scores, held.details
    details["seconds"] = {"fit": round(fit_s, 1), "total": round(time.perf_counter() - started, 1)}
    details["examples"] = {
        "value_train": int((value & train).sum()),
        "value_calibration": int((value & calibration).sum()),
        "value_holdout": len(scores.sale),
        "sale_train": int((sale & train).sum()),
    }
    return PricingFit(
        data, pricer, package, held.evaluation, scores, held.metrics, inp, details, held.revenue
    )


def score_holdout(pricer: Pricer, data: _data.PricingData, inp: Inputs | None = None) -> Holdout:
    """``pricer`` on ``data``'s holdout: what the gate, the report and the benchmark read."""
    f = data.frame
    inp = inp or model_inputs(f, pricer.params.default_index)
    known = f["reference_price"].notna().to_numpy()
    hold = data.part("holdout").to_numpy() & known
    before = (data.part("train") | data.part("calibration")).to_numpy() & known
    value = data.value_examples.to_numpy()
    v = value & hold
    lower, median, upper = pricer.market_value(*inp.take(v))
    scores = ValueScores(
        sale=f.loc[v, "sale_price"].to_numpy(float),
        lower=lower,
        median=median,
        upper=upper,
        baseline=baseline_prices(f[value & before], f[v]),
        segments=segment_columns(f[v]),
    )
    metrics = scores.metrics()
    s = data.sale_examples.to_numpy() & hold
    rel_ask = inp.relative(f["asking_price"].to_numpy(float))
    for h in pricer.params.horizons:
        p = pricer.sale_probability(inp.x[s], rel_ask[s], h)
        y = f.loc[s, f"sold_{h}d"].to_numpy()
        metrics[f"sale_{h}d_ece"] = expected_calibration_error(y, p)
        metrics[f"sale_{h}d_rate"] = float(y.mean())
        if h == 30:
            metrics["ece_noise_floor"] = ece_noise_floor(p)
    # the gate's calibration check: the 30-day ECE beyond what sampling alone gives
    metrics["ece"] = max(0.0, metrics["sale_30d_ece"] - metrics["ece_noise_floor"])
    details: dict[str, Any] = {"coverage_by_segment": coverage_table(scores).to_dict("records")}
    weeks = f.loc[v, "listed_at"].dt.tz_convert(None).dt.to_period("W").astype(str).to_numpy()
    details["coverage_by_week"] = (
        pd.Series(scores.covered).groupby(weeks).agg(["mean", "size"]).reset_index().values.tolist()
    )
    revenue: dict[str, np.ndarray] = {}
    if data.has_truth:
        revenue_metrics, revenue = _revenue(pricer, f, inp, hold)
        metrics.update(revenue_metrics)
        # the bar: the true market value times the training window's typical sale / value
        k = float(
            (f.loc[value & before, "sale_price"] / f.loc[value & before, "market_value"]).median()
        )
        oracle = k * f.loc[v, "market_value"].to_numpy(float)
        metrics["oracle_mdape"] = float(np.median(np.abs(oracle - scores.sale) / scores.sale))
    evaluation = Evaluation(overall=metrics, slices=scores.slices(), holdout=_holdout_id(data))
    return Holdout(evaluation, scores, metrics, details, revenue)


def ece_noise_floor(p: np.ndarray, draws: int = 100, seed: int = 0) -> float:
    """The ECE a perfectly calibrated model would show on these predictions, from sampling
    alone: the mean ECE of outcomes drawn as Bernoulli(p). The binned ECE is biased upward by
    about this much (with 15 bins on ~600 listings, ~0.04; on ~5,000, ~0.015)."""
    rng = np.random.default_rng(seed)
    if len(p) == 0:
        return 0.0
    return float(
        np.mean([expected_calibration_error(rng.random(len(p)) < p, p) for _ in range(draws)])
    )


def _revenue(
    pricer: Pricer, f: pd.DataFrame, inp: Inputs, hold: np.ndarray
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Expected revenue (the simulator's true demand curve) at the suggested price and at the
    seller's own price over the oracle price's: the metrics, and the ratios per holdout
    listing (what the report plots)."""
    h = hold & f["market_value"].notna().to_numpy()
    suggested = pricer.suggest(*inp.take(h), 30)
    value, demand = f.loc[h, "market_value"].to_numpy(), f.loc[h, "demand_30d"].to_numpy()
    at_suggested = expected_revenue(suggested.price, value, demand)
    at_oracle = expected_revenue(f.loc[h, "oracle_price"].to_numpy(), value, demand)
    at_asking = expected_revenue(f.loc[h, "asking_price"].to_numpy(), value, demand)
    ratios = {
        "suggested price": at_suggested / at_oracle,
        "seller's own price": at_asking / at_oracle,
    }
    metrics = {
        "revenue_vs_oracle": float(np.mean(ratios["suggested price"])),
        "revenue_vs_oracle_total": float(at_suggested.sum() / at_oracle.sum()),
        "asking_revenue_vs_oracle": float(np.mean(ratios["seller's own price"])),
    }
    return metrics, ratios


def _holdout_id(data: _data.PricingData) -> str:
    return f"pricing holdout from {data.bounds[2]:%Y-%m-%dT%H:%M} to {data.cutoff:%Y-%m-%d}"


def withheld(metrics: dict[str, float]) -> str | None:
    """Why a version that passed the registry's gate must still not become champion."""
    if metrics["coverage"] < MIN_COVERAGE:
        return (
            f"interval coverage {metrics['coverage']:.3f} on the holdout is below "
            f"{MIN_COVERAGE}; promote it by hand only knowingly"
        )
    if metrics["mdape"] >= metrics["baseline_mdape"]:
        return (
            f"median error {metrics['mdape']:.3f} does not beat the house x product x condition "
            f"median's {metrics['baseline_mdape']:.3f}"
        )
    return None


def _champion_evaluation(
    registry: ModelRegistry, fit: PricingFit
) -> tuple[int | None, Evaluation | None]:
    champion = registry.alias_version(MODEL_NAME, "champion")
    if champion is None:
        return None, None
    try:
        old = Pricer.from_registry(registry, champion)
    except (CouturierError, KeyError, ValueError):
        return champion, None  # an unreadable champion is not judged against, and says so
    return champion, score_holdout(old, fit.data).evaluation


def run_recipe(
    market: Marketplace,
    repo: FeatureRepo,
    registry: ModelRegistry,
    *,
    config: PricingConfig | None = None,
) -> RecipeReport:
    """Fit, judge and register ``pricing``; the first version that passes becomes champion.

    Every version, the first and each daily one, must also clear the domain's own bar
    (:func:`withheld`: interval coverage >= 0.85 on the holdout, median error below the
    baseline's). One that passes the registry's gate but not this bar is registered for the
    record, is not left as challenger, and reports ``gate_passed=False`` with the reason in
    ``details["champion_withheld"]``, so the pipeline's promotion step never promotes it."""
    from couturier.domains.pricing._report import write_report

    fit = fit_pricing(market, repo, config)
    champion, champion_eval = _champion_evaluation(registry, fit)
    lineage = {
        "simulator_seed": market.config.seed,
        "simulator_scenario": market.config.scenario,
        **fit.data.training_set.lineage,
    }
    reason = withheld(fit.metrics)
    with registry.start_run(EXPERIMENT, MODEL_NAME, lineage=lineage) as run:
        run.log_evaluation(fit.evaluation)
        registered: RegisteredVersion = registry.register(
            fit.package, fit.evaluation, run=run, policy=POLICY, champion_evaluation=champion_eval
        )
    promotable = registered.verdict.passed and reason is None
    if registered.verdict.passed and reason is not None:
        registry.clear_alias(MODEL_NAME, "challenger", actor="pipeline", reason=reason)
    if champion is None and promotable:
        registry.promote(
            MODEL_NAME, registered.version, "champion", actor="pipeline", reason="first version"
        )
    report = write_report(fit, version=registered.version, folder=repo.settings.paths.reports)
    headline = (
        "coverage",
        "segment_coverage_min",
        "mdape",
        "baseline_mdape",
        "sale_30d_ece",
        "ece_noise_floor",
        "revenue_vs_oracle",
    )
    metrics = {k: fit.metrics[k] for k in headline if not math.isnan(fit.metrics.get(k, math.nan))}
    return RecipeReport(
        model=MODEL_NAME,
        version=registered.version,
        gate_passed=promotable,
        champion=registry.alias_version(MODEL_NAME, "champion"),
        metrics=metrics,
        lineage=lineage,
        details={
            **fit.details,
            "metrics": fit.metrics,
            "report": str(report),
            "champion_withheld": reason,
        },
    )
