"""The command line: help, one-line errors, --debug tracebacks, simulate, summary, demo."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from couturier.cli import app

runner = CliRunner()


def _couturier(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real console entry point, in a subprocess, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-c", "from couturier.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )


def test_help_lists_the_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("simulate", "demo", "scenarios", "summary", "settings"):
        assert command in result.output


def test_bad_parameter_is_one_line_without_a_traceback() -> None:
    result = _couturier("simulate", "--listings", "10", "--prevalence", "1.7")
    assert result.returncode == 2
    err = result.stderr.strip()
    assert "prevalence=1.7" in err and "<= 1.0" in err
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1


def test_debug_shows_the_traceback() -> None:
    result = _couturier("--debug", "simulate", "--scenario", "nope")
    assert result.returncode == 2
    assert "Traceback" in result.stderr
    assert "scenario='nope'" in result.stderr


def test_missing_production_setting_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("COUTURIER_")}
    env["COUTURIER_PROFILE"] = "production"
    result = _couturier("settings", env=env)
    assert result.returncode == 2
    assert "COUTURIER_REDIS_URL is not set" in result.stderr
    assert "Traceback" not in result.stderr


def test_simulate_then_summary(tmp_path: Path) -> None:
    out = tmp_path / "m"
    result = runner.invoke(
        app, ["simulate", "--listings", "120", "--out", str(out), "--workers", "1", "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["listings"] == 120
    assert summary["photos"] >= 120
    again = runner.invoke(app, ["summary", str(out), "--json"])
    assert json.loads(again.output) == summary


def test_summary_of_nothing_says_how_to_make_something(tmp_path: Path) -> None:
    result = _couturier("summary", str(tmp_path / "void"))
    assert result.returncode == 2
    assert "couturier simulate" in result.stderr


def test_scenarios_are_listed_with_what_they_change() -> None:
    result = runner.invoke(app, ["scenarios"], terminal_width=200)
    assert result.exit_code == 0
    for name in (
        "new_factory",
        "adaptive_counterfeiters",
        "camera_change",
        "fraud_ring",
        "seasonal_shift",
    ):
        assert name in result.output


def test_demo_prints_a_summary_and_writes_a_contact_sheet(tmp_path: Path) -> None:
    # the closing replay is tested on its own (tests/integration/test_replay.py)
    result = runner.invoke(
        app, ["demo", "--listings", "400", "--replay-days", "0"], terminal_width=200
    )
    assert result.exit_code == 0, result.output
    assert "prevalence" in result.output and "label delay" in result.output
    assert "features: authentication_v1" in result.output and "pipeline run" in result.output
    assert "authentication-listing v1" in result.output and "(oracle" in result.output
    assert "promotion" in result.output
    # 400 listings are too few for pricing's recipe: it says why, and the demo goes on
    assert "pricing: pipeline run" in result.output and "simulate more listings" in result.output
    sheet = tmp_path / "home" / "reports" / "contact-sheet.png"
    assert sheet.is_file()
    with Image.open(sheet) as img:
        assert img.width >= 6 * 96


def test_features_apply_materialize_freshness_show(tmp_path: Path) -> None:
    market = tmp_path / "m"
    assert (
        runner.invoke(
            app,
            [
                "simulate",
                "--listings",
                "300",
                "--days",
                "20",
                "--out",
                str(market),
                "--workers",
                "1",
                "--json",
            ],
        ).exit_code
        == 0
    )
    applied = runner.invoke(app, ["features", "apply", "--market", str(market)], terminal_width=200)
    assert applied.exit_code == 0, applied.output
    assert "seller_stats" in applied.output and "300" in applied.output
    # every installed domain's features, one table each
    assert "authentication_v1" in applied.output and "discovery_v1" in applied.output
    first = runner.invoke(
        app, ["features", "materialize", "--end", "2026-02-01T00:00:00"], terminal_width=200
    )
    assert first.exit_code == 0, first.output
    assert first.output.count("materialized") >= 3
    again = runner.invoke(
        app, ["features", "materialize", "--end", "2026-02-01T00:00:00"], terminal_width=200
    )
    assert again.output.count("up to date") == 10  # every view: 3 + 3 + 4 (pricing)
    fresh = runner.invoke(app, ["features", "freshness", "--json", "--domain", "authentication"])
    views = {row["view"]: row for row in json.loads(fresh.output)}
    assert set(views) == {"listing_features", "seller_stats", "product_stats"}
    assert views["seller_stats"]["materialized_until"].startswith("2026-02-01")
    shown = runner.invoke(app, ["features", "show", "seller", "0", "--domain", "authentication"])
    assert json.loads(shown.output)["views"]["seller_stats"]["found"] is True


def test_features_show_of_an_unknown_entity_names_the_known_ones() -> None:
    result = _couturier("features", "show", "shop", "1")
    assert result.returncode == 2
    assert "buyer, buyer_brand, house, listing, product, seller" in result.stderr


def test_features_show_of_an_entity_two_domains_have_asks_which() -> None:
    result = _couturier("features", "show", "listing", "1")
    assert result.returncode == 2
    assert "authentication, discovery" in result.stderr and "--domain" in result.stderr


def test_reading_features_before_apply_says_to_apply(tmp_path: Path) -> None:
    import os

    env = {**os.environ, "COUTURIER_HOME": str(tmp_path / "empty")}
    result = _couturier("features", "show", "seller", "1", "--domain", "authentication", env=env)
    assert result.returncode == 2
    assert "couturier features apply" in result.stderr
    assert "Traceback" not in result.stderr


def test_db_upgrade_creates_the_shared_schema_once() -> None:
    """The migration step: the promotion log and each domain's feature registry; a second run
    finds everything in place (COUTURIER_HOME is the test's own folder)."""
    first = runner.invoke(app, ["db", "upgrade", "--json"])
    assert first.exit_code == 0, first.output
    done = {row["schema"]: row["result"] for row in json.loads(first.output)}
    assert done == {
        "promotion log": "created",
        "feature registry (authentication)": "ready",
        "feature registry (discovery)": "ready",
        "feature registry (pricing)": "ready",
    }
    again = runner.invoke(app, ["db", "upgrade", "--json"])
    assert again.exit_code == 0, again.output
    assert json.loads(again.output)[0]["result"] == "up to date"
