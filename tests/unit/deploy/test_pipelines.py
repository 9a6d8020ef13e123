"""The rendered Dagster webserver and daemon: an instance config Dagster itself accepts, with
PostgreSQL storage from the Secret, command lines Dagster's CLIs parse, one daemon."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from dagster._core.errors import DagsterInvalidConfigError
from dagster._core.instance.config import dagster_instance_config
from dagster._daemon.cli import run_command
from dagster_webserver.cli import dagster_webserver

from couturier.deploy import Values, manifests
from couturier.pipelines._run import INSTANCE_YAML
from couturier.settings import Settings

IMAGE_BIN = Path(sys.prefix) / "bin"
IMAGE_HOME = Path("/var/lib/couturier")  # the Dockerfile's COUTURIER_HOME


@pytest.fixture(scope="module")
def everything() -> list[dict[str, Any]]:
    return manifests(Values(image="couturier:1"))


def one(everything: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (found,) = (m for m in everything if m["kind"] == kind and m["metadata"]["name"] == name)
    return found


def dagster_yaml(everything: list[dict[str, Any]]) -> str:
    return str(one(everything, "ConfigMap", "couturier-dagster")["data"]["dagster.yaml"])


def test_dagster_accepts_the_instance_config(
    everything: list[dict[str, Any]], tmp_path: Path
) -> None:
    (tmp_path / "dagster.yaml").write_text(dagster_yaml(everything))
    config, _ = dagster_instance_config(str(tmp_path))  # Dagster's own schema
    assert config["storage"] == {"postgres": {"postgres_url": {"env": "DAGSTER_POSTGRES_URL"}}}
    # the local instance's run queue and telemetry, unchanged
    for key, value in yaml.safe_load(INSTANCE_YAML).items():
        assert config[key] == value
    logs = config["compute_logs"]
    assert hasattr(importlib.import_module(logs["module"]), logs["class"])
    # not vacuous: a misspelt key fails the same check
    broken = dagster_yaml(everything).replace("postgres_url:", "postgres_uri:")
    (tmp_path / "dagster.yaml").write_text(broken)
    with pytest.raises(DagsterInvalidConfigError):
        dagster_instance_config(str(tmp_path))


def test_both_processes_load_the_instance_and_the_code_location(
    everything: list[dict[str, Any]],
) -> None:
    webserver = one(everything, "Deployment", "couturier-dagster-webserver")
    daemon = one(everything, "Deployment", "couturier-dagster-daemon")
    for deployment in (webserver, daemon):
        template = deployment["spec"]["template"]
        (container,) = template["spec"]["containers"]
        (command,) = container["command"]
        assert (IMAGE_BIN / command).exists()
        env = {e["name"]: e for e in container["env"]}
        # $DAGSTER_HOME is where `couturier pipelines` keeps the local instance, and holds the
        # ConfigMap's dagster.yaml
        home = env["DAGSTER_HOME"]["value"]
        assert Path(home) == Settings(home=IMAGE_HOME).paths.pipelines
        (mount,) = (m for m in container["volumeMounts"] if m.get("subPath") == "dagster.yaml")
        assert mount["mountPath"] == f"{home}/dagster.yaml"
        (volume,) = (v for v in template["spec"]["volumes"] if v["name"] == mount["name"])
        assert volume["configMap"]["name"] == "couturier-dagster"
        secret = env["DAGSTER_POSTGRES_URL"]["valueFrom"]["secretKeyRef"]
        assert secret == {"name": "couturier", "key": "DAGSTER_POSTGRES_URL"}
        assert env["COUTURIER_PROFILE"]["value"] == "production"
    (server,) = webserver["spec"]["template"]["spec"]["containers"]
    params = dagster_webserver.make_context("dagster-webserver", list(server["args"])).params
    assert params["module_name"] == ("couturier.pipelines.definitions",)
    assert params["port"] == server["ports"][0]["containerPort"] and params["host"] == "0.0.0.0"
    assert server["readinessProbe"]["httpGet"]["path"] == "/server_info"
    (runner,) = daemon["spec"]["template"]["spec"]["containers"]
    assert runner["args"][0] == "run"
    params = run_command.make_context("run", list(runner["args"][1:])).params
    assert params["module_name"] == ("couturier.pipelines.definitions",)
    assert runner["livenessProbe"]["exec"]["command"] == ["dagster-daemon", "liveness-check"]
    service = one(everything, "Service", "couturier-dagster-webserver")
    assert service["spec"]["selector"] == webserver["spec"]["template"]["metadata"]["labels"]


def test_one_daemon_never_two(everything: list[dict[str, Any]]) -> None:
    spec = one(everything, "Deployment", "couturier-dagster-daemon")["spec"]
    assert spec["replicas"] == 1 and spec["strategy"] == {"type": "Recreate"}


def test_a_new_instance_config_rolls_the_pods(
    everything: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The config is mounted by subPath, which never sees a change: the pods carry its digest."""

    def digests(rendered: list[dict[str, Any]]) -> set[str]:
        return {
            m["spec"]["template"]["metadata"]["annotations"]["couturier.dev/dagster-yaml"]
            for m in rendered
            if m["metadata"]["name"].startswith("couturier-dagster-") and m["kind"] == "Deployment"
        }

    (before,) = digests(everything)
    monkeypatch.setattr("couturier.pipelines._run.INSTANCE_YAML", "telemetry:\n  enabled: true\n")
    (after,) = digests(manifests(Values(image="couturier:1")))
    assert after != before
