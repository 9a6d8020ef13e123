"""The Dagster ``Definitions`` of every installed domain: assets, jobs, schedules, sensors.

``dagster dev -m couturier.pipelines.definitions`` (or ``couturier pipelines up``) loads
:data:`couturier.pipelines.definitions.defs`; tests build their own with
:func:`build_definitions` for the domains and resource they want.
"""

# no `from __future__ import annotations`: Dagster reads the decorated functions' annotations

from collections.abc import Iterator, Mapping
from typing import Any

import dagster as dg

from couturier.domain import Domain, load_domains
from couturier.monitoring import MonitoringStore
from couturier.pipelines._assets import MONITORING_START, domain_assets
from couturier.pipelines._resource import CouturierResource
from couturier.pipelines._sensor import retrain_requests

__all__ = ["FEATURE_STORE_TAG", "build_definitions", "job_names"]

#: the run tag of every job that writes a domain's feature store
FEATURE_STORE_TAG = "couturier/feature_store"

#: the loop runs without a human step: schedules and sensors are on from the first start
RUNNING = dg.DefaultScheduleStatus.RUNNING


def job_names(domain: Domain) -> dict[str, str]:
    """Kind of run -> job name: ``materialize``, ``monitor`` and ``retrain:<name>``."""
    names = {"materialize": f"{domain.name}_materialize", "monitor": f"{domain.name}_monitor"}
    for r in domain.cadence.retrain:
        names[f"retrain:{r.name}"] = f"{domain.name}_{r.name}_retrain"
    return names


def _jobs(domain: Domain) -> dict[str, Any]:
    names = job_names(domain)
    features = dg.AssetSelection.assets(dg.AssetKey([domain.name, "feature_tables"]))
    # the materialization and each retraining write the same sources and online store: their
    # runs carry one tag, which the run queue lets through one at a time (local_instance)
    store = {FEATURE_STORE_TAG: domain.name}
    jobs: dict[str, Any] = {
        "materialize": dg.define_asset_job(names["materialize"], features, tags=store)
    }
    for r in domain.cadence.retrain:
        stages = [dg.AssetKey([domain.name, f"{r.name}_{s}"]) for s in ("model", "promotion")]
        jobs[f"retrain:{r.name}"] = dg.define_asset_job(
            names[f"retrain:{r.name}"], features | dg.AssetSelection.assets(*stages), tags=store
        )
    if domain.watches:
        monitoring = [dg.AssetKey([domain.name, "monitoring", w.model]) for w in domain.watches]
        selected = dg.AssetSelection.assets(*monitoring)
        jobs["monitor"] = dg.define_asset_job(names["monitor"], selected | selected.checks())
    return jobs


def _schedules(domain: Domain, jobs: Mapping[str, Any]) -> list[Any]:
    c = domain.cadence
    out: list[Any] = [
        dg.ScheduleDefinition(
            job=jobs["materialize"],
            cron_schedule=c.materialize,
            execution_timezone="UTC",
            default_status=RUNNING,
        )
    ]
    for r in c.retrain:
        out.append(
            dg.ScheduleDefinition(
                job=jobs[f"retrain:{r.name}"],
                cron_schedule=r.cron,
                execution_timezone="UTC",
                default_status=RUNNING,
            )
        )
    if "monitor" in jobs:  # each day's partition, at the cadence's minute and hour (UTC)
        minute, hour = (int(f) for f in c.monitor.split()[:2])
        out.append(
            dg.build_schedule_from_partitioned_job(
                jobs["monitor"], minute_of_hour=minute, hour_of_day=hour, default_status=RUNNING
            )
        )
    return out


def _sensor(domain: Domain, jobs: Mapping[str, Any]) -> dg.SensorDefinition:
    on_alert = [jobs[f"retrain:{r.name}"] for r in domain.cadence.retrain if r.on_alert]

    @dg.sensor(
        name=f"{domain.name}_retrain_on_alert",
        jobs=on_alert,
        minimum_interval_seconds=300,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="starts the on-alert retrainings when a monitoring alert persists",
    )
    def retrain_on_alert(
        context: dg.SensorEvaluationContext, couturier: CouturierResource
    ) -> Iterator[dg.RunRequest | dg.SkipReason]:
        store = MonitoringStore(couturier.settings().paths.monitoring)
        requests = retrain_requests(domain.watches, store, after=context.cursor or "")
        if not requests:
            yield dg.SkipReason("no persisted alert since the last request")
            return
        for req in requests:
            for job in on_alert:
                yield dg.RunRequest(
                    run_key=f"{job.name}:{req.run_key}",
                    job_name=job.name,
                    tags={
                        "couturier/alerts": ",".join(req.alerts),
                        "couturier/model": req.model,
                        "couturier/day": req.day,
                    },
                )
        context.update_cursor(max(r.day for r in requests))

    return retrain_on_alert


def build_definitions(
    domains: Mapping[str, Domain] | None = None, resource: CouturierResource | None = None
) -> dg.Definitions:
    """Definitions for ``domains`` (default: every installed one)."""
    days = dg.DailyPartitionsDefinition(start_date=MONITORING_START, timezone="UTC")
    assets: list[Any] = []
    jobs: list[Any] = []
    schedules: list[Any] = []
    sensors: list[Any] = []
    for domain in (domains if domains is not None else load_domains()).values():
        found = domain_assets(domain, days)
        if not found:
            continue
        assets += found
        by_kind = _jobs(domain)
        jobs += list(by_kind.values())
        schedules += _schedules(domain, by_kind)
        if domain.watches and any(r.on_alert for r in domain.cadence.retrain):
            sensors.append(_sensor(domain, by_kind))
    return dg.Definitions(
        assets=[a for a in assets if not isinstance(a, dg.AssetChecksDefinition)],
        asset_checks=[a for a in assets if isinstance(a, dg.AssetChecksDefinition)],
        jobs=jobs,
        schedules=schedules,
        sensors=sensors,
        resources={"couturier": resource or CouturierResource()},
    )
