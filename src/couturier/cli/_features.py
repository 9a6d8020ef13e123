"""``couturier features apply | materialize | freshness | show``."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from couturier.cli._app import app, console, load_settings
from couturier.domain import load_domains
from couturier.errors import InvalidInputError, NotFoundError
from couturier.features import (
    FeatureRepo,
    FeatureSet,
    OnlineReader,
    freshness,
    materialize,
    read_entity,
)
from couturier.marketplace import Marketplace

features_app = typer.Typer(help="The feature store: apply, materialize, freshness, show.")
app.add_typer(features_app, name="features")

DomainOpt = Annotated[
    str | None,
    typer.Option("--domain", help="Domain whose features to use (default: every domain's)."),
]


def _domains_with_features(domain: str | None) -> dict[str, FeatureSet]:
    """The named domain's feature set, or every installed domain's."""
    with_features = {n: d.features for n, d in load_domains().items() if d.features is not None}
    if domain is None:
        return with_features
    if domain not in with_features:
        raise NotFoundError(
            f"no domain {domain!r} with features; available: {', '.join(sorted(with_features))}",
            domain=domain,
        )
    return {domain: with_features[domain]}


def _repos(domain: str | None) -> list[FeatureRepo]:
    settings = load_settings()
    return [FeatureRepo(fs, settings) for fs in _domains_with_features(domain).values()]


def _repo_with_entity(domain: str | None, entity: str) -> FeatureRepo:
    """The one feature set (of ``domain``, or of any domain) that has ``entity``."""
    sets = _domains_with_features(domain)
    having = {n: fs for n, fs in sets.items() if entity in {e.name for e in fs.entities}}
    if len(having) > 1:
        raise InvalidInputError(
            f"entity {entity!r} is in the features of {', '.join(sorted(having))}; "
            "choose one with --domain",
            field="domain",
        )
    if not having:
        names = sorted({e.name for fs in sets.values() for e in fs.entities})
        raise InvalidInputError(
            f"no entity {entity!r} in the features of {', '.join(sorted(sets))}; "
            f"entities: {', '.join(names)}",
            field="entity",
        )
    return FeatureRepo(next(iter(having.values())), load_settings())


def _json(data: Any) -> str:
    return json.dumps(data, default=str)


@features_app.command("apply")
def apply_cmd(
    market: Annotated[
        Path | None, typer.Option(help="Marketplace to compute from (default: the demo's).")
    ] = None,
    domain: DomainOpt = None,
) -> None:
    """Compute every feature view's source from a marketplace and register the definitions."""
    path = market or load_settings().active_marketplace
    for repo in _repos(domain):
        with console.status(f"computing feature sources: {repo.features.service_name}"):
            reports = repo.write_sources(Marketplace(path))
            repo.apply()
        table = Table("view", "rows", "first event", "last event", title=repo.features.service_name)
        for r in reports:
            table.add_row(r.view, f"{r.rows:,}", r.min_event or "-", r.max_event or "-")
        console.print(table)


@features_app.command("materialize")
def materialize_cmd(
    end: Annotated[
        datetime | None, typer.Option(help="Materialize up to this time (default: now, UTC).")
    ] = None,
    domain: DomainOpt = None,
) -> None:
    """Incrementally copy the newest values into the online store (idempotent)."""
    if end is not None and end.tzinfo is None:
        end = end.replace(tzinfo=UTC)
    for repo in _repos(domain):
        name = repo.features.service_name
        with console.status(f"materializing {name} into {repo.online_kind}"):
            report = materialize(repo, end)
        table = Table("view", "from", "to", "status", "s", title=f"{name}: {repo.online_kind}")
        for r in report:
            table.add_row(r.view, str(r.start), str(r.end), r.status, f"{r.seconds:.2f}")
        console.print(table)


@features_app.command("freshness")
def freshness_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    domain: DomainOpt = None,
) -> None:
    """Age of the newest online value per view, against its TTL."""
    rows = [row for repo in _repos(domain) for row in freshness(repo)]
    if as_json:
        console.print_json(_json([asdict(r) for r in rows]))
        return
    table = Table("view", "newest value", "materialized until", "age", "ttl", "stale")
    for r in rows:
        age = f"{r.age_seconds / 86400:.1f} d" if r.age_seconds is not None else "-"
        table.add_row(
            r.view,
            str(r.newest_value_at),
            str(r.materialized_until),
            age,
            f"{r.ttl_seconds / 86400:.0f} d",
            "[red]yes[/]" if r.stale else "no",
        )
    console.print(table)


@features_app.command("show")
def show_cmd(
    entity: Annotated[str, typer.Argument(help="Entity name, e.g. seller.")],
    entity_id: Annotated[int, typer.Argument(help="Its id.")],
    domain: DomainOpt = None,
) -> None:
    """Show what the online store holds for one entity."""
    repo = _repo_with_entity(domain, entity)
    console.print_json(_json(read_entity(OnlineReader(repo), entity, entity_id)))
