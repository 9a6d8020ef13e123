"""The rendered MLflow server: a command line MLflow itself accepts, the Secret's stores, and
a Host header the serving pods send that its host check lets through."""

from __future__ import annotations

import re
import sys
import warnings
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import click
import pytest

from couturier.deploy import Values, manifests

IMAGE_BIN = Path(sys.prefix) / "bin"  # the image's PATH holds the same environment's scripts


def one(everything: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (found,) = (m for m in everything if m["kind"] == kind and m["metadata"]["name"] == name)
    return found


def container(everything: list[dict[str, Any]], name: str) -> dict[str, Any]:
    (found,) = one(everything, "Deployment", name)["spec"]["template"]["spec"]["containers"]
    return dict(found)


def expand(arg: str, env: list[dict[str, Any]]) -> str:
    """What Kubernetes makes of ``$(VAR)`` in an argument: a variable the container does not
    define stays as it is, silently (so it is a failure here)."""
    defined = {e["name"] for e in env}
    for variable in re.findall(r"\$\((\w+)\)", arg):
        assert variable in defined, f"$({variable}) in {arg!r} is not in the container's env"
    return re.sub(r"\$\((\w+)\)", lambda m: f"<{m.group(1)}>", arg)


@pytest.fixture(scope="module")
def everything() -> list[dict[str, Any]]:
    return manifests(Values(image="couturier:1", namespace="ml"))


def test_mlflow_accepts_the_command_line(everything: list[dict[str, Any]]) -> None:
    mlflow = container(everything, "couturier-mlflow")
    (command,) = mlflow["command"]
    assert (IMAGE_BIN / command).exists()
    args = [expand(a, mlflow["env"]) for a in mlflow["args"]]
    assert args[0] == "server"
    # MLflow's own parser: a misspelt option (--artifact-destination) fails here
    params = mlflow_cli_params(args[1:])
    assert params["backend_store_uri"] == "<MLFLOW_BACKEND_STORE_URI>"
    assert params["artifacts_destination"] == "<COUTURIER_OBJECT_STORE_URI>/mlflow-artifacts"
    assert params["serve_artifacts"] is True and params["workers"] == "1"
    assert params["host"] == "0.0.0.0"
    env = {e["name"]: e for e in mlflow["env"]}
    assert env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"]["value"] == "false"
    for key in ("MLFLOW_BACKEND_STORE_URI", "COUTURIER_OBJECT_STORE_URI"):
        assert env[key]["valueFrom"]["secretKeyRef"] == {"name": "couturier", "key": key}
    with pytest.raises(Exception, match="No such option"):
        mlflow_cli_params(["--artifact-destination", "s3://x"])


@cache
def mlflow_server() -> tuple[click.Command, Callable[[list[str], str], bool]]:
    """``mlflow server``'s parser and its Host header check, imported here: importing MLflow's
    server warns (a loader SQLAlchemy 2.1 deprecates, its own type-hint notes), none ours."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import mlflow.cli
        from mlflow.server.security_utils import is_allowed_host_header
    return mlflow.cli.server, is_allowed_host_header


def mlflow_cli_params(args: list[str]) -> dict[str, Any]:
    return dict(mlflow_server()[0].make_context("server", list(args)).params)


def test_the_serving_pods_reach_mlflow_through_its_host_check(
    everything: list[dict[str, Any]],
) -> None:
    """MLflow 3 answers 403 to a Host header outside --allowed-hosts (default: localhost and
    private IPs, not a Service's name): the tracking URI the pods get must pass MLflow's own
    check, and name the Service and its port."""
    mlflow = container(everything, "couturier-mlflow")
    params = mlflow_cli_params([expand(a, mlflow["env"]) for a in mlflow["args"][1:]])
    allowed = params["allowed_hosts"].split(",")
    is_allowed_host_header = mlflow_server()[1]
    serving_env = {e["name"]: e for e in container(everything, "couturier")["env"]}
    tracking = urlparse(serving_env["COUTURIER_MLFLOW_TRACKING_URI"]["value"])
    assert is_allowed_host_header(allowed, tracking.netloc)  # requests sends host:port
    assert is_allowed_host_header(allowed, "localhost:15000")  # kubectl port-forward
    assert not is_allowed_host_header(allowed, "evil.example.com")
    service = one(everything, "Service", "couturier-mlflow")
    (port,) = service["spec"]["ports"]
    assert tracking.hostname == "couturier-mlflow.ml.svc" and tracking.port == port["port"]
    assert int(params["port"]) == mlflow["ports"][0]["containerPort"]
    assert (
        service["spec"]["selector"]
        == one(everything, "Deployment", "couturier-mlflow")["spec"]["template"]["metadata"][
            "labels"
        ]
    )


def test_mlflow_is_probed_on_its_health_route(everything: list[dict[str, Any]]) -> None:
    mlflow = container(everything, "couturier-mlflow")
    for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert mlflow[kind]["httpGet"] == {"path": "/health", "port": "http"}
    spec = one(everything, "Deployment", "couturier-mlflow")["spec"]
    assert spec["replicas"] == 1  # the first start creates the schema: two would race
