"""``couturier replay``: simulated days through the real stack, under a retraining policy."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from couturier.cli._app import app, console, load_settings
from couturier.domain import get_domain

__all__: list[str] = []


def _f(v: object) -> str:
    return (
        ""
        if v is None or (isinstance(v, float) and math.isnan(v))
        else f"{v:.3f}"
        if isinstance(v, float)
        else str(v)
    )


@app.command("replay")
def replay_cmd(  # noqa: PLR0913 - one parameter per command-line option
    scenario: Annotated[
        str, typer.Option(help="Drift scenario (see `couturier scenarios`).")
    ] = "none",
    days: Annotated[int, typer.Option(help="Simulated days to replay.")] = 30,
    policy: Annotated[str, typer.Option(help="never | scheduled | triggered")] = "triggered",
    listings_per_day: Annotated[int, typer.Option(help="New listings per simulated day.")] = 150,
    warmup_days: Annotated[
        int, typer.Option(help="Days of history the first champion trains on.")
    ] = 45,
    drift_day: Annotated[
        int, typer.Option(help="Replay day the scenario starts (after the reference window).")
    ] = 10,
    domain: Annotated[str, typer.Option(help="Domain to replay.")] = "authentication",
    seed: Annotated[int, typer.Option(help="Simulator seed.")] = 7,
    out: Annotated[
        Path | None, typer.Option(help="Folder for everything the replay writes.")
    ] = None,
    overwrite: Annotated[
        bool, typer.Option(help="Empty --out first if it holds an earlier replay.")
    ] = False,
) -> None:
    """Replay simulated days through features, serving, monitoring, pipelines and the registry."""
    from couturier.replay import ReplayConfig, plot_replays, run_replay

    config = ReplayConfig(
        scenario=scenario,
        days=days,
        policy=policy,  # type: ignore[arg-type]
        warmup_days=warmup_days,
        listings_per_day=listings_per_day,
        drift_day=drift_day,
        seed=seed,
    )
    folder = out or load_settings().paths.home / "replays" / f"{scenario}-{policy}"
    result = run_replay(config, get_domain(domain), folder, overwrite=overwrite, say=console.print)
    (folder / "replay.json").write_text(json.dumps(asdict(result), indent=1, default=str) + "\n")
    plot = plot_replays([result], folder / "replay.png")
    table = Table(
        "day",
        "served",
        "requests",
        "5xx",
        "PR-AUC (3d)",
        "recall@1%FPR (3d)",
        "cost/1000 (3d)",
        "labels",
        "alerts",
        "promoted",
        title=f"replay: {scenario}, {policy}",
    )
    for d in result.daily:
        table.add_row(
            d["day"],
            f"v{d['served_version']}" if d["served_version"] else "",
            str(d["requests"]),
            str(d["failed"]),
            _f(d.get("pr_auc_3d")),
            _f(d.get("recall_at_1pct_fpr_3d")),
            _f(d.get("expected_cost_per_1000_3d")),
            _f(d["label_coverage"]),
            ", ".join(d["alerts"]),
            ", ".join(f"v{v}" for v in d["promoted"]),
        )
    console.print(table)
    console.print(f"{result.seconds:.0f} s; results: {folder / 'replay.json'}; plot: {plot}")
