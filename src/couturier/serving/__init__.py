"""Serving: registered ONNX models over HTTP, speaking the Open Inference Protocol.

>>> repo = ModelRepository.from_registry(ModelRegistry(settings))     # doctest: +SKIP
>>> app = create_app(repo, domains=load_domains().values(), ...)        # doctest: +SKIP

Domains plug in through :class:`ServiceContext`: their routes follow the registry's champion
and canary moves like the Open Inference Protocol routes (:class:`Followed`).

``couturier serve`` runs it under Granian (``couturier.serving.server``).

Its names are imported on first use (PEP 562): ``couturier.serving._infer`` alone, which the
Ray tier's replicas import, must not pull in the service, monitoring and Feast (11.6 s on this
machine, before a replica could answer).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

_EXPORTS = {
    "Routing": "couturier.serving._app",
    "create_app": "couturier.serving._app",
    "Batcher": "couturier.serving._batching",
    "Batching": "couturier.serving._batching",
    "OverloadedError": "couturier.serving._batching",
    "ServiceContext": "couturier.serving._context",
    "LatestDecisions": "couturier.serving._decisions",
    "Followed": "couturier.serving._follow",
    "Follower": "couturier.serving._follow",
    "Served": "couturier.serving._follow",
    "Metrics": "couturier.serving._metrics",
    "PredictionLog": "couturier.serving._predictions",
    "PredictionSink": "couturier.serving._predictions",
    "read_predictions": "couturier.serving._predictions",
    "settle": "couturier.serving._predictions",
    "RemoteAnswer": "couturier.serving._remote",
    "RemoteModel": "couturier.serving._remote",
    "RemoteModelError": "couturier.serving._remote",
    "LoadedVersion": "couturier.serving._repository",
    "ModelRepository": "couturier.serving._repository",
    "serve_in_thread": "couturier.serving._thread",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'couturier.serving' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once: later lookups do not come here
    return value


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
