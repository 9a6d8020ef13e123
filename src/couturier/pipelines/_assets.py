"""Each installed domain's stages as Dagster assets, jobs, schedules and a sensor.

Per domain ``d`` (asset keys are ``[d, ...]``):

* ``feature_tables``: the domain's batch sources from the marketplace, registered in Feast and
  materialized to the online store; freshness is saved for Prometheus.
* ``<retrain>_model`` for each :class:`Retrain` of its cadence: the recipe (point-in-time
  training set, training, evaluation against the oracle and the champion, registration through
  the gate). Nothing here moves an alias.
* ``<retrain>_promotion``: the one place a pipeline moves ``champion``, and only to a version
  whose gate passed against the current champion. A run that fails or is killed before this
  step leaves every alias as it was.
* ``monitoring/<model>``: one daily partition per day, for each :class:`Watch`, with a
  partitioned check on how much of the day's log was quarantined.

Schedules follow :class:`Cadence`; the sensor (``_sensor``) starts a retraining when an alert
persists.
"""

# no `from __future__ import annotations`: Dagster reads the decorated functions' annotations

import warnings
from datetime import date
from typing import Any

import dagster as dg

from couturier.domain import Domain, Recipe, RecipeReport
from couturier.features.types import FeatureSet
from couturier.monitoring import DayReport, MonitoringStore, Watch, run_monitoring
from couturier.pipelines._resource import CouturierResource
from couturier.pipelines._spec import Retrain

__all__ = ["MONITORING_START", "domain_assets", "promote_if_better"]

#: the first day a monitoring partition exists (the simulator's default start is 2026-01-01)
MONITORING_START = "2026-01-01"
QUARANTINE_LIMIT = 0.05


def _features_asset(domain: Domain, features: FeatureSet) -> dg.AssetsDefinition:
    @dg.asset(
        key=[domain.name, "feature_tables"],
        group_name=domain.name,
        description=f"{domain.name}'s batch sources, registered in Feast and materialized",
        kinds={"feast"},
    )
    def feature_tables(
        context: dg.AssetExecutionContext, couturier: CouturierResource
    ) -> dict[str, Any]:
        from couturier.features import FeatureRepo, freshness, materialize

        market = couturier.market(f"{domain.name}/feature_tables")
        repo = FeatureRepo(features, couturier.settings())
        repo.write_sources(market)
        repo.apply()
        report = materialize(repo, end=couturier.now())
        fresh = freshness(repo, now=couturier.now())
        MonitoringStore(couturier.settings().paths.monitoring).save_freshness(
            features.service_name, fresh
        )
        views = {r.view: r.status for r in report}
        context.add_output_metadata({"views": views, "online_store": repo.online_kind})
        return {"service": features.service_name, "views": views, "online": repo.online_kind}

    return feature_tables


def _model_asset(
    domain: Domain, features: FeatureSet, retrain: Retrain, recipe: Recipe
) -> dg.AssetsDefinition:
    @dg.asset(
        key=[domain.name, f"{retrain.name}_model"],
        group_name=domain.name,
        deps=[dg.AssetKey([domain.name, "feature_tables"])],
        description=f"{domain.name}'s recipe: training set, train, evaluate, register (gate)",
        kinds={"mlflow"},
    )
    def model(context: dg.AssetExecutionContext, couturier: CouturierResource) -> RecipeReport:
        from couturier.features import FeatureRepo
        from couturier.registry import ModelRegistry

        settings = couturier.settings()
        market = couturier.market(f"{domain.name}/{retrain.name}_model")
        registry = ModelRegistry(settings)
        try:
            report = recipe(market, FeatureRepo(features, settings), registry)
        finally:
            registry.close()
        context.add_output_metadata(
            {
                "model": report.model,
                "version": report.version,
                "gate_passed": report.gate_passed,
                **{k: float(v) for k, v in report.metrics.items()},
            }
        )
        return report

    return model


def promote_if_better(report: RecipeReport, registry: Any, *, actor: str) -> str:
    """Make ``report``'s version champion when its gate passed against the current champion;
    say what was done. The registry refuses a version without a passed, current verdict."""
    champion = registry.alias_version(report.model, "champion")
    if champion == report.version:
        return f"{report.model} v{report.version} is already champion"
    if not report.gate_passed:
        return f"{report.model} v{report.version} failed its gate: champion stays v{champion}"
    verdict = registry.verdict(report.model, report.version)
    if verdict is None or verdict.champion_version != champion:
        judged = verdict.champion_version if verdict else None
        return (
            f"{report.model} v{report.version} was judged against v{judged}, the champion is "
            f"now v{champion}: not promoted (re-run the retraining)"
        )
    registry.promote(
        report.model,
        report.version,
        "champion",
        actor=actor,
        reason="passed its gate in a pipeline run",
    )
    return f"{report.model} v{report.version} is champion (was v{champion})"


