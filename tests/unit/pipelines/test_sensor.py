"""The retrain-on-alert sensor: its rule, and the sensor through Dagster's test context."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import dagster as dg

from couturier.domain import Domain
from couturier.features import FeatureSet
from couturier.monitoring import DayReport, MonitoringStore, Signal, Watch
from couturier.pipelines import Cadence, CouturierResource, Retrain, build_definitions
from couturier.pipelines._sensor import retrain_requests

WATCH = Watch(model="m", stream="m", key="listing_id")


def _report(day: str, alerts: tuple[str, ...] = ()) -> DayReport:
    signals = {
        name: Signal(flagged=name in alerts, alert=name in alerts, judged=True, detail="")
        for name in ("data", "prediction", "embedding", "performance")
    }
    return DayReport(
        model="m",
        day=day,
        ran_at="2026-02-01T00:00:00+00:00",
        version=1,
        predictions=100,
        quarantined={},
        reference={},
        signals=signals,
    )


def test_a_persisted_alert_asks_for_one_retraining_per_alert_day(tmp_path: Path) -> None:
    store = MonitoringStore(tmp_path)
    assert retrain_requests([WATCH], store) == []
    store.save(_report("2026-02-01"))
    assert retrain_requests([WATCH], store) == []  # no alert
    store.save(_report("2026-02-02", ("prediction",)))
    (req,) = retrain_requests([WATCH], store)
    assert (req.model, req.day, req.alerts, req.run_key) == (
        "m",
        "2026-02-02",
        ("prediction",),
        "m:2026-02-02",
    )
    assert retrain_requests([WATCH], store, after="2026-02-02") == []  # already asked
    store.save(_report("2026-02-03", ("data", "performance")))
    assert [r.day for r in retrain_requests([WATCH], store, after="2026-02-02")] == ["2026-02-03"]


def _domain(features: FeatureSet) -> Domain:
    return Domain(
        name="toy",
        description="toy",
        features=features,
        recipe=lambda market, repo, registry: None,  # type: ignore[arg-type,return-value]
        watches=(WATCH,),
        cadence=Cadence(
            retrain=(Retrain("fast", "0 3 * * *"), Retrain("full", "0 4 * * 0", on_alert=False))
        ),
    )


def test_the_sensor_requests_the_on_alert_retrainings_once(tmp_path: Path) -> None:
    from couturier.domains.authentication.features import FEATURES

    resource = CouturierResource(home=str(tmp_path))
    defs = build_definitions({"toy": _domain(FEATURES)}, resource)
    sensor = defs.resolve_sensor_def("toy_retrain_on_alert")
    store = MonitoringStore(resource.settings().paths.monitoring)
    with dg.instance_for_test(overrides={"telemetry": {"enabled": False}}) as instance:
        ctx = dg.build_sensor_context(
            instance=instance, resources={"couturier": resource}, definitions=defs
        )
        first = sensor.evaluate_tick(ctx)
        assert not first.run_requests and first.skip_message
        store.save(_report(date(2026, 2, 2).isoformat(), ("embedding",)))
        second = sensor.evaluate_tick(ctx)
        requested = list(second.run_requests or ())
        assert [(r.job_name, r.run_key) for r in requested] == [
            ("toy_fast_retrain", "toy_fast_retrain:m:2026-02-02")
        ]
        assert requested[0].tags["couturier/alerts"] == "embedding"
        ctx2 = dg.build_sensor_context(
            instance=instance,
            cursor=second.cursor,
            resources={"couturier": resource},
            definitions=defs,
        )
        assert not sensor.evaluate_tick(ctx2).run_requests  # the cursor remembers the day
