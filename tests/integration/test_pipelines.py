"""The pipelines layer through Dagster: real features, the registry's gate, kills and re-runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from couturier.marketplace import Marketplace
from couturier.monitoring import MonitoringStore
from couturier.pipelines import CouturierResource, build_definitions, run_job
from couturier.registry import ModelRegistry
from tests.support.pipelines import TOY_PIPELINE_MODEL, pipeline_domain


def _resource(tmp_path: Path, market: Marketplace) -> CouturierResource:
    return CouturierResource(home=str(tmp_path / "home"), marketplace=str(market.path))


def _champion(resource: CouturierResource) -> int | None:
    registry = ModelRegistry(resource.settings())
    try:
        return registry.alias_version(TOY_PIPELINE_MODEL, "champion")
    finally:
        registry.close()


def test_assets_materialize_train_and_promote_only_through_the_gate(
    tmp_path: Path, market: Marketplace, monkeypatch: pytest.MonkeyPatch
) -> None:
    resource = _resource(tmp_path, market)
    defs = build_definitions({"toypipe": pipeline_domain()}, resource)
    keys = {
        "tables": dg.AssetKey(["toypipe", "feature_tables"]),
        "model": dg.AssetKey(["toypipe", "model_model"]),
        "promotion": dg.AssetKey(["toypipe", "model_promotion"]),
    }
    assets = [
        a
        for a in defs.assets or ()
        if isinstance(a, dg.AssetsDefinition) and a.key in keys.values()
    ]
    with dg.instance_for_test(overrides={"telemetry": {"enabled": False}}) as instance:
        first = dg.materialize(assets, instance=instance, resources={"couturier": resource})
        assert first.success
        tables = first.asset_value(keys["tables"])
        assert set(tables["views"].values()) == {"materialized"} and len(tables["views"]) == 3
        assert first.asset_value(keys["model"]).version == 1
        assert "is champion" in first.asset_value(keys["promotion"])
        assert _champion(resource) == 1
        # a better model passes its gate against v1 and is promoted
        second = dg.materialize(assets, instance=instance, resources={"couturier": resource})
        assert second.asset_value(keys["model"]).gate_passed
        assert _champion(resource) == 2
        # a worse one is registered, fails its gate, and the champion stays
        monkeypatch.setenv("COUTURIER_TEST_WORSE", "1")
        third = dg.materialize(assets, instance=instance, resources={"couturier": resource})
        report = third.asset_value(keys["model"])
        assert report.version == 3 and not report.gate_passed
        assert "failed its gate: champion stays v2" in third.asset_value(keys["promotion"])
        assert _champion(resource) == 2
    # freshness was saved for Prometheus
    assert (tmp_path / "home" / "monitoring" / "_freshness" / "authentication_v1.json").is_file()


def test_a_run_without_its_marketplace_fails_naming_the_asset_and_changes_nothing(
    tmp_path: Path,
) -> None:
    resource = CouturierResource(home=str(tmp_path / "home"), marketplace=str(tmp_path / "nowhere"))
    result = run_job(pipeline_domain(), "retrain:model", resource=resource, raise_on_error=False)
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    message = str(failure.event_specific_data.error.message)  # type: ignore[union-attr]
    assert (
        "toypipe/feature_tables: no marketplace at" in message and "nothing was changed" in message
    )
    assert not (tmp_path / "home" / "features").exists() or not any(
        (tmp_path / "home" / "features").rglob("*.parquet")
    )


def test_a_training_run_killed_halfway_leaves_the_registry_as_it_was(
    tmp_path: Path, market: Marketplace
) -> None:
    resource = _resource(tmp_path, market)
    assert run_job(pipeline_domain(), "retrain:model", resource=resource).success
    assert _champion(resource) == 1
    marker = tmp_path / "registered"
    home, where = str(tmp_path / "home"), str(market.path)
    script = (
        "from couturier.pipelines import CouturierResource, run_job\n"
        "from tests.support.pipelines import pipeline_domain\n"
        "run_job(pipeline_domain(), 'retrain:model', "
        f"resource=CouturierResource(home={home!r}, marketplace={where!r}))\n"
    )
    env = {**os.environ, "COUTURIER_TEST_HANG": str(marker)}
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        env=env,
        cwd=Path(__file__).parents[2],
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert proc.poll() is None, "the run ended before it registered its version"
            assert time.monotonic() < deadline, "the run never registered its version"
            time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGKILL)  # halfway: v2 is registered, nothing promoted
        proc.wait(30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    registry = ModelRegistry(resource.settings())
    try:
        # v2 was registered (and tagged challenger by its gate) before the kill; what serves
        # (champion, canary, shadow) is as it was, and no promotion was logged
        aliases = registry.aliases(TOY_PIPELINE_MODEL)
        assert aliases["champion"] == 1 and not {"canary", "shadow"} & set(aliases)
        assert registry.versions(TOY_PIPELINE_MODEL) == [1, 2]
        assert [e.to_version for e in registry.history(TOY_PIPELINE_MODEL, "champion")] == [1]
    finally:
        registry.close()
    # the re-run trains again and is promoted through the gate as a normal run would be
    rerun = run_job(pipeline_domain(), "retrain:model", resource=resource)
    assert rerun.success and _champion(resource) == 3


def test_the_monitoring_partition_runs_its_check_and_fails_without_a_log(
    tmp_path: Path, market: Marketplace
) -> None:
    import json

    resource = _resource(tmp_path, market)
    domain = pipeline_domain()
    missing = run_job(
        domain, "monitor", resource=resource, partition="2026-02-03", raise_on_error=False
    )
    assert not missing.success
    (failure,) = [e for e in missing.all_events if e.is_step_failure]
    message = str(failure.event_specific_data.error.message)  # type: ignore[union-attr]
    assert "toypipe/monitoring/toy-pipeline 2026-02-03: no prediction log" in message
    assert not (tmp_path / "home" / "monitoring" / TOY_PIPELINE_MODEL).exists()
    assert run_job(domain, "retrain:model", resource=resource).success
    log = tmp_path / "home" / "predictions" / "toy"
    log.mkdir(parents=True)
    lines = [
        json.dumps(
            {
                "listing_id": i,
                "at": f"2026-02-03T10:{i % 60:02d}:00+00:00",
                "version": 1,
                "probability": 0.1,
            }
        )
        for i in range(40)
    ] + ["{not json", "{not json", "{not json"]
    (log / "predictions-2026-02-03.jsonl").write_text("\n".join(lines) + "\n")
    result = run_job(domain, "monitor", resource=resource, partition="2026-02-03")
    assert result.success  # bad lines are quarantined; the run goes on
    stored = MonitoringStore(tmp_path / "home" / "monitoring").latest(TOY_PIPELINE_MODEL)
    assert (
        stored is not None and stored.predictions == 40 and stored.quarantined == {"unparsable": 3}
    )
    (check,) = [e for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    evaluation: Any = check.event_specific_data
    assert evaluation.passed is False  # 3 of 43 lines quarantined: over the check's 5%
