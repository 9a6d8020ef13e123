"""``couturier models list | show | promote | approve | rollback | history`` and ``ui mlflow``."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.table import Column, Table

from couturier.cli._app import app, console, load_settings
from couturier.registry import ModelRegistry, mlflow_server_command, store_uris
from couturier.registry.types import FAILED, NOT_JUDGED, PASSED, GateVerdict

models_app = typer.Typer(help="The model registry: versions, aliases, gates, audit, rollback.")
app.add_typer(models_app, name="models")
ui_app = typer.Typer(help="Web UIs on the local stores.")
app.add_typer(ui_app, name="ui")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
ActorOpt = Annotated[str, typer.Option("--by", help="Who does this (recorded in the log).")]


def _registry() -> ModelRegistry:
    return ModelRegistry(load_settings())


def _default_actor() -> str:
    return os.environ.get("USER") or os.environ.get("LOGNAME") or "unknown"


def _print_json(data: Any) -> None:
    console.print_json(json.dumps(data, default=str))


@models_app.command("list")
def list_cmd(as_json: JsonOpt = False) -> None:
    """Every registered model with its aliases and versions."""
    reg = _registry()
    rows = [reg.show(name) for name in reg.models()]
    if as_json:
        _print_json(rows)
        return
    table = Table("model", "aliases", "versions")
    for r in rows:
        aliases = ", ".join(f"{a}=v{v}" for a, v in sorted(r["aliases"].items()))
        table.add_row(r["name"], aliases or "-", ", ".join(map(str, r["versions"])))
    console.print(table)


@models_app.command("show")
def show_cmd(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    version: Annotated[int | None, typer.Argument(help="A version (default: the model).")] = None,
    checks: Annotated[
        bool,
        typer.Option("--checks", help="Print the version's gate checks as a table, not JSON."),
    ] = False,
) -> None:
    """A model's aliases and versions, or one version's gate verdict and lineage.

    Each gate check carries its ``status``: ``passed``, ``failed`` or ``not judged`` (the policy
    sets no threshold, there is no champion to compare with, no slice is large enough).
    """
    reg = _registry()
    if not checks:
        _print_json(reg.show(name, version))
        return
    if version is None:
        raise typer.BadParameter("--checks needs a VERSION")
    verdict = reg.verdict(name, version)
    if verdict is None:
        console.print(f"{name} v{version} has no gate verdict")
        return
    console.print(_checks_table(name, version, verdict))


def _checks_table(name: str, version: int, verdict: GateVerdict) -> Table:
    against = f" against champion v{verdict.champion_version}" if verdict.champion_version else ""
    table = Table(
        Column("check", no_wrap=True, min_width=len("no_slice_regression")),
        Column("status", no_wrap=True),
        "value",
        "threshold",
        "detail",
        title=f"{name} v{version}: gate {'passed' if verdict.passed else 'FAILED'}{against}",
    )
    style = {PASSED: "green", FAILED: "bold red", NOT_JUDGED: "dim"}
    for c in verdict.checks:
        table.add_row(
            c.name,
            f"[{style[c.status]}]{c.status}[/]",
            _cell(c.value),
            _cell(c.threshold),
            c.detail,
        )
    return table


def _cell(value: float | str | None) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


@models_app.command("promote")
def promote_cmd(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    version: Annotated[int, typer.Argument(help="The version to promote.")],
    alias: Annotated[
        str, typer.Option(help="champion, challenger, canary or shadow.")
    ] = "champion",
    reason: Annotated[str, typer.Option(help="Why (recorded in the log).")] = "",
    by: ActorOpt = "",
) -> None:
    """Point an alias at a version; ``champion`` needs the version's gate to have passed."""
    event = _registry().promote(name, version, alias, actor=by or _default_actor(), reason=reason)
    if event is None:
        console.print(f"{name} {alias} is already v{version}: nothing to do")
    else:
        console.print(
            f"{name} {alias}: v{event.from_version} -> v{event.to_version} (event {event.id})"
        )


@models_app.command("approve")
def approve_cmd(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    version: Annotated[int, typer.Argument(help="The version to approve.")],
    by: ActorOpt = "",
) -> None:
    """Record a person's approval, for gate policies that require one."""
    _registry().approve(name, version, actor=by or _default_actor())
    console.print(f"{name} v{version} approved by {by or _default_actor()}")


@models_app.command("rollback")
def rollback_cmd(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    reason: Annotated[str, typer.Option(help="Why (recorded in the log).")] = "",
    by: ActorOpt = "",
) -> None:
    """Point ``champion`` back at the version it pointed to before its last move."""
    event = _registry().rollback(name, actor=by or _default_actor(), reason=reason or "rollback")
    console.print(f"{name} champion: v{event.from_version} -> v{event.to_version} (rolled back)")


@models_app.command("history")
def history_cmd(
    name: Annotated[str | None, typer.Argument(help="Model (default: all).")] = None,
    alias: Annotated[str | None, typer.Option(help="Only this alias.")] = None,
    at: Annotated[
        datetime | None, typer.Option(help="Which version did --alias point to at this time (UTC)?")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """The append-only promotion log: who moved which alias, when, why, from and to."""
    reg = _registry()
    if at is not None:
        from datetime import UTC

        when = at if at.tzinfo else at.replace(tzinfo=UTC)
        if name is None or alias is None:
            raise typer.BadParameter("--at needs a model NAME and --alias")
        version = reg.alias_at(name, alias, when)
        _print_json({"model": name, "alias": alias, "at": when.isoformat(), "version": version})
        return
    events = reg.history(name, alias)
    if as_json:
        _print_json([e.as_dict() for e in events])
        return
    table = Table("id", "at", "model", "alias", "from", "to", "by", "reason")
    for e in events:
        table.add_row(
            str(e.id),
            e.at.isoformat(timespec="seconds"),
            e.model,
            e.alias,
            f"v{e.from_version}" if e.from_version else "-",
            f"v{e.to_version}" if e.to_version else "-",
            e.actor,
            e.reason,
        )
    console.print(table)


@ui_app.command("mlflow")
def ui_mlflow_cmd(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 5000,
) -> None:
    """Start the MLflow UI on the local store (one worker, job execution off, for 2 cores)."""
    tracking, artifacts, _ = store_uris(load_settings())
    cmd, env = mlflow_server_command(tracking, port, default_artifact_root=artifacts)
    console.print(f"MLflow UI on http://127.0.0.1:{port} (Ctrl-C to stop)")
    raise typer.Exit(subprocess.call(cmd, env=env))
