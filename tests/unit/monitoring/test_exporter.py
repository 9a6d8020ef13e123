"""Monitoring results leave as Prometheus metrics and an HTML report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from couturier.features import Freshness
from couturier.monitoring import MonitoringCollector, MonitoringStore, write_report
from couturier.monitoring._metric_names import MONITORING_METRICS
from tests.unit.monitoring.test_job import _labels, _log, _run


def _samples(store: MonitoringStore) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = CollectorRegistry()
    registry.register(MonitoringCollector(store))
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_the_newest_day_is_exported_with_the_declared_names_and_labels(tmp_path: Path) -> None:
    frame = _log(12, shift_from=9)
    store = MonitoringStore(tmp_path)
    reports = _run(frame, _labels(frame), range(5, 12))
    for report in reports:
        store.save(report)
    newest = datetime.now(UTC) - timedelta(hours=2)
    store.save_freshness("svc", [Freshness("v", newest, newest, 7200.0, 86400.0, False)])
    samples = _samples(store)
    names = {name for name, _ in samples}
    assert names <= set(MONITORING_METRICS)  # nothing exported that the rules cannot know
    assert names >= set(MONITORING_METRICS) - {"couturier_quarantined_records"}
    for (name, labels), _ in samples.items():
        assert tuple(k for k, _ in labels) == tuple(sorted(MONITORING_METRICS[name]))
    assert samples[("couturier_drift_alert", (("model", "m"), ("signal", "data")))] == 1.0
    assert samples[("couturier_performance_alert", (("model", "m"),))] == float(
        "performance" in reports[-1].alerts
    )
    ratio = samples[
        ("couturier_drift_ratio", (("feature", "features.x"), ("model", "m"), ("signal", "data")))
    ]
    assert ratio > 1.0  # drifted on the newest day
    # aged at the scrape, not frozen at the age it had when materialization wrote it
    age = samples[("couturier_feature_freshness_seconds", (("service", "svc"), ("view", "v")))]
    assert 7200.0 <= age < 7200.0 + 600
    latest = store.latest("m")
    assert latest is not None
    assert samples[("couturier_monitoring_last_run_timestamp_seconds", (("model", "m"),))] == (
        datetime.fromisoformat(latest.ran_at).timestamp()
    )


def test_no_results_exports_nothing_and_never_fails(tmp_path: Path) -> None:
    assert _samples(MonitoringStore(tmp_path / "none")) == {}


def test_the_html_report_shows_each_day_and_escapes_what_records_carry(tmp_path: Path) -> None:
    frame = _log(10, shift_from=7)
    frame.loc[frame.index[-1], "listing.brand"] = "<script>alert(1)</script>"
    reports = _run(frame, None, range(5, 10))
    path = write_report(reports, tmp_path / "r.html")
    html = path.read_text()
    for r in reports:
        assert r.day in html
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html
    assert html.count("data:image/png;base64,") == 3
