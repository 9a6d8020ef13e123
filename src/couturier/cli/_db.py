"""``couturier db upgrade``: set up the platform's shared schema once, before replicas start.

On Kubernetes this is the migration Job (or an init container). Replicas that start without it
still set up what is missing, serialized under the schema lock (``couturier.schema``).
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from couturier.cli._app import app, console, load_settings

db_app = typer.Typer(help="The platform's database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def upgrade_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Create what is missing: the promotion log, and each domain's Feast registry tables."""
    from couturier.doctor import redact_url
    from couturier.domain import load_domains
    from couturier.features import FeatureRepo
    from couturier.registry import store_uris, upgrade_schema

    settings = load_settings()
    _, _, log_url = store_uris(settings)
    created = upgrade_schema(log_url)
    rows = [("promotion log", redact_url(log_url), "created" if created else "up to date")]
    for domain in load_domains().values():
        if domain.features is None:
            continue
        with FeatureRepo(domain.features, settings) as repo:
            where = redact_url(str(repo.config.registry.path))
        rows.append((f"feature registry ({domain.name})", where, "ready"))
    if as_json:
        keys = ("schema", "where", "result")
        console.print_json(json.dumps([dict(zip(keys, row, strict=True)) for row in rows]))
        return
    table = Table("schema", "where", "result", title=f"profile: {settings.profile}")
    for row in rows:
        table.add_row(*row)
    console.print(table)
