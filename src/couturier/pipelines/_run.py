"""Running a domain's job in this process, recorded in the local Dagster instance.

The instance lives under ``$COUTURIER_HOME/pipelines`` (``DAGSTER_HOME`` for
``couturier pipelines up``), so the runs the CLI and the demo make show in Dagster's UI beside
the ones its daemon schedules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import dagster as dg

from couturier.domain import Domain
from couturier.errors import NotFoundError
from couturier.pipelines._definitions import build_definitions, job_names
from couturier.pipelines._resource import CouturierResource

if TYPE_CHECKING:
    from couturier.settings import Settings

__all__ = ["INSTANCE_YAML", "local_instance", "run_job"]

#: runs in this process log warnings and errors to the console, not every step's events (the
#: events are in the instance, for Dagster's UI)
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
#: the local instance's settings: no usage statistics leave this machine, and the daemon's run
#: queue starts one run at a time of those that write a domain's feature store (the tag is
#: ``_definitions.FEATURE_STORE_TAG``; runs made in this process are sequential already)
INSTANCE_YAML = """\
telemetry:
  enabled: false
run_queue:
  tag_concurrency_limits:
    - key: couturier/feature_store
      value:
        applyLimitPerUniqueValue: true
      limit: 1
"""


def local_instance(settings: Settings) -> dg.DagsterInstance:
    """The Dagster instance under ``$COUTURIER_HOME/pipelines`` (SQLite storage)."""
    folder = settings.paths.pipelines
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "dagster.yaml"
    if not config.exists():  # Dagster's telemetry is on unless an instance turns it off
        config.write_text(INSTANCE_YAML)
    return dg.DagsterInstance.from_config(str(folder))


def run_job(
    domain: Domain,
    kind: str,
    *,
    resource: CouturierResource,
    instance: dg.DagsterInstance | None = None,
    partition: str | None = None,
    raise_on_error: bool = True,
) -> dg.ExecuteInProcessResult:
    """Run ``domain``'s ``kind`` job (``materialize``, ``monitor``, ``retrain:<name>``)."""
    names = job_names(domain)
    if kind not in names:
        raise NotFoundError(
            f"domain {domain.name!r} has no {kind!r} job; its jobs: {', '.join(names)}",
            domain=domain.name,
            job=kind,
        )
    defs = build_definitions({domain.name: domain}, resource)
    job = defs.resolve_job_def(names[kind])
    return job.execute_in_process(
        run_config=QUIET,
        instance=instance or local_instance(resource.settings()),
        partition_key=partition,
        raise_on_error=raise_on_error,
    )
