"""``couturier pipelines up | list | run``: Dagster's UI and daemon, and one job run."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from couturier.cli._app import app, console, load_settings
from couturier.domain import get_domain, load_domains

__all__ = ["resource_for"]

pipelines_app = typer.Typer(help="Pipelines on Dagster: each domain's stages at its cadence.")
app.add_typer(pipelines_app, name="pipelines")

MarketOpt = Annotated[
    Path | None,
    typer.Option("--marketplace", help="Marketplace folder to read (default: the demo's)."),
]


def resource_for(marketplace: Path | None) -> Any:
    from couturier.pipelines import CouturierResource

    settings = load_settings()
    return CouturierResource(
        home=str(settings.paths.home),
        marketplace=str(marketplace.absolute()) if marketplace else "",
    )


@pipelines_app.command("list")
def list_cmd() -> None:
    """Every domain's jobs, their schedules and sensors."""
    from couturier.pipelines import job_names

    table = Table("domain", "job", "cadence (UTC cron)", "on alert")
    for domain in load_domains().values():
        if domain.features is None:
            continue
        names = job_names(domain)
        c = domain.cadence
        table.add_row(domain.name, names["materialize"], c.materialize, "")
        for r in c.retrain:
            table.add_row(
                domain.name,
                names[f"retrain:{r.name}"],
                r.cron,
                "yes" if r.on_alert and domain.watches else "",
            )
        if domain.watches:
            table.add_row(domain.name, names["monitor"], c.monitor, "")
    console.print(table)


@pipelines_app.command("run")
def run_cmd(
    domain: Annotated[str, typer.Argument(help="Domain, e.g. authentication.")],
    job: Annotated[
        str, typer.Argument(help="materialize, monitor or retrain:<name> (see `list`).")
    ],
    partition: Annotated[
        str | None, typer.Option(help="Day (YYYY-MM-DD) of a monitor run.")
    ] = None,
    marketplace: MarketOpt = None,
) -> None:
    """Run one job of a domain in this process (recorded in the local Dagster instance)."""
    from couturier.pipelines import run_job

    result = run_job(
        get_domain(domain),
        job,
        resource=resource_for(marketplace),
        partition=partition,
        raise_on_error=False,
    )
    for event in result.all_events:
        if event.is_step_failure or event.is_step_success:
            console.print(f"{event.step_key}: {event.event_type_value}")
    if not result.success:
        raise typer.Exit(1)


@pipelines_app.command("up")
def up_cmd(
    port: Annotated[int, typer.Option(help="Port of Dagster's web UI.")] = 3000,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
) -> None:
    """Start Dagster's UI and daemon (schedules, the retrain-on-alert sensor) on the local
    profile: SQLite storage under $COUTURIER_HOME/pipelines. Stop with Ctrl-C."""
    from couturier.pipelines import local_instance

    settings = load_settings()
    local_instance(settings)  # its dagster.yaml: SQLite storage here, telemetry off
    env = {
        **os.environ,
        "DAGSTER_HOME": str(settings.paths.pipelines),
        "COUTURIER_HOME": str(settings.paths.home),
    }
    dagster = Path(sys.executable).with_name("dagster")
    command = [
        str(dagster),
        "dev",
        "-m",
        "couturier.pipelines.definitions",
        "--host",
        host,
        "--port",
        str(port),
    ]
    console.print(f"Dagster UI on http://{host}:{port} (DAGSTER_HOME={settings.paths.pipelines})")
    # dagster replaces this process: a signal to it (Ctrl-C, a supervisor's TERM) reaches
    # Dagster's webserver and daemon directly, and none is left behind
    sys.stdout.flush()
    os.execve(dagster, command, env)
