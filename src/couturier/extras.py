"""Optional extras: heavy dependencies that only some layers or domains need.

The platform (settings, marketplace, features, registry, serving, the CLI) installs and runs
without them; what needs one imports it through :func:`require`, which fails with the exact
install command instead of a bare ``ModuleNotFoundError``.

=============  ======================================  =========================================
extra          installs                                needed by
=============  ======================================  =========================================
retrieval      faiss-cpu                               ``couturier.retrieval`` (vector search)
authentication torch, lightgbm, onnxmltools, faiss     the authentication domain's recipe and
                                                       service
discovery      lightgbm, implicit, bm25s, MiniLM       the discovery domain's recipe and service
pricing        lightgbm, onnxmltools, mapie            the pricing domain's recipe
pipelines      dagster, dagster-webserver              ``couturier.pipelines``, ``couturier
                                                       replay``, the demo's pipeline runs
tier           ray[serve]                              ``couturier.serving.ray_tier`` (a model's
                                                       own autoscaled tier)
=============  ======================================  =========================================

``make demo`` and ``make test`` install every extra (``requirements.lock``).

>>> faiss = require("faiss", extra="retrieval", purpose="vector search")   # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from types import ModuleType

from couturier.errors import MissingExtraError

__all__ = ["require"]


def require(module: str, *, extra: str, purpose: str) -> ModuleType:
    """Import ``module``, or fail naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"{purpose} needs the Python package {module!r}, which is not installed; install "
            f"the {extra!r} extra: pip install 'couturier[{extra}]'",
            module=module,
            extra=extra,
        ) from exc
