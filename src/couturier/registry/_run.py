"""An MLflow run logged through the client, and what registration and loading hand back."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from couturier.evaluation import Evaluation, plot_curves
from couturier.registry._card import ModelCard, render_card
from couturier.registry.types import GateVerdict

if TYPE_CHECKING:
    from mlflow import MlflowClient

__all__ = ["LoadedModel", "RegisteredVersion", "Run"]


@dataclass
class Run:
    """An MLflow run, logged through the client (no global fluent state)."""

    client: MlflowClient
    run_id: str
    experiment: str
    lineage: dict[str, Any] = field(default_factory=dict)

    def log_params(self, params: dict[str, Any]) -> None:
        for k, v in params.items():
            self.client.log_param(self.run_id, k, v)

    def log_metrics(self, metrics: dict[str, float], prefix: str = "") -> None:
        for k, v in metrics.items():
            if v is not None and np.isfinite(v):
                self.client.log_metric(self.run_id, _metric_key(prefix + k), float(v))

    def log_evaluation(self, evaluation: Evaluation) -> None:
        """Overall metrics as they are; slice ``brand=1``'s as ``slice.brand.1.<metric>``."""
        self.log_metrics(evaluation.overall)
        for name, metrics in evaluation.slices.items():
            self.log_metrics(metrics, prefix=f"slice.{name}.")
        self.log_json(evaluation.as_dict(), "evaluation/evaluation.json")

    def log_json(self, data: Any, artifact_path: str) -> None:
        folder, _, name = artifact_path.rpartition("/")
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / name
            path.write_text(json.dumps(data, indent=2, default=str))
            self.client.log_artifact(self.run_id, str(path), folder or None)

    def log_file(self, path: Path, folder: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(path), folder)

    def log_evaluation_plots(self, y_true: Any, score: Any, title: str = "") -> None:
        """ROC, precision-recall and calibration plots under ``plots/``."""
        with tempfile.TemporaryDirectory() as tmp:
            for path in plot_curves(y_true, score, Path(tmp), title):
                self.client.log_artifact(self.run_id, str(path), "plots")

    def log_card(self, card: ModelCard) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            for path in render_card(card, Path(tmp)):
                self.client.log_artifact(self.run_id, str(path), "card")


@dataclass(frozen=True)
class RegisteredVersion:
    name: str
    version: int
    run_id: str
    verdict: GateVerdict
    aliases: list[str]


@dataclass(frozen=True)
class LoadedModel:
    name: str
    version: int
    onnx_model: bytes
    spec: dict[str, Any]
    artifacts: dict[str, bytes] = field(default_factory=dict)


def _metric_key(key: str) -> str:
    """MLflow metric names allow letters, digits, ``_-./`` and spaces: brand=1 is brand.1."""
    key = key.replace("=", ".")
    return "".join(ch if ch.isalnum() or ch in "_-./ " else "_" for ch in key)
