"""Tracking and registry: MLflow lineage, ONNX packaging, promotion gates, audit and rollback.

Example (not run as a doctest)::

    registry = ModelRegistry(settings)
    with registry.start_run("authentication", "run-1", lineage=ts.lineage) as run:
        v = registry.register(package, evaluation, run=run, policy=GatePolicy())
    registry.promote(package.name, v.version, "champion", actor="ana", reason="beats v3")
"""

from couturier.registry._card import ModelCard, render_card
from couturier.registry._log import upgrade_schema
from couturier.registry._packaging import ParityReport, check_parity, session
from couturier.registry._registry import ModelRegistry, ParityError
from couturier.registry._run import LoadedModel, RegisteredVersion, Run
from couturier.registry._tracking import mlflow_server_command, store_uris
from couturier.registry.types import (
    ALIASES,
    GateCheck,
    GatePolicy,
    GateVerdict,
    ModelPackage,
    PromotionEvent,
)

__all__ = [
    "ALIASES",
    "GateCheck",
    "GatePolicy",
    "GateVerdict",
    "LoadedModel",
    "ModelCard",
    "ModelPackage",
    "ModelRegistry",
    "ParityError",
    "ParityReport",
    "PromotionEvent",
    "RegisteredVersion",
    "Run",
    "check_parity",
    "mlflow_server_command",
    "render_card",
    "session",
    "store_uris",
    "upgrade_schema",
]
