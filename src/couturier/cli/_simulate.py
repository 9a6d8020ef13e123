"""``couturier simulate``, ``couturier scenarios``, ``couturier summary`` and ``couturier demo``."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from couturier.cli._app import app, console, default_run, load_settings, print_kv
from couturier.domain import Domain, RecipeReport, load_domains
from couturier.marketplace import (
    SCENARIOS,
    Marketplace,
    SimulationConfig,
    Summary,
    contact_sheet,
    simulate,
    summarize,
)

__all__: list[str] = []


def _run(config: SimulationConfig, out: Path, workers: int | None, overwrite: bool) -> Marketplace:
    columns = (
        TextColumn("simulating"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("listings"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("simulate", total=config.listings)
        return simulate(
            config,
            out,
            workers=workers,
            overwrite=overwrite,
            progress=lambda n: bar.advance(task, n),
        )


def _print_summary(s: Summary, market: Marketplace) -> None:
    rows = {
        "listings": s.listings,
        "photos": s.photos,
        "sellers": s.sellers,
        "buyers": s.buyers,
        "interactions": s.interactions,
        "sales / price changes": f"{s.sales} / {s.price_changes}",
        "prevalence (truth)": f"{s.prevalence:.2%}",
        "prevalence (verdicts)": f"{s.label_prevalence:.2%}",
        "verdict errors": f"{s.label_error_rate:.2%}",
        "control points checked (reports)": s.control_points,
        "label delay p50 / p90 (days)": (
            f"{s.label_delay_days_p50:.1f} / {s.label_delay_days_p90:.1f}"
        ),
        "oracle PR-AUC": f"{s.oracle_pr_auc:.3f}",
        "price+seller baseline PR-AUC": f"{s.tabular_baseline_pr_auc:.3f}",
        "scenario": s.scenario,
        "stored at": str(market.path),
    }
    print_kv("marketplace", rows)


def _report(market: Marketplace, as_json: bool) -> None:
    summary = summarize(market)
    if as_json:
        console.print_json(json.dumps(asdict(summary)))
    else:
        _print_summary(summary, market)


@app.command("simulate")
def simulate_cmd(  # noqa: PLR0913 - one parameter per command-line option
    listings: Annotated[int, typer.Option(help="Number of listings.")] = 5000,
    days: Annotated[float, typer.Option(help="Simulated period in days.")] = 120.0,
    seed: Annotated[int, typer.Option(help="Seed of every random stream.")] = 7,
    prevalence: Annotated[float, typer.Option(help="Share of counterfeit listings.")] = 0.04,
    scenario: Annotated[
        str, typer.Option(help="Drift scenario (see `couturier scenarios`).")
    ] = "none",
    scenario_start_day: Annotated[
        float | None, typer.Option(help="Day the scenario starts.")
    ] = None,
    brands: Annotated[int, typer.Option(help="Number of luxury houses.")] = 8,
    image_size: Annotated[int, typer.Option(help="Photo size in px.")] = 96,
    chunk_size: Annotated[int, typer.Option(help="Listings per Parquet part.")] = 2000,
    workers: Annotated[
        int | None, typer.Option(help="Worker processes (default: up to 2).")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Output folder.")] = None,
    overwrite: Annotated[
        bool, typer.Option(help="Replace --out once the new run is complete.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Simulate a marketplace: listings, photos, sellers, buyers, verdicts, interactions."""
    config = SimulationConfig.of(
        listings=listings,
        days=days,
        seed=seed,
        prevalence=prevalence,
        scenario=scenario,
        scenario_start_day=scenario_start_day,
        brands=brands,
        image_size=image_size,
        chunk_size=chunk_size,
    )
    settings = load_settings()
    target = out if out is not None else default_run(settings, f"seed{seed}-{scenario}-{listings}")
    _report(_run(config, target, workers, overwrite), as_json)


@app.command("scenarios")
def scenarios_cmd() -> None:
    """List the drift scenarios and what each one changes."""
    table = Table("scenario", "what happens from its start day", "what it changes")
    for name, cls in SCENARIOS.items():
        table.add_row(name, cls.summary, ", ".join(cls.changes) or "-")
    console.print(table)


