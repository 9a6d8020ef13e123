"""Pricing: interval coverage, price error, sale-probability calibration, revenue against the
oracle price, serving latency, and recovery from a price shock.

    python benchmarks/pricing.py --out benchmarks/results/pricing.json
        [--only quality,serving,shock] [--listings 20000] [--shock-listings 50000] [--seconds 10]

* ``quality``: the pricing recipe (features written, registered and materialized; the models;
  the gate) on a simulated marketplace of ``--listings`` listings over the default 120 days,
  no drift, photos not rendered (pricing reads none). The holdout is the last 20% of the
  listings that sold, by listing time.
* ``serving``: ``couturier serve`` on that home; wrk with one connection (single requests, one
  after another) and with 8, cycling over 200 different listings' requests.
* ``shock``: the ``price_shock`` scenario (house 0's market value drops 20% on day 72). For
  each day from the day before the shock to 10 days after it, the recipe is fitted on the
  marketplace as it was that day (``Marketplace.at``) and scores the house's listings of the
  next 7 days that sold within 30 days; the model fitted the day before the shock is scored on
  the same windows (what no retraining would give). ``recovery_days``: the first day from
  which every retrained model, to the last day measured, covers >= 0.85 of the house's sales.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from _results import write_result  # beside this script, on sys.path when it runs
from _server import couturier_server

ROOT = Path(__file__).resolve().parent.parent
SHOCK_HOUSE = 0
RECOVERED = 0.85

WRK_BODIES = """
local bodies = {{{bodies}}}
local i = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  i = i % #bodies + 1
  return wrk.format(nil, nil, nil, bodies[i])
end
"""


def _repo(domain: Any, home: Path, market: Any, *, online: bool) -> Any:
    from couturier.features import FeatureRepo, materialize
    from couturier.settings import Settings

    repo = FeatureRepo(domain.features, Settings(home=home))
    repo.write_sources(market)
    repo.apply()
    if online:
        materialize(repo)
    return repo


def quality(home: Path, listings: int) -> dict[str, Any]:
    """Simulate, then the daily retrain: features and the recipe."""
    from couturier.domain import get_domain
    from couturier.marketplace import SimulationConfig, simulate
    from couturier.registry import ModelRegistry
    from couturier.settings import Settings

    config = SimulationConfig.of(listings=listings, render_photos=False)
    market = simulate(config, home / "market", workers=2)
    domain = get_domain("pricing")
    if domain.features is None or domain.recipe is None:
        raise RuntimeError("the pricing domain declares no features or recipe")
    started = time.perf_counter()
    repo = _repo(domain, home, market, online=True)
    features_s = time.perf_counter() - started
    registry = ModelRegistry(Settings(home=home))
    report = domain.recipe(market, repo, registry)
    total = time.perf_counter() - started
    registry.close()
    repo.close()
    m = report.details["metrics"]
    return {
        "listings": listings,
        "coverage": m["coverage"],
        "segment_coverage_min": m["segment_coverage_min"],
        "interval_width": m["interval_width"],
        "mdape": m["mdape"],
        "baseline_mdape": m["baseline_mdape"],
        "mdape_vs_baseline": m["mdape"] / m["baseline_mdape"],
        "oracle_mdape": m["oracle_mdape"],
        "sale_probability_ece": m["sale_30d_ece"],
        "sale_probability_ece_7d": m["sale_7d_ece"],
        "revenue_vs_oracle": m["revenue_vs_oracle"],
        "revenue_vs_oracle_total": m["revenue_vs_oracle_total"],
        "asking_revenue_vs_oracle": m["asking_revenue_vs_oracle"],
        "daily_retrain_seconds": round(total, 1),
        "features_seconds": round(features_s, 1),
        "gate_passed": report.gate_passed,
        "champion_withheld": report.details.get("champion_withheld"),
        "examples": report.details.get("examples"),
        "coverage_by_segment": report.details.get("coverage_by_segment"),
        "metrics": m,
    }


def _bodies(home: Path) -> list[str]:
    from couturier.marketplace import Marketplace

    listings = Marketplace(home / "market").read("listings")
    rows = listings.iloc[np.random.default_rng(0).choice(len(listings), 200, replace=False)]
    fields = ["seller_id", "product_id", "brand_id", "category", "condition", "description"]
    out = []
    for r in rows.to_dict("records"):
        body = {k: r[k] for k in fields}
        body.update(n_photos=int(r["n_photos"]), asking_price=float(r["asking_price"]))
        out.append(
            json.dumps({k: int(v) if isinstance(v, np.integer) else v for k, v in body.items()})
        )
    return out


def _wrk(url: str, bodies: list[str], seconds: int, connections: int, work: Path) -> dict[str, Any]:
    from discovery import wrk_ms  # the same wrk output parsing as the discovery benchmark

    script = work / "bodies.lua"
    script.write_text(WRK_BODIES.format(bodies=", ".join(json.dumps(b) for b in bodies)))
    command = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": round(rps, 1),
        "p50_ms": round(wrk_ms(re.search(r"\s50%\s+(\S+)", out).group(1)), 3),  # type: ignore[union-attr]
        "p99_ms": round(wrk_ms(re.search(r"\s99%\s+(\S+)", out).group(1)), 3),  # type: ignore[union-attr]
        "non_2xx": int(errors.group(1)) if errors else 0,
    }


def serving(home: Path, seconds: int) -> dict[str, Any]:
    bodies = _bodies(home)
    with couturier_server(home) as url, tempfile.TemporaryDirectory() as tmp:
        route = f"{url}/v1/price-suggestion"
        _wrk(route, bodies, 2, 1, Path(tmp))  # warm-up
        single = _wrk(route, bodies, seconds, 1, Path(tmp))
        loaded = _wrk(route, bodies, seconds, 8, Path(tmp))
    return {
        "serving_p99_ms": single["p99_ms"],
        "single": {**single, "load": "wrk -t1 -c1: single requests, one after another"},
        "eight_connections": {**loaded, "load": "wrk -t1 -c8"},
    }


def _house_coverage(pricer: Any, data: Any, start: pd.Timestamp) -> tuple[float, int]:
    """Coverage of the shocked house's sales among listings of [start, start + 7 days)."""
    from couturier.domains.pricing._recipe import model_inputs

    f = data.frame
    window = (f["listed_at"] >= start) & (f["listed_at"] < start + pd.Timedelta(days=7))
    mask = (data.value_examples & window & (f["brand_id"] == SHOCK_HOUSE)).to_numpy()
    mask &= f["reference_price"].notna().to_numpy()
    rows = f[mask]  # the window's rows only: the whole frame is 50,000 listings
    inp = model_inputs(rows, pricer.params.default_index)
    lower, _, upper = pricer.market_value(inp.x, inp.index, inp.log_ref, inp.category)
    sale = rows["sale_price"].to_numpy(float)
    return float(np.mean((sale >= lower) & (sale <= upper))), int(mask.sum())


