"""``couturier simulate``, ``couturier scenarios``, ``couturier summary`` and ``couturier demo``."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from couturier.cli._app import app, console, default_run, load_settings, print_kv
from couturier.domain import Recipe, load_domains
from couturier.features import FeatureRepo, FeatureSet, build_training_set, materialize
from couturier.marketplace import (
    SCENARIOS,
    Marketplace,
    SimulationConfig,
    Summary,
    contact_sheet,
    simulate,
    summarize,
)
from couturier.registry import ModelRegistry

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
        "prevalence (truth)": f"{s.prevalence:.2%}",
        "prevalence (verdicts)": f"{s.label_prevalence:.2%}",
        "verdict errors": f"{s.label_error_rate:.2%}",
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
) -> None:
    """Run the main job on the embedded default: simulate a small marketplace and report on it."""
    settings = load_settings()
    config = SimulationConfig.of(listings=listings, days=60.0, seed=settings.seed)
    market = _run(config, default_run(settings, "demo"), None, overwrite=True)
    _print_summary(summarize(market), market)
    sheet = contact_sheet(market, settings.paths.reports / "contact-sheet.png")
    console.print(f"contact sheet of authentic and counterfeit photos: {sheet}")
    for domain in load_domains().values():
        if domain.features is not None:
            repo = _demo_features(domain.features, market)
            if domain.recipe is not None:
                _demo_recipe(domain.recipe, market, repo)


def _demo_recipe(recipe: Recipe, market: Marketplace, repo: FeatureRepo) -> None:
    """Train, evaluate against the oracle and the champion, register through the gate."""
    registry = ModelRegistry(load_settings())
    try:
        with console.status("training, evaluating and registering"):
            report = recipe(market, repo, registry)
    finally:
        registry.close()
    rows: dict[str, Any] = {
        "registered": f"{report.model} v{report.version}",
        "gate": "passed" if report.gate_passed else "failed",
        "champion": f"v{report.champion}" if report.champion else "none",
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


def _demo_features(features: FeatureSet, market: Marketplace) -> FeatureRepo:
    """Features: compute, register, build a training set, materialize, read one vector."""
    repo = FeatureRepo(features, load_settings())
    with console.status(f"features: {features.service_name}"):
        repo.write_sources(market)
        repo.apply()
        rows: dict[str, str] = {}
        entities = _example_entities(repo)
        if entities is not None:
            training = build_training_set(repo, entities)
            frame = training.frame
            rows = {
                "training set": f"{len(frame):,} rows x {frame.shape[1]} columns",
                "time cutoff": training.cutoff.isoformat(timespec="seconds"),
                "fingerprint": training.fingerprint[:16],
            }
        report = materialize(repo)
    rows["materialized"] = ", ".join(f"{r.view} ({r.status})" for r in report)
    rows["online store"] = repo.online_kind
    print_kv(f"features: {features.service_name}", rows)
    return repo


def _example_entities(repo: FeatureRepo) -> pd.DataFrame | None:
    """The root entity's rows of its view's source, as a training set's entity frame; ``None``
    when an example needs join keys the root does not carry (its recipe builds those)."""
    fs = repo.features
    root = fs.root.join_key
    others = {e.join_key for e in fs.entities} - {root} - set(fs.key_from)
    if others:
        return None
    view = next(v.name for v in fs.views if v.entity.name == fs.root.name)
    frame = pd.read_parquet(repo.source_path(view), columns=[root, "event_timestamp"])
    return frame.drop_duplicates(root, keep="first").reset_index(drop=True)