def _promotion_asset(domain: Domain, retrain: Retrain) -> dg.AssetsDefinition:
    @dg.asset(
        key=[domain.name, f"{retrain.name}_promotion"],
        group_name=domain.name,
        ins={"report": dg.AssetIn(key=[domain.name, f"{retrain.name}_model"])},
        description="champion moves to the new version only if its gate passed",
    )
    def promotion(
        context: dg.AssetExecutionContext, couturier: CouturierResource, report: RecipeReport
    ) -> str:
        from couturier.registry import ModelRegistry

        registry = ModelRegistry(couturier.settings())
        try:
            said = promote_if_better(report, registry, actor=f"pipeline:{context.run.run_id[:8]}")
        finally:
            registry.close()
        context.log.info(said)
        context.add_output_metadata({"outcome": said})
        return said

    return promotion


def _monitoring_asset(
    domain: Domain, watch: Watch, days: dg.DailyPartitionsDefinition
) -> list[Any]:
    key = dg.AssetKey([domain.name, "monitoring", watch.model])

    @dg.asset(
        key=key,
        group_name=domain.name,
        partitions_def=days,
        description=f"drift, performance and labels of {watch.model}, one day per partition",
    )
    def monitoring(
        context: dg.AssetExecutionContext, couturier: CouturierResource
    ) -> dict[str, Any]:
        from couturier.registry import ModelRegistry

        day = date.fromisoformat(context.partition_key)
        settings = couturier.settings()
        stream = settings.paths.predictions / watch.stream
        if not stream.is_dir():
            raise dg.Failure(
                f"{domain.name}/monitoring/{watch.model} {day}: no prediction log at {stream}; "
                "nothing was written. Serve the model (couturier serve) before monitoring it"
            )
        market = couturier.market_or_none()
        if watch.labels is not None and market is None:
            couturier.market(f"{domain.name}/monitoring/{watch.model} {day}")  # fails, named
        registry = ModelRegistry(settings)
        try:
            known = registry.versions(watch.model) if watch.model in registry.models() else []
        finally:
            registry.close()
        report = run_monitoring(
            watch, settings=settings, day=day, market=market, known_versions=known
        )
        context.add_output_metadata(
            {
                "alerts": report.alerts,
                "predictions": report.predictions,
                "quarantined": sum(report.quarantined.values()),
            }
        )
        return _summary(report)

    # a partitioned check is a Dagster preview; without its partitions_def the check would load
    # every partition of the asset (the rule), so the preview is accepted here, knowingly
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)

        @dg.asset_check(
            asset=key,
            partitions_def=days,
            name="quarantine_share",
            description=f"at most {QUARANTINE_LIMIT:.0%} of the day's records quarantined",
        )
        def quarantine_share(
            context: dg.AssetCheckExecutionContext, couturier: CouturierResource
        ) -> dg.AssetCheckResult:
            day = context.partition_key if hasattr(context, "partition_key") else None
            store = MonitoringStore(couturier.settings().paths.monitoring)
            reports = [r for r in store.reports(watch.model) if r.day == day] if day else []
            if not reports:
                return dg.AssetCheckResult(
                    passed=False, description=f"no monitoring result for {day}"
                )
            r = reports[0]
            bad = sum(r.quarantined.values())
            share = bad / max(1, bad + r.predictions)
            return dg.AssetCheckResult(
                passed=share <= QUARANTINE_LIMIT,
                metadata={"share": share, "quarantined": r.quarantined},
            )

    return [monitoring, quarantine_share]


def _summary(report: DayReport) -> dict[str, Any]:
    return {
        "day": report.day,
        "version": report.version,
        "alerts": report.alerts,
        "predictions": report.predictions,
    }


def domain_assets(domain: Domain, days: dg.DailyPartitionsDefinition) -> list[Any]:
    """Every asset and check of ``domain`` (none for a domain without features)."""
    if domain.features is None:
        return []
    out: list[Any] = [_features_asset(domain, domain.features)]
    for retrain in domain.cadence.retrain:
        recipe = retrain.recipe or domain.recipe
        if recipe is not None:
            model = _model_asset(domain, domain.features, retrain, recipe)
            out += [model, _promotion_asset(domain, retrain)]
    for watch in domain.watches:
        out += _monitoring_asset(domain, watch, days)
    return out