def shock(home: Path, listings: int) -> dict[str, Any]:
    from couturier.domain import get_domain
    from couturier.domains.pricing import _data
    from couturier.domains.pricing._recipe import fit_pricing
    from couturier.marketplace import Marketplace, SimulationConfig, simulate

    config = SimulationConfig.of(listings=listings, scenario="price_shock", render_photos=False)
    market = simulate(config, home / "market", workers=2)
    domain = get_domain("pricing")
    full = _repo(domain, home / "full", market, online=False)
    scored = _data.load(market, full, (0.6, 0.8))  # every listing's features, point in time
    shock_at = pd.Timestamp(config.start) + pd.Timedelta(days=config.scenario_start)
    days, frozen = [], None
    for d in range(-1, 11):
        as_of = shock_at + pd.Timedelta(days=d)
        seen = Marketplace(home / "market").at(as_of.to_pydatetime())
        started = time.perf_counter()
        repo = _repo(domain, home / f"day{d}", seen, online=False)
        fit = fit_pricing(seen, repo)
        repo.close()
        frozen = frozen or fit.pricer
        coverage, n = _house_coverage(fit.pricer, scored, as_of)
        kept, _ = _house_coverage(frozen, scored, as_of)
        days.append(
            {
                "day": d,
                "coverage_retrained": round(coverage, 3),
                "coverage_not_retrained": round(kept, 3),
                "sales": n,
                "fit_seconds": round(time.perf_counter() - started, 1),
            }
        )
        print(json.dumps(days[-1]), flush=True)
    assert frozen is not None
    before, n_before = _house_coverage(frozen, scored, shock_at - pd.Timedelta(days=8))
    full.close()
    after = [r for r in days if r["day"] >= 0]
    # recovered: from that day to the last one measured, every day's model covers >= 0.85
    recovered = next(
        (
            r["day"]
            for i, r in enumerate(after)
            if all(s["coverage_retrained"] >= RECOVERED for s in after[i:])
        ),
        None,
    )
    week = [r for r in after if r["day"] < 7]
    sales = sum(r["sales"] for r in week)

    def pooled(key: str) -> float:
        return round(sum(r[key] * r["sales"] for r in week) / max(sales, 1), 3)

    return {
        "listings": listings,
        "house": SHOCK_HOUSE,
        "shock_day": config.scenario_start,
        "recovery_days": recovered,
        "target": (
            f"coverage >= {RECOVERED} of the house's next-7-day sales, from that day to the "
            "last day measured"
        ),
        "coverage_before_shock": {"coverage": round(before, 3), "sales": n_before},
        "first_week": {
            "retrained": pooled("coverage_retrained"),
            "not_retrained": pooled("coverage_not_retrained"),
            "sales": sales,
        },
        "days": days,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--only", default="quality,serving,shock")
    parser.add_argument("--listings", type=int, default=20_000)
    parser.add_argument("--shock-listings", type=int, default=50_000)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    only = set(args.only.split(","))
    result: dict[str, Any] = {}
    home = Path(tempfile.mkdtemp(prefix="pricing-bench-"))
    try:
        if only & {"quality", "serving"}:
            result["quality"] = quality(home / "quality", args.listings)
            result.update(
                {
                    k: result["quality"][k]
                    for k in (
                        "coverage",
                        "segment_coverage_min",
                        "mdape",
                        "baseline_mdape",
                        "oracle_mdape",
                        "sale_probability_ece",
                        "revenue_vs_oracle",
                    )
                }
            )
            print(json.dumps(result["quality"], indent=2, default=str), flush=True)
        if "serving" in only:
            result["serving"] = serving(home / "quality", args.seconds)
            result["serving_p99_ms"] = result["serving"]["serving_p99_ms"]
            print(json.dumps(result["serving"], indent=2), flush=True)
        if "shock" in only:
            result["price_shock"] = shock(home / "shock", args.shock_listings)
            print(json.dumps(result["price_shock"], indent=2), flush=True)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    write_result(args.out, result, default=str)


if __name__ == "__main__":
    main()
