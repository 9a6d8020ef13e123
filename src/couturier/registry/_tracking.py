"""Where MLflow lives for a profile, and what every run records about its provenance."""

from __future__ import annotations

import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from couturier.errors import SettingsError
from couturier.settings import Settings

__all__ = ["code_version", "environment", "mlflow_server_command", "store_uris"]

_TRACKED_PACKAGES = (
    "couturier",
    "numpy",
    "pandas",
    "scikit-learn",
    "onnx",
    "onnxruntime",
    "mlflow",
    "feast",
    "torch",
    "lightgbm",
)


def store_uris(settings: Settings) -> tuple[str, str | None, str]:
    """(MLflow tracking URI, artifact root for new experiments, promotion-log database URL).

    In production the MLflow server owns artifact storage (``--artifacts-destination``, e.g.
    the object store) and proxies uploads, so new experiments take the server's default.
    """
    if settings.profile == "production":
        if not settings.mlflow_tracking_uri:
            raise SettingsError(
                "COUTURIER_MLFLOW_TRACKING_URI is not set; the production profile tracks models "
                "on an MLflow server; set it, e.g. COUTURIER_MLFLOW_TRACKING_URI=http://mlflow:5000",
                variable="COUTURIER_MLFLOW_TRACKING_URI",
            )
        dsn = str(settings.postgres_dsn).replace("postgresql://", "postgresql+psycopg://", 1)
        return settings.mlflow_tracking_uri, None, dsn
    root = settings.paths.mlflow
    root.mkdir(parents=True, exist_ok=True)
    tracking = settings.mlflow_tracking_uri or f"sqlite:///{root / 'mlflow.db'}"
    return tracking, (root / "artifacts").as_uri(), f"sqlite:///{root / 'promotions.db'}"


def code_version() -> dict[str, Any]:
    """The git commit of the code that ran, and whether the work tree had changes."""
    here = Path(__file__).resolve().parent

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=here, capture_output=True, text=True, check=True, timeout=10
        )
        return done.stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": "unknown", "git_dirty": "unknown"}
    return {"git_commit": commit, "git_dirty": str(dirty).lower()}


def environment() -> dict[str, str]:
    env = {"python": platform.python_version(), "platform": platform.platform()}
    for name in _TRACKED_PACKAGES:
        try:
            env[name] = version(name)
        except PackageNotFoundError:
            continue
    return env


def mlflow_server_command(
    backend_store_uri: str,
    port: int,
    *,
    default_artifact_root: str | None = None,
    artifacts_destination: str | None = None,
) -> tuple[list[str], dict[str, str]]:
    """``mlflow server`` as this project runs it on 2 cores: one worker, job execution off."""
    import os
    import sys

    cmd = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        backend_store_uri,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    if default_artifact_root:
        cmd += ["--default-artifact-root", default_artifact_root]
    if artifacts_destination:
        cmd += ["--artifacts-destination", artifacts_destination]
    return cmd, {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
