"""Serving: registered ONNX models over HTTP, speaking the Open Inference Protocol.

>>> repo = ModelRepository.from_registry(ModelRegistry(settings))     # doctest: +SKIP
>>> app = create_app(repo, domains=load_domains().values(), ...)        # doctest: +SKIP

Domains plug in through :class:`ServiceContext`: their routes follow the registry's champion
and canary moves like the Open Inference Protocol routes (:class:`Followed`).

``couturier serve`` runs it under Granian (``couturier.serving.server``).
"""

from couturier.serving._app import Routing, create_app
from couturier.serving._batching import Batcher, Batching, OverloadedError
from couturier.serving._context import ServiceContext
from couturier.serving._decisions import LatestDecisions
from couturier.serving._follow import Followed, Follower, Served
from couturier.serving._metrics import Metrics
from couturier.serving._predictions import (
    PredictionLog,
    PredictionSink,
    read_predictions,
    settle,
)
from couturier.serving._remote import RemoteAnswer, RemoteModel, RemoteModelError
from couturier.serving._repository import LoadedVersion, ModelRepository
from couturier.serving._thread import serve_in_thread

__all__ = [
    "Batcher",
    "Batching",
    "Followed",
    "Follower",
    "LatestDecisions",
    "LoadedVersion",
    "Metrics",
    "ModelRepository",
    "OverloadedError",
    "PredictionLog",
    "PredictionSink",
    "RemoteAnswer",
    "RemoteModel",
    "RemoteModelError",
    "Routing",
    "Served",
    "ServiceContext",
    "create_app",
    "read_predictions",
    "serve_in_thread",
    "settle",
]
