"""``couturier plan``: replicas, instances and monthly cost for a peak rate at a p99 target."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from couturier.cli._app import app, console
from couturier.plan import (
    PRICES,
    RESULTS,
    UTILIZATION,
    Plan,
    Request,
    Setup,
    Source,
    load_prices,
    make_plan,
    photo_factor,
    write_plot,
)

__all__: list[str] = []


def _capacity_table(plan: Plan) -> Table:
    c = plan.capacity
    w, photos = c.workload, c.photos
    scaled = f" at {photos} photos" if photos is not None else ""
    table = Table(
        "load point",
        "offered by",
        "req/s",
        f"p99 ms{scaled}",
        f"req/s/vCPU{scaled}",
        "used",
        title=f"{w.route}: measured loads",
        caption="; ".join(w.provenance),
    )
    for p in w.points:
        f = photo_factor(w.split, photos) / photo_factor(w.split, p.photos)
        used = "[green]<- chosen[/]" if p is c.point else ""
        if not used and p.p99_ms * f > plan.request.p99_ms:
            used = "p99 over"
        table.add_row(
            p.source,
            p.setup,
            f"{p.rps:g}",
            f"{p.p99_ms * f:.1f}",
            f"{p.rps_per_vcpu / f:.1f}",
            used,
        )
    return table


def _sizing_table(plan: Plan) -> Table:
    table = Table(title="sizing at the peak", show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    r = plan.request
    rows = {
        "peak / p99 target": f"{r.peak_rps:g} req/s / {r.p99_ms:g} ms",
        "capacity per vCPU": f"{plan.capacity.rps_per_vcpu:.1f} req/s",
        "per replica (its vCPUs)": f"{plan.rps_per_replica:.1f} req/s",
        "target utilization": f"{r.utilization:.0%} -> {plan.step_rps:.1f} req/s per replica",
        "replicas at the peak": str(plan.replicas),
        "replicas per EKS node": str(plan.per_node),
        "replicas per SageMaker instance": str(plan.per_endpoint),
    }
    for key, value in rows.items():
        table.add_row(key, value)
    return table


def _cost_table(plan: Plan) -> Table:
    """One row per line item, one column per option: count x USD/hour = USD/month."""
    table = Table(
        "USD per month", *(o.name for o in plan.options), title="monthly cost at the peak"
    )
    lines = [line for o in plan.options for line in o.lines]
    # what differs between the options first, what they share last
    items = list(dict.fromkeys(x.item for x in sorted(lines, key=lambda x: x.shared)))
    for item in items:
        cells = []
        for o in plan.options:
            line = next((x for x in o.lines if x.item == item), None)
            if line is None:
                cells.append("-")
                continue
            month = line.monthly(o.hours)
            price = "unpriced" if line.price.value is None else f"{line.price.value:g}"
            cost = "" if month is None else f" = {month:,.2f}"
            cells.append(f"{line.count:g} x {price}{cost}")
        table.add_row(item, *cells)
    table.add_section()
    totals = [
        f"[bold]{o.total:,.2f}[/]" + ("" if o.complete else " (incomplete)") for o in plan.options
    ]
    table.add_row("[bold]total (priced lines)[/]", *totals)
    return table


def _ranges(below: tuple[tuple[float, float, str | None], ...]) -> str:
    return "; ".join(f"{lo:,.0f}-{hi:,.0f}: {name or 'tie'}" for lo, hi, name in below)


def _break_even_table(plan: Plan) -> Table:
    table = Table(
        "options",
        "break-even",
        "cheaper above it",
        "below it (req/s: cheaper)",
        "checked up to",
        title="break-even: the peak rate from which the cheaper option stays cheaper",
    )
    for b in plan.break_evens:
        table.add_row(
            f"{b.first} vs {b.second}",
            "none in range" if b.rps is None else f"{b.rps:,.1f} req/s",
            b.cheaper_above or "tie",
            _ranges(b.below) or "-",
            f"{b.up_to_rps:,.0f} req/s",
        )
    return table


def _sources(plan: Plan) -> list[Source]:
    seen: dict[str, Source] = {}
    for o in plan.options:
        for line in o.lines:
            if line.price.source is not None:
                seen.setdefault(line.price.source.key, line.price.source)
    return list(seen.values())


@app.command("plan")
def plan_cmd(  # noqa: PLR0913 - one parameter per command-line option
    peak_rps: Annotated[float, typer.Option("--peak-rps", help="Peak arrival rate, req/s.")],
    p99_ms: Annotated[float, typer.Option("--p99-ms", help="p99 the peak must keep, ms.")],
    photos_per_listing: Annotated[
        int | None,
        typer.Option(help="Photos per request (authenticate); default: the benchmark's."),
    ] = None,
    workload: Annotated[str, typer.Option(help="authenticate or tabular.")] = "authenticate",
    utilization: Annotated[
        float, typer.Option(help="Share of a replica's capacity to load it to.")
    ] = UTILIZATION,
    instance_type: Annotated[str, typer.Option(help="EKS node type.")] = "c6i.xlarge",
    sagemaker_instance_type: Annotated[
        str, typer.Option(help="SageMaker endpoint instance type.")
    ] = "ml.m5.xlarge",
    prices: Annotated[Path, typer.Option(help="The dated, sourced price file.")] = PRICES,
    results: Annotated[Path, typer.Option(help="Benchmark results folder.")] = RESULTS,
    plot: Annotated[
        Path | None, typer.Option(help="Write monthly cost against peak rate to this PNG.")
    ] = None,
) -> None:
    """Size replicas and instances for a peak rate at a p99 target from the benchmark results,
    price them on EKS (on-demand, + Spot) and SageMaker, and show the break-even (docs/plan.md)."""
    book = load_prices(prices)
    setup = Setup(book, node_type=instance_type, sagemaker_type=sagemaker_instance_type)
    request = Request(peak_rps, p99_ms, photos_per_listing, workload, utilization)
    plan = make_plan(request, setup, results)
    console.print(_capacity_table(plan))
    console.print(_sizing_table(plan))
    console.print(_cost_table(plan))
    console.print(_break_even_table(plan))
    cheapest = min((o for o in plan.options if o.complete), key=lambda o: o.total)
    console.print(f"At {peak_rps:g} req/s the cheapest is [bold]{cheapest.name}[/].")
    for note in plan.notes:
        console.print(f"- {note}", soft_wrap=True)
    shown = book.path.relative_to(Path.cwd()) if book.path.is_relative_to(Path.cwd()) else book.path
    console.print(f"Prices: {shown} ({book.region}, {book.currency}); sources used:")
    for s in _sources(plan):
        dated = f"; page date {s.page_date}" if s.page_date else ""
        console.print(f"  {s.key}: {s.url} ({s.read}{dated})", soft_wrap=True, highlight=False)
    if plot is not None:
        console.print(f"plot: {write_plot(plan, plot)}")
