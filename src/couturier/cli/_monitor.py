"""``couturier monitor run | show | report``: the monitoring results of the watched models."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from couturier.cli._app import app, console, load_settings
from couturier.cli._pipelines import MarketOpt, resource_for
from couturier.domain import load_domains
from couturier.errors import InvalidInputError, NotFoundError

if TYPE_CHECKING:
    from couturier.monitoring import MonitoringStore

__all__: list[str] = []

monitor_app = typer.Typer(help="Monitoring: drift, performance and labels of the watched models.")
app.add_typer(monitor_app, name="monitor")


def _day(value: str | None) -> str:
    if value is None:  # yesterday: today is not over, and its labels have not arrived
        return (datetime.now(UTC).date() - timedelta(days=1)).isoformat()
    try:
        return datetime.strptime(value, "%Y-%m-%d").date().isoformat()
    except ValueError:
        raise InvalidInputError(
            f"--day {value!r} is not a day; write it as YYYY-MM-DD", field="day"
        ) from None


@monitor_app.command("run")
def run_cmd(
    day: Annotated[
        str | None, typer.Option(help="Day to judge, YYYY-MM-DD (default: yesterday, UTC).")
    ] = None,
    marketplace: MarketOpt = None,
) -> None:
    """Run every domain's monitoring job for one day (a Dagster run per domain)."""
    from couturier.pipelines import run_job

    partition = _day(day)
    failed = False
    for domain in load_domains().values():
        if not domain.watches:
            continue
        result = run_job(
            domain,
            "monitor",
            resource=resource_for(marketplace),
            partition=partition,
            raise_on_error=False,
        )
        failed |= not result.success
        console.print(
            f"{domain.name}: monitoring {partition} {'done' if result.success else 'FAILED'}"
        )
    _show_all()
    if failed:
        raise typer.Exit(1)


def _store() -> MonitoringStore:
    from couturier.monitoring import MonitoringStore

    return MonitoringStore(load_settings().paths.monitoring)


def _show_all() -> None:
    store = _store()
    table = Table(
        "model", "day", "version", "predictions", "quarantined", "alerts", "flagged today"
    )
    for model in store.models():
        r = store.latest(model)
        if r is None:
            continue
        flagged = [n for n, s in r.signals.items() if s.flagged]
        table.add_row(
            model,
            r.day,
            f"v{r.version}" if r.version else "-",
            str(r.predictions),
            str(sum(r.quarantined.values())),
            ", ".join(r.alerts) or "none",
            ", ".join(flagged) or "none",
        )
    console.print(table)


@monitor_app.command("show")
def show_cmd(
    model: Annotated[str | None, typer.Argument(help="Model (default: every watched one).")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the newest report as JSON.")
    ] = False,
) -> None:
    """The newest monitoring result of each watched model."""
    if model is None and not as_json:
        _show_all()
        return
    store = _store()
    models = [model] if model else store.models()
    out = {}
    for m in models:
        r = store.latest(m)
        if r is None:
            raise NotFoundError(
                f"no monitoring result for {m!r}; run `couturier monitor run` first", model=m
            )
        out[m] = asdict(r)
    console.print_json(json.dumps(out, default=str))


@monitor_app.command("report")
def report_cmd(
    model: Annotated[str, typer.Argument(help="Watched model, e.g. authentication.")],
    out: Annotated[
        Path | None, typer.Option(help="HTML file (default: reports/monitoring-MODEL.html).")
    ] = None,
) -> None:
    """An HTML report of every stored day of ``model``: drift, performance, labels, alerts."""
    from couturier.monitoring import write_report

    settings = load_settings()
    reports = _store().reports(model)
    if not reports:
        raise NotFoundError(
            f"no monitoring result for {model!r}; run `couturier monitor run` first", model=model
        )
    path = write_report(reports, out or settings.paths.reports / f"monitoring-{model}.html")
    console.print(f"report: {path}")
