"""Serving: registered ONNX models over HTTP, speaking the Open Inference Protocol.

>>> repo = ModelRepository.from_registry(ModelRegistry(settings))     # doctest: +SKIP
>>> app = create_app(repo)                                             # doctest: +SKIP

``couturier serve`` runs it with uvicorn.
"""

from couturier.serving._app import create_app
from couturier.serving._repository import LoadedVersion, ModelRepository

__all__ = ["LoadedVersion", "ModelRepository", "create_app"]
