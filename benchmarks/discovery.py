"""Discovery: recommendation and search quality on real data, serving latency, weekly retrain.

    python benchmarks/discovery.py --out benchmarks/results/discovery.json
        [--only movielens,search,retrain,serving] [--ratings PATH] [--styles PATH]
        [--listings 100000] [--seconds 10]

* ``movielens_100k``: MovieLens-100K (or any ``userId,movieId,rating,timestamp`` file given
  with ``--ratings``), every rating an implicit interaction, random 80/20 split, 5 seeds, seen
  items excluded: the two-stage recommender (EASE + iALS candidates, LightGBM lambdarank),
  EASE, iALS and popularity from the same run.
* ``search``: the fashion catalog's 44,446 products, 800 queries built from their own
  attributes (``_search_eval.build_queries``, seeded): hybrid, BM25 alone, dense alone.
* ``weekly_retrain_seconds``: the discovery recipe (features written, registered and
  materialized; search and similar items; candidates and ranker; both gates) on a simulated
  marketplace of ``--listings`` listings (the simulation itself not counted).
* ``serving``: ``couturier serve`` on that retrained home; wrk with one connection (single
  requests, one after another) cycling over 200 different requests per route.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # implicit's ALS wants a one-thread BLAS

import numpy as np

from _results import write_result  # beside this script, on sys.path when it runs
from _server import couturier_server

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"

WRK_PATHS = """
local paths = {{{paths}}}
local i = 0
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
"""


def movielens(ratings_path: Path) -> dict[str, Any]:
    from couturier.domains.discovery._movielens import evaluate
    from couturier.domains.discovery._ratings import load_ratings

    report = evaluate(load_ratings(ratings_path))
    return {"ratings": str(ratings_path.name), **report}


def search(styles_path: Path) -> dict[str, Any]:
    from couturier.domains.discovery._catalog import catalog_documents, load_styles
    from couturier.domains.discovery._encoder import TextEncoder, export_onnx, tokenizer_json
    from couturier.domains.discovery._search import HybridSearch, SearchConfig
    from couturier.domains.discovery._search_eval import build_queries, evaluate

    styles = load_styles(styles_path)
    encoder = TextEncoder.from_onnx(export_onnx(), tokenizer_json(), intra_op_threads=2)
    started = time.perf_counter()
    index = HybridSearch(encoder, SearchConfig(price=None)).fit(catalog_documents(styles))
    built = time.perf_counter() - started
    result = evaluate(index, build_queries(styles))
    return {**result, "documents": len(styles), "index_seconds": round(built, 1)}


def retrain(home: Path, listings: int) -> dict[str, Any]:
    """Simulate, then time the weekly retrain: features and the recipe."""
    from couturier.domain import get_domain
    from couturier.features import FeatureRepo, materialize
    from couturier.marketplace import SimulationConfig, simulate
    from couturier.registry import ModelRegistry
    from couturier.settings import Settings

    market = simulate(SimulationConfig.of(listings=listings), home / "market", workers=2)
    domain = get_domain("discovery")
    if domain.features is None or domain.recipe is None:
        raise RuntimeError("the discovery domain declares no features or recipe")
    settings = Settings(home=home)
    started = time.perf_counter()
    repo = FeatureRepo(domain.features, settings)
    repo.write_sources(market)
    repo.apply()
    materialize(repo)
    features_s = time.perf_counter() - started
    registry = ModelRegistry(settings)
    report = domain.recipe(market, repo, registry)
    total = time.perf_counter() - started
    withheld = report.details.get("champion_withheld")
    if withheld and registry.alias_version(report.model, "champion") is None:
        # the recipe did not make it champion (it does not beat its baselines); the serving
        # section measures its latency all the same, and the result says so
        registry.promote(
            report.model, report.version, "champion", actor="benchmark", reason="latency only"
        )
    registry.close()
    repo.close()
    return {
        "listings": listings,
        "weekly_retrain_seconds": round(total, 1),
        "features_seconds": round(features_s, 1),
        "recipe": {
            "metrics": report.metrics,
            "champion_withheld": withheld,
            "search": report.details.get("search"),
            "seconds": report.details.get("seconds"),
            "gate_passed": report.gate_passed,
        },
    }


def wrk_ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def _wrk(url: str, paths: list[str], seconds: int, work: Path) -> dict[str, Any]:
    script = work / "paths.lua"
    script.write_text(WRK_PATHS.format(paths=", ".join(json.dumps(p) for p in paths)))
    command = ["wrk", "-t1", "-c1", f"-d{seconds}s", "--latency", "-s", str(script), url]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = wrk_ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = wrk_ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": round(rps, 1),
        "p50_ms": round(p50, 3),
        "p99_ms": round(p99, 3),
        "non_2xx": int(errors.group(1)) if errors else 0,
    }


def _requests(home: Path) -> dict[str, list[str]]:
    """200 different requests per route, from the marketplace the server was trained on."""
    from couturier.marketplace import Marketplace

    market = Marketplace(home / "market")
    rng = np.random.default_rng(0)
    listings = market.read("listings", ["listing_id", "title", "category"])
    buyers = market.read("interactions", ["buyer_id"])["buyer_id"].unique()
    rows = listings.iloc[rng.choice(len(listings), 200, replace=False)]
    words = [" ".join(str(t).split(",")[0].split()[-2:]).lower() for t in rows["title"]]
    queries = [f"/v1/search?q={w.replace(' ', '+').replace('&', '%26')}&k=10" for w in words]
    similar = [f"/v1/similar/{int(i)}?k=10" for i in rows["listing_id"]]
    recs = [f"/v1/recommendations/{int(b)}?k=10" for b in rng.choice(buyers, 200)]
    return {"search": queries, "similar": similar, "recommendations": recs}


def serving(home: Path, seconds: int) -> dict[str, Any]:
    result: dict[str, Any] = {}
    with couturier_server(home) as url, tempfile.TemporaryDirectory() as tmp:
        for route, paths in _requests(home).items():
            _wrk(url, paths, 2, Path(tmp))  # warm-up
            result[route] = _wrk(url, paths, seconds, Path(tmp))
    return {
        "search_p99_ms": result["search"]["p99_ms"],
        "similar_p99_ms": result["similar"]["p99_ms"],
        "recs_p99_ms": result["recommendations"]["p99_ms"],
        "routes": result,
        "load": "wrk -t1 -c1: single requests, one after another",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--only", default="movielens,search,retrain,serving")
    parser.add_argument("--ratings", type=Path, default=SHARED / "movielens-100k" / "u.data")
    parser.add_argument("--styles", type=Path, default=SHARED / "fashion-catalog" / "styles.csv")
    parser.add_argument("--listings", type=int, default=100_000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--home", type=Path, help="keep the retrained home here")
    args = parser.parse_args()
    only = set(args.only.split(","))
    result: dict[str, Any] = {}
    if "movielens" in only:
        key = "movielens_100k" if args.ratings.name == "u.data" else "ratings"
        result[key] = movielens(args.ratings)
        print(json.dumps(result[key], indent=2, default=str), flush=True)
    if "search" in only:
        result["search"] = search(args.styles)
        print(json.dumps(result["search"], indent=2), flush=True)
    if only & {"retrain", "serving"}:
        home = args.home or Path(tempfile.mkdtemp(prefix="discovery-bench-"))
        try:
            if "retrain" in only or not (home / "market").exists():
                result["retrain"] = retrain(home, args.listings)
                result["weekly_retrain_seconds"] = result["retrain"]["weekly_retrain_seconds"]
                print(json.dumps(result["retrain"], indent=2, default=str), flush=True)
            if "serving" in only:
                result["serving"] = serving(home, args.seconds)
                print(json.dumps(result["serving"], indent=2), flush=True)
        finally:
            if args.home is None:
                shutil.rmtree(home, ignore_errors=True)
    write_result(args.out, result, default=str)


if __name__ == "__main__":
    main()
