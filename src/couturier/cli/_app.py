"""The Typer application, its error handling, and the commands every profile has."""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from couturier import __version__
from couturier.errors import CouturierError
from couturier.settings import Settings

__all__ = ["app", "console", "main"]

console = Console()
err_console = Console(stderr=True)
app = typer.Typer(
    name="couturier",
    help="couturier: an ML platform for a marketplace of pre-loved luxury fashion.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
_state: dict[str, Any] = {"debug": False}


def _version(value: bool) -> None:
    if value:
        console.print(f"couturier {__version__}")
        raise typer.Exit


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks on errors.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    _state["debug"] = debug


def load_settings() -> Settings:
    """The settings for a command; errors surface as one readable line via :func:`main`."""
    return Settings.load()


@app.command("settings")
def settings_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show the effective settings (secrets redacted) and where each store lives."""
    s = load_settings()
    data = s.model_dump(mode="json")
    for secret in ("admin_token", "postgres_dsn"):
        if data.get(secret):
            data[secret] = "***"
    data["paths"] = {
        k: str(getattr(s.paths, k)) for k in ("marketplace", "reports", "features", "mlflow")
    }
    if as_json:
        console.print_json(json.dumps(data))
        return
    table = Table("setting", "value", title=f"profile: {s.profile}")
    for key, value in data.items():
        table.add_row(key, json.dumps(value) if isinstance(value, dict) else str(value))
    console.print(table)


def add_domain_commands() -> None:
    """Each domain's own command group (``Domain.commands``) as ``couturier <domain> ...``.

    A domain that cannot be loaded adds no group, and every other command still works; the
    commands that need it say why (``load_domains`` raises there)."""
    from couturier.domain import load_domains

    try:
        domains = load_domains()
    except Exception:  # reported by the commands that need the domains
        return
    for domain in domains.values():
        if domain.commands is not None:
            app.add_typer(domain.commands(), name=domain.name, help=domain.description)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app; a :class:`CouturierError` becomes one line on stderr."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        app(args=argv, standalone_mode=True)
    except CouturierError as exc:
        if debug:
            traceback.print_exc()
        err_console.print(f"[bold red]error:[/] {exc.message}", highlight=False, soft_wrap=True)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        err_console.print("[bold red]interrupted[/]")
        raise SystemExit(130) from None
    except Exception as exc:  # a bug or an unforeseen failure: still one line by default
        if debug:
            raise
        first = str(exc).splitlines()[0] if str(exc) else ""
        err_console.print(
            f"[bold red]error:[/] unexpected {type(exc).__name__}: {first} "
            "(run with --debug for the traceback)",
            highlight=False,
            soft_wrap=True,
        )
        raise SystemExit(1) from None


def print_kv(title: str, rows: dict[str, Any]) -> None:
    table = Table(title=title, show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    for key, value in rows.items():
        table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    console.print(table)


def default_run(settings: Settings, name: str) -> Path:
    return settings.paths.marketplace / name


@app.command("doctor")
def doctor_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Check that every store the profile names is reachable; exit 1 if one is not."""
    from dataclasses import asdict

    from couturier.doctor import run_checks

    checks = run_checks(load_settings())
    if as_json:
        console.print_json(json.dumps([asdict(c) for c in checks]))
    else:
        table = Table("check", "target", "result", "ms")
        for c in checks:
            mark = "[green]ok[/]" if c.ok else "[red]FAILED[/]"
            table.add_row(c.name, c.target, f"{mark} {c.detail}", f"{c.seconds * 1000:.0f}")
        console.print(table)
    if not all(c.ok for c in checks):
        raise typer.Exit(1)
