"""What the pipelines layer builds from the installed domains."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg

from couturier.pipelines import CouturierResource, build_definitions, local_instance
from couturier.pipelines._definitions import FEATURE_STORE_TAG


def test_every_domain_gets_its_assets_jobs_schedules_and_sensor(tmp_path: Path) -> None:
    defs = build_definitions(resource=CouturierResource(home=str(tmp_path)))
    keys = {a.key.to_user_string() for a in defs.assets or () if isinstance(a, dg.AssetsDefinition)}
    assert {
        "authentication/feature_tables",
        "authentication/graph_model",
        "authentication/graph_promotion",
        "authentication/monitoring/authentication",
        "discovery/feature_tables",
        "discovery/models_model",
        "discovery/models_promotion",
    } <= keys
    jobs = {j.name: j for j in defs.resolve_all_job_defs()}
    for name in (
        "authentication_materialize",
        "authentication_graph_retrain",
        "discovery_models_retrain",
    ):
        assert jobs[name].tags[FEATURE_STORE_TAG] == name.split("_")[0]  # one writer at a time
    assert FEATURE_STORE_TAG not in jobs["authentication_monitor"].tags
    repository = defs.get_repository_def()
    schedules = repository.schedule_defs
    crons = {s.job_name: s.cron_schedule for s in schedules}
    assert crons["authentication_materialize"] == "0 * * * *"
    assert crons["authentication_graph_retrain"] == "0 3 * * *"
    assert crons["discovery_models_retrain"] == "0 4 * * 0"
    assert crons["authentication_monitor"] == "0 5 * * *"
    # the loop needs no human step: everything is on from the daemon's first start
    assert all(s.default_status == dg.DefaultScheduleStatus.RUNNING for s in schedules)
    (sensor,) = repository.sensor_defs
    assert sensor.name == "authentication_retrain_on_alert"  # discovery watches nothing yet
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING


def test_the_local_instance_keeps_telemetry_off_and_queues_feature_store_writers(
    tmp_path: Path,
) -> None:
    from couturier.settings import Settings

    instance = local_instance(Settings(home=tmp_path))
    assert instance.telemetry_enabled is False
    coordinator: Any = instance.run_coordinator
    config = coordinator.get_run_queue_config()
    (limit,) = config.tag_concurrency_limits
    assert limit == {
        "key": FEATURE_STORE_TAG,
        "value": {"applyLimitPerUniqueValue": True},
        "limit": 1,
    }