@app.command("summary")
def summary_cmd(
    path: Annotated[Path, typer.Argument(help="A folder written by `couturier simulate`.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Summarize a simulated marketplace: counts, prevalence, label delays, difficulty."""
    _report(Marketplace(path), as_json)


@app.command("demo")
def demo_cmd(
    listings: Annotated[int, typer.Option(help="Number of listings.")] = 3000,
    replay_days: Annotated[int, typer.Option(help="Days of the closing replay (0: none).")] = 3,
) -> None:
    """Run the main job on the embedded default: simulate a small marketplace, then each
    domain's retraining pipeline (features, training, gate, promotion) as Dagster runs, and a
    short replay of the monitored loop."""
    settings = load_settings()
    config = SimulationConfig.of(listings=listings, days=60.0, seed=settings.seed)
    market = _run(config, default_run(settings, "demo"), None, overwrite=True)
    _print_summary(summarize(market), market)
    sheet = contact_sheet(market, settings.paths.reports / "contact-sheet.png")
    console.print(f"contact sheet of authentic and counterfeit photos: {sheet}")
    for domain in load_domains().values():
        if domain.features is not None and domain.cadence.retrain:
            _demo_pipeline(domain, market)
    if replay_days > 0:
        _demo_replay(replay_days)


def _demo_pipeline(domain: Domain, market: Marketplace) -> None:
    """The domain's first retraining job, in this process, recorded in the local instance."""
    from couturier.extras import require
    from couturier.pipelines import CouturierResource, job_names, run_job

    dg = require("dagster", extra="pipelines", purpose="the demo's pipeline runs")

    retrain = domain.cadence.retrain[0]
    kind = f"retrain:{retrain.name}"
    resource = CouturierResource(home=str(load_settings().paths.home), marketplace=str(market.path))
    with console.status(f"{domain.name}: pipeline run {job_names(domain)[kind]}"):
        result = run_job(domain, kind, resource=resource, raise_on_error=False)
    if not result.success:  # a recipe that refuses this world says why; the others go on
        for event in result.get_step_failure_events():
            error = event.step_failure_data.error
            cause = error.cause if error is not None and error.cause is not None else error
            why = cause.message.strip() if cause is not None else "no error recorded"
            console.print(
                f"[yellow]{domain.name}: pipeline run {result.run_id[:8]} stopped at "
                f"{event.step_key}: {why}[/yellow]"
            )
        return
    tables = result.asset_value(dg.AssetKey([domain.name, "feature_tables"]))
    rows: dict[str, str] = {
        "materialized": ", ".join(f"{v} ({s})" for v, s in tables["views"].items()),
        "online store": tables["online"],
        "pipeline run": result.run_id[:8],
    }
    print_kv(f"features: {tables['service']}", rows)
    report = result.asset_value(dg.AssetKey([domain.name, f"{retrain.name}_model"]))
    said = result.asset_value(dg.AssetKey([domain.name, f"{retrain.name}_promotion"]))
    _print_recipe(report, said)


def _print_recipe(report: RecipeReport, promotion: str) -> None:
    rows: dict[str, Any] = {
        "registered": f"{report.model} v{report.version}",
        "gate": "passed" if report.gate_passed else "failed",
        "champion": f"v{report.champion}" if report.champion else "none",
        "promotion": promotion,
    }
    for k, v in report.metrics.items():
        oracle = report.oracle.get(k)
        rows[k] = _num(v) + (f"  (oracle {_num(oracle)})" if oracle is not None else "")
    components = report.details.get("components") or {}
    if components:
        rows["components"] = ", ".join(f"{name} v{v}" for name, v in components.items())
    if report.details.get("report"):
        rows["report"] = str(report.details["report"])
    print_kv(f"model: {report.model}", rows)


def _num(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3f}"


def _demo_replay(days: int) -> None:
    """A few simulated days of the monitored loop, through a server, in a home of its own."""
    from couturier.replay import ReplayConfig, run_replay

    for domain in load_domains().values():
        if domain.traffic is None:
            continue
        folder = load_settings().paths.home / "replays" / "demo"
        # ~3,000 listings before the replay: a first champion's holdout big enough for its
        # calibration check to judge the model, not the sample (at 2,000 it missed by sampling)
        config = ReplayConfig(days=days, warmup_days=21, listings_per_day=150, drift_day=days)
        with console.status(f"replay: {days} simulated days of {domain.name}"):
            result = run_replay(config, domain, folder, overwrite=True)
        rows = {
            d["day"]: (
                f"{d['requests']} requests, {d['failed']} failed; "
                f"PR-AUC {d.get('pr_auc', float('nan')):.3f}; "
                f"alerts: {', '.join(d['alerts']) or 'none'}"
            )
            for d in result.daily
        }
        rows["monitoring"] = str(Path(folder) / "home" / "monitoring")
        print_kv(f"replay: {domain.name} ({result.seconds:.0f} s)", rows)
