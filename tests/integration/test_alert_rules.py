"""The Prometheus rules in deploy/prometheus: promtool accepts them, their unit tests pass
(every alert fires and stays silent where it should), and they name only metrics couturier
exports. promtool is a real binary: a missing one fails with the install hint, never skips."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from couturier.monitoring._metric_names import (
    known_series,
    referenced_metrics,
    unknown_references,
)

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "alerts_test.yml"
VENV_BIN = Path(sys.prefix) / "bin"
INSTALL_HINT = (
    f"promtool (Prometheus 2.x) is neither on PATH nor in {VENV_BIN}. `make test` puts it in "
    "the venv (taken out of Debian's prometheus package; `rm .venv/.installed` first where the "
    "venv exists). By hand: `apt-get install -y --no-install-recommends prometheus` on "
    "Debian/Ubuntu, `brew install prometheus` on macOS, or promtool from "
    "https://prometheus.io/download/ on PATH."
)


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool") or shutil.which("promtool", path=str(VENV_BIN))
    if found is None:
        pytest.fail(INSTALL_HINT, pytrace=False)
    return found


def _promtool(promtool: str, *args: str) -> str:
    done = subprocess.run(
        [promtool, *args], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"`promtool {' '.join(args)}` exited {done.returncode}:\n{output}"
    return output


def test_promtool_accepts_the_rules(promtool: str) -> None:
    output = _promtool(promtool, "check", "rules", str(RULES.relative_to(ROOT)))
    assert "SUCCESS" in output, output


def test_the_rules_unit_tests_pass(promtool: str) -> None:
    output = _promtool(promtool, "test", "rules", str(RULE_TESTS.relative_to(ROOT)))
    assert "SUCCESS" in output, output


def test_every_alert_is_tested_firing_and_silent() -> None:
    alerts = set(re.findall(r"^\s+- alert: (\w+)$", RULES.read_text(encoding="utf-8"), re.M))
    tests = RULE_TESTS.read_text(encoding="utf-8")
    fired = set(re.findall(r"alertname: (\w+)\n\s+exp_alerts:\n", tests))
    silent = set(re.findall(r"alertname: (\w+)\n\s+exp_alerts: \[\]", tests))
    assert len(alerts) >= 15, alerts
    assert alerts - fired == set(), f"alerts never tested firing in {RULE_TESTS.name}"
    assert alerts - silent == set(), f"alerts never tested silent in {RULE_TESTS.name}"


def test_the_rules_name_only_exported_metrics() -> None:
    """Every couturier_* name in the rules (and in their tests' series, which could share a
    typo with a rule) is serving's (src/couturier/serving/_metrics.py) or monitoring's
    (MONITORING_METRICS), with the label names its matchers use."""
    known = known_series()
    problems = [
        f"{path.name}: {problem}"
        for path in (RULES, RULE_TESTS)
        for problem in unknown_references(path.read_text(encoding="utf-8"), known)
    ]
    assert not problems, "\n".join(problems)


def test_the_autoscalers_adapter_query_is_promql(promtool: str, tmp_path: Path) -> None:
    """prometheus-adapter fills its rule's query templates per request (deploy render's
    ConfigMap): filled in as it would for two serving pods, promtool accepts both queries, and
    they name only metrics couturier exports. A query with a missing bracket fails the check."""
    from couturier.deploy import Values, manifests

    (adapter,) = (
        m for m in manifests(Values(image="x")) if m["metadata"]["name"].endswith("-adapter")
    )
    (rule,) = yaml.safe_load(adapter["data"]["config.yaml"])["rules"]
    filled = (
        rule["metricsQuery"]
        .replace("<<.Series>>", rule["name"]["as"])
        .replace("<<.LabelMatchers>>", 'namespace="couturier",pod=~"couturier-a|couturier-b"')
        .replace("<<.GroupBy>>", "pod")
    )
    assert "<<" not in filled
    exprs = {"series": rule["seriesQuery"], "per_pod": filled}
    # namespace and pod are the scrape's target labels, not couturier's: names only here
    assert referenced_metrics("\n".join(exprs.values())) == {"couturier_requests_in_flight"}
    assert "couturier_requests_in_flight" in known_series()
    rules = tmp_path / "adapter.yml"
    groups: list[dict[str, Any]] = [
        {
            "name": "adapter",
            "rules": [{"record": f"adapter:{k}", "expr": v} for k, v in exprs.items()],
        }
    ]
    rules.write_text(yaml.safe_dump({"groups": groups}))
    assert "SUCCESS" in _promtool(promtool, "check", "rules", str(rules))
    groups[0]["rules"][1]["expr"] = filled.replace("[1m]", "[1m")
    rules.write_text(yaml.safe_dump({"groups": groups}))
    broken = subprocess.run(
        [promtool, "check", "rules", str(rules)], capture_output=True, text=True, check=False
    )
    assert broken.returncode != 0
