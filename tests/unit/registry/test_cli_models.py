"""``couturier models ...`` against a real local MLflow store."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from couturier.cli import app
from couturier.registry import ModelRegistry
from couturier.settings import Settings
from tests.support.registry import World, register

runner = CliRunner()


def test_list_show_promote_history_rollback(world: World) -> None:
    reg = ModelRegistry(Settings())  # COUTURIER_HOME is the test's own
    v1 = register(reg, "auth", world.model(informative=False), world).version
    reg.promote("auth", v1, "champion", actor="ana", reason="baseline")
    v2 = register(reg, "auth", world.model(), world).version
    reg.close()

    listed = json.loads(runner.invoke(app, ["models", "list", "--json"]).output)
    assert listed == [
        {"name": "auth", "aliases": {"champion": v1, "challenger": v2}, "versions": [v1, v2]}
    ]
    shown = json.loads(runner.invoke(app, ["models", "show", "auth", str(v2)]).output)
    assert shown["gate"]["passed"] is True and shown["aliases"] == ["challenger"]

    promoted = runner.invoke(
        app, ["models", "promote", "auth", str(v2), "--reason", "better", "--by", "bo"]
    )
    assert promoted.exit_code == 0, promoted.output
    assert f"v{v1} -> v{v2}" in promoted.output
    history = json.loads(runner.invoke(app, ["models", "history", "auth", "--json"]).output)
    assert [(e["alias"], e["to_version"], e["actor"]) for e in history][-1] == (
        "champion",
        v2,
        "bo",
    )
    assert [(e["alias"], e["to_version"]) for e in history] == [
        ("challenger", v1),
        ("champion", v1),
        ("challenger", v2),
        ("champion", v2),
    ]
    at = history[2]["at"]  # v2 became challenger: v1 was still champion then
    back = json.loads(
        runner.invoke(app, ["models", "history", "auth", "--alias", "champion", "--at", at]).output
    )
    assert back["version"] == v1

    rolled = runner.invoke(app, ["models", "rollback", "auth", "--reason", "alerts"])
    assert rolled.exit_code == 0 and f"v{v2} -> v{v1}" in rolled.output


def test_promoting_a_failed_version_is_refused_in_one_line(world: World) -> None:
    import subprocess
    import sys

    reg = ModelRegistry(Settings())
    v1 = register(reg, "auth2", world.model(), world).version
    reg.promote("auth2", v1, "champion", actor="ana", reason="baseline")
    worse = register(reg, "auth2", world.model(informative=False), world).version
    reg.close()
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from couturier.cli import main; main()",
            "models",
            "promote",
            "auth2",
            str(worse),
            "--reason",
            "try",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert "failed its gate" in result.stderr and "beats_champion" in result.stderr
    assert "Traceback" not in result.stderr


def test_show_says_which_gate_checks_were_not_judged(world: World) -> None:
    reg = ModelRegistry(Settings())
    v1 = register(reg, "auth3", world.model(), world).version
    reg.close()

    shown = json.loads(runner.invoke(app, ["models", "show", "auth3", str(v1)]).output)
    status = {c["name"]: c["status"] for c in shown["gate"]["checks"]}
    assert status["beats_champion"] == "not judged"  # the first version has no champion
    assert status["calibration"] == "passed" and status["parity"] == "passed"

    table = runner.invoke(app, ["models", "show", "auth3", str(v1), "--checks"], terminal_width=200)
    assert table.exit_code == 0, table.output
    assert f"auth3 v{v1}: gate passed" in table.output
    rows = {line.split("│")[1].strip(): line for line in table.output.splitlines() if "│" in line}
    assert "not judged" in rows["beats_champion"] and "no champion yet" in rows["beats_champion"]
    assert "passed" in rows["latency"]
    no_version = runner.invoke(app, ["models", "show", "auth3", "--checks"])
    assert no_version.exit_code != 0 and "--checks needs a VERSION" in no_version.output
