"""The discovery recipe, one function a pipeline can call (weekly): search and similar items,
then recommendations, each trained, judged and registered through its own gate.

>>> report = run_recipe(market, repo, registry)        # doctest: +SKIP
>>> report.metrics["ndcg_at_10"], report.details["search"]["ndcg_at_10"]  # doctest: +SKIP
"""

from __future__ import annotations

import time
from typing import Any

from couturier.domain import RecipeReport
from couturier.domains.discovery import _recs_recipe, _search_recipe
from couturier.domains.discovery._recs_training import RecsConfig
from couturier.domains.discovery._report import write_report
from couturier.evaluation import Evaluation
from couturier.features import FeatureRepo
from couturier.marketplace import Marketplace
from couturier.registry import GatePolicy, ModelPackage, ModelRegistry, RegisteredVersion

__all__ = ["EXPERIMENT", "below_baselines", "run_recipe"]

EXPERIMENT = "discovery"


def _register(
    registry: ModelRegistry,
    package: ModelPackage,
    evaluation: Evaluation,
    policy: GatePolicy,
    lineage: dict[str, Any],
    champion_evaluation: Evaluation | None = None,
    withhold: str | None = None,
) -> RegisteredVersion:
    """One run, the gate (against the champion on the same holdout when it was scored there),
    and champion for the first version that passes it, unless ``withhold`` says why not."""
    name = package.name
    champion = registry.alias_version(name, "champion")
    with registry.start_run(EXPERIMENT, name, lineage=lineage) as run:
        run.log_evaluation(evaluation)
        registered = registry.register(
            package, evaluation, run=run, policy=policy, champion_evaluation=champion_evaluation
        )
    if champion is None and registered.verdict.passed and withhold is None:
        registry.promote(
            name, registered.version, "champion", actor="pipeline", reason="first version"
        )
    return registered


def below_baselines(evaluation: Evaluation) -> str | None:
    """Why a first ranker must not become champion: it does not beat what it re-ranks (the
    candidate order) or popularity on its own holdout. The registry's gate compares a version
    with the champion; with no champion yet, these baselines are the bar."""
    m = evaluation.overall
    bar = max(m["candidates_ndcg_at_10"], m["popularity_ndcg_at_10"])
    if m["ndcg_at_10"] > bar:
        return None
    return (
        f"nDCG@10 {m['ndcg_at_10']:.4f} does not beat the candidate order "
        f"({m['candidates_ndcg_at_10']:.4f}) and popularity ({m['popularity_ndcg_at_10']:.4f}) "
        "on the holdout; promote it by hand (couturier models promote) only knowingly"
    )


def run_recipe(
    market: Marketplace,
    repo: FeatureRepo,
    registry: ModelRegistry,
    *,
    config: RecsConfig | None = None,
) -> RecipeReport:
    """Fit, judge and register ``discovery-search`` and ``discovery-recommendations``."""
    started = time.perf_counter()
    lineage = {
        "simulator_seed": market.config.seed,
        "simulator_scenario": market.config.scenario,
        "feature_service": repo.features.service_name,
    }
    search = _search_recipe.fit_search(market)
    searched = _register(
        registry,
        _search_recipe.search_package(search),
        search.evaluation,
        _search_recipe.POLICY,
        lineage,
    )
    search_s = time.perf_counter() - started
    recs = _recs_recipe.fit_recommendations(market, repo, config)
    withheld = below_baselines(recs.evaluation)
    recommended = _register(
        registry,
        _recs_recipe.recs_package(recs),
        recs.evaluation,
        _recs_recipe.POLICY,
        {**lineage, **recs.times},
        _recs_recipe.champion_on_holdout(registry, recs),
        withhold=withheld,
    )
    versions = {searched.name: searched.version, recommended.name: recommended.version}
    report = write_report(
        market,
        recs,
        search,
        versions=versions,
        recs_model=recommended.name,
        window_days=(config or RecsConfig()).window_days,
        folder=repo.settings.paths.reports,
    )
    return RecipeReport(
        model=recommended.name,
        version=recommended.version,
        gate_passed=recommended.verdict.passed,
        champion=registry.alias_version(recommended.name, "champion"),
        metrics={
            **{
                k: v
                for k, v in recs.evaluation.overall.items()
                if k in ("ndcg_at_10", "candidates_ndcg_at_10", "popularity_ndcg_at_10")
            },
            "search_ndcg_at_10": search.evaluation.overall["ndcg_at_10"],
            "similar_same_product_at_10": search.evaluation.overall["similar_same_product_at_10"],
        },
        lineage=lineage,
        details={
            "components": {searched.name: searched.version},
            "report": str(report),
            "search": search.evaluation.overall,
            "search_gate_passed": searched.verdict.passed,
            "champion_withheld": withheld,
            "seconds": {
                "search": round(search_s, 1),
                "total": round(time.perf_counter() - started, 1),
            },
        },
    )
