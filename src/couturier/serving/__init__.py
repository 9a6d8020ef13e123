"""Serving: registered ONNX models over HTTP, speaking the Open Inference Protocol.

>>> repo = ModelRepository.from_registry(ModelRegistry(settings))     # doctest: +SKIP
>>> app = create_app(repo)                                             # doctest: +SKIP

``couturier serve`` runs it with uvicorn.
"""

from couturier.serving._app import Batching, Routing, create_app
from couturier.serving._batching import Batcher, OverloadedError
from couturier.serving._predictions import (
    PredictionLog,
    PredictionSink,
    read_predictions,
    settle,
)
from couturier.serving._repository import LoadedVersion, ModelRepository

__all__ = [
    "Batcher",
    "Batching",
    "LoadedVersion",
    "ModelRepository",
    "OverloadedError",
    "PredictionLog",
    "PredictionSink",
    "Routing",
    "create_app",
    "read_predictions",
    "settle",
]
