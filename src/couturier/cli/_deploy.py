"""``couturier deploy render``: the Kubernetes manifests of the production profile."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from couturier.cli._app import app, console

deploy_app = typer.Typer(help="Deployment: Kubernetes manifests.", no_args_is_help=True)
app.add_typer(deploy_app, name="deploy")


@deploy_app.command("render")
def render_cmd(
    values: Annotated[Path, typer.Option(help="The values file (YAML).")],
    out: Annotated[Path, typer.Option(help="Folder for the manifests.")] = Path("rendered"),
    alerts: Annotated[
        Path | None,
        typer.Option(
            help="Prometheus rules for the PrometheusRule (default: the checkout's "
            "deploy/prometheus/alerts.yml)."
        ),
    ] = None,
) -> None:
    """Write one YAML file per Kubernetes object (deploy/kubernetes/values.example.yaml)."""
    from couturier.deploy import ALERTS, load_values, write_manifests

    for path in write_manifests(load_values(values), out, alerts=alerts or ALERTS):
        console.print(str(path))
