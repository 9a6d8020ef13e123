"""The authentication recipe from scratch, its metrics next to the oracle's, and an unseen factory.

    python benchmarks/authentication.py --out benchmarks/results/authentication.json \
        [--listings 50000] [--workdir DIR]

1. Simulates the default marketplace with ``--listings`` listings (not timed as the recipe).
2. Runs the whole recipe (training set, listing model, image model, int8, references, fusion,
   evaluation, registration, report) and times it: ``recipe_seconds``.
3. Simulates the same marketplace with the ``new_factory`` scenario starting at the recipe's
   holdout cutoff: identical data before it (the simulator's streams guarantee it), a
   counterfeit factory nobody trained on after it. Scores that holdout with the registered
   graph, untouched, and reports it under ``unseen_factory``.

4. Runs the recipe on the demo's own world (what ``couturier demo`` simulates: 3,000 listings
   over 60 days) and reports its holdout PR-AUC as ``demo_pr_auc`` (``--no-demo`` skips it).

``--supervision verdict`` trains the image model on verdicts alone (the experts' control-point
reports unused), to measure what the reports add. ``--workdir`` keeps the simulated
marketplaces for a second run (default: a temporary folder).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from _results import write_result  # beside this script, on sys.path when it runs
from couturier.domains.authentication import FEATURES
from couturier.domains.authentication.decision import CostModel, expected_cost_per_1000
from couturier.domains.authentication.graph import AuthenticationGraph
from couturier.domains.authentication.image_model import ImageTrainConfig
from couturier.domains.authentication.recipe import RecipeConfig, run_recipe, score_period
from couturier.evaluation import evaluate
from couturier.features import FeatureRepo
from couturier.marketplace import Marketplace, SimulationConfig, simulate
from couturier.registry import ModelRegistry
from couturier.settings import Settings


def _market(config: SimulationConfig, path: Path) -> Marketplace:
    if (path / "manifest.json").is_file():
        market = Marketplace(path)
        if market.config == config:
            return market
    return simulate(config, path, workers=2, overwrite=True)


def _repo(market: Marketplace, home: Path) -> FeatureRepo:
    repo = FeatureRepo(FEATURES, Settings(home=home))
    repo.write_sources(market)
    repo.apply()
    return repo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--listings", type=int, default=50_000)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--supervision", choices=("report", "verdict"), default="report")
    parser.add_argument("--no-demo", dest="demo", action="store_false")
    args = parser.parse_args()
    recipe = RecipeConfig(image=ImageTrainConfig(reports=args.supervision == "report"))
    warnings.simplefilter("ignore")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="couturier-auth-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"listings": args.listings, "supervision": args.supervision}

    t = time.perf_counter()
    config = SimulationConfig.of(listings=args.listings)
    market = _market(config, work / "market")
    result["simulate_seconds"] = round(time.perf_counter() - t, 1)
    print(f"simulated {args.listings} listings in {result['simulate_seconds']} s", flush=True)

    home = work / "home"
    shutil.rmtree(home, ignore_errors=True)  # the recipe runs from scratch: no champion
    t = time.perf_counter()
    repo = _repo(market, home)
    registry = ModelRegistry(Settings(home=home))
    report = run_recipe(market, repo, registry, config=recipe, log=lambda m: print(m, flush=True))
    result["recipe_seconds"] = round(time.perf_counter() - t, 1)
    d = report.details
    m, o = d["metrics"], d["oracle"]
    result.update(
        {
            "pr_auc": m["pr_auc"],
            "oracle_pr_auc": o["pr_auc"],
            "recall_at_1pct_fpr": m["recall_at_1pct_fpr"],
            "oracle_recall_at_1pct_fpr": o["recall_at_1pct_fpr"],
            "expected_cost_per_1000": m["expected_cost_per_1000"],
            "oracle_expected_cost_per_1000": o["expected_cost_per_1000"],
            "ece": m["ece"],
            "roc_auc": m["roc_auc"],
            "oracle_roc_auc": o["roc_auc"],
            "int8_auc_drop": d["int8"]["auc_drop"],
            "int8_speedup": d["int8"]["speedup"],
            "int8": d["int8"],
            "image_variant": d["image_variant"],
            "retrieval_recall_at_10": d["retrieval_recall_at_10"],
            "stage_pr_auc": d["stage_pr_auc"],
            "image_model_pr_auc": d["stage_pr_auc"]["image_model"],
            "control_points": {  # NaN (one class only) as null: strict JSON readers
                k: {"auc": _finite(v["auc"]), "share_reported": v["share_reported"]}
                for k, v in d["control_points"].items()
            },
            "control_points_detail": {
                k: {m: _finite(x) for m, x in v.items()} for k, v in d["control_points"].items()
            },
            "reported_photos": d["reported_photos"],
            "stage_seconds": d["seconds"],
            "image_history": d["image_history"],
            "holdout_listings": m["n"],
            "holdout_counterfeits": m["positives"],
            "gate_passed": report.gate_passed,
            "versions": {"authentication": report.version, **d["components"]},
            "report": d["report"],
        }
    )
    print(json.dumps({k: v for k, v in result.items() if k != "image_history"}, indent=1))

    # ---- the same world, with a factory nobody trained on from the holdout cutoff
    cutoff = pd.Timestamp(d["cutoff"])
    start_day = (cutoff - pd.Timestamp(config.start)).total_seconds() / 86400
    unseen_config = SimulationConfig.of(
        listings=args.listings, scenario="new_factory", scenario_start_day=start_day
    )
    unseen = _market(unseen_config, work / "market-new-factory")
    graph = AuthenticationGraph.from_registry(registry, report.version, threads=2)
    unseen_repo = _repo(unseen, work / "home-new-factory")
    scored = score_period(unseen, unseen_repo, graph, cutoff)
    y = scored.frame["label"].to_numpy()
    p = scored.scores.probability
    ev = evaluate(y, p).overall
    oracle = evaluate(y, scored.frame["oracle_p_counterfeit"]).overall
    newcomer = (scored.frame["factory_id"] == 5).to_numpy()
    flagged = scored.scores.decision != "authentic"
    result["unseen_factory"] = {
        "pr_auc": ev["pr_auc"],
        "oracle_pr_auc": oracle["pr_auc"],
        "recall_at_1pct_fpr": ev["recall_at_1pct_fpr"],
        "oracle_recall_at_1pct_fpr": oracle["recall_at_1pct_fpr"],
        "ece": ev["ece"],
        "new_factory_counterfeits": int((newcomer & (y == 1)).sum()),
        "new_factory_flagged_share": float(flagged[newcomer & (y == 1)].mean())
        if (newcomer & (y == 1)).any()
        else None,
        "known_factory_flagged_share": float(flagged[~newcomer & (y == 1)].mean()),
        "expected_cost_per_1000": expected_cost_per_1000(p, y, graph.policy, CostModel()),
    }
    print(json.dumps(result["unseen_factory"], indent=1))
    repo.close()
    unseen_repo.close()
    registry.close()
    if args.demo:
        result.update(_demo(work, recipe))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_result(args.out, result, default=_jsonable)
    print(f"wrote {args.out}")


def _demo(work: Path, recipe: RecipeConfig) -> dict[str, Any]:
    """The recipe on the demo's world, as ``couturier demo`` simulates it, from scratch."""
    demo_config = SimulationConfig.of(listings=3000, days=60.0, seed=Settings().seed)
    demo = _market(demo_config, work / "market-demo")
    home = work / "home-demo"
    shutil.rmtree(home, ignore_errors=True)
    t = time.perf_counter()
    repo = _repo(demo, home)
    registry = ModelRegistry(Settings(home=home))
    report = run_recipe(demo, repo, registry, config=recipe)
    seconds = round(time.perf_counter() - t, 1)
    repo.close()
    registry.close()
    out = {
        "demo_pr_auc": report.metrics["pr_auc"],
        "demo_oracle_pr_auc": report.oracle.get("pr_auc"),
        "demo_holdout_counterfeits": report.details["metrics"]["positives"],
        "demo_recipe_seconds": seconds,
        "demo_stage_pr_auc": report.details["stage_pr_auc"],
    }
    print(json.dumps(out, indent=1))
    return out


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


if __name__ == "__main__":
    main()
