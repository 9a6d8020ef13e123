"""``couturier authentication reviewer add|list``: the review console's accounts."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from couturier.domains.authentication.review._store import ROLES, ReviewStore
from couturier.settings import Settings

__all__ = ["commands"]

commands = typer.Typer(no_args_is_help=True, help="The authentication domain's commands.")
reviewers = typer.Typer(no_args_is_help=True, help="Accounts of the review console (/review).")
commands.add_typer(reviewers, name="reviewer")
_out = Console()


def _store() -> ReviewStore:
    from couturier.domains.authentication.review import store_path

    return ReviewStore(store_path(Settings.load()))


@reviewers.command("add")
def add_cmd(
    name: Annotated[str, typer.Argument(help="The name the reviewer signs in with.")],
    role: Annotated[
        str, typer.Option(help=f"One of: {', '.join(ROLES)} (a senior settles disagreements).")
    ] = "reviewer",
    password: Annotated[
        str,
        typer.Option(
            prompt=True,
            hide_input=True,
            confirmation_prompt=True,
            envvar="COUTURIER_REVIEWER_PASSWORD",
            help="At least 8 characters (prompted; or COUTURIER_REVIEWER_PASSWORD).",
        ),
    ] = "",
) -> None:
    """Add a reviewer who can sign in to /review."""
    store = _store()
    try:
        reviewer = store.add_reviewer(name, password, role)
    finally:
        store.close()
    _out.print(f"added {reviewer.role} {reviewer.name!r} (expert id {reviewer.expert_id})")


@reviewers.command("list")
def list_cmd() -> None:
    """The reviewers who can sign in."""
    store = _store()
    try:
        table = Table("name", "role", "expert id")
        for r in store.reviewers():
            table.add_row(r.name, r.role, str(r.expert_id))
    finally:
        store.close()
    _out.print(table)
