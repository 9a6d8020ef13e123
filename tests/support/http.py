"""A real HTTP server for tests: uvicorn in a thread on a free loopback port."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

import numpy as np

from couturier.serving import serve_in_thread

__all__ = ["infer_body", "serve"]


def serve(app: Any) -> AbstractContextManager[str]:
    """Serve ``app`` (its lifespan included) until the block ends; yields its base URL."""
    return serve_in_thread(app, start_timeout_s=20)


def infer_body(x: np.ndarray, **extra: Any) -> dict[str, Any]:
    """An Open Inference Protocol request for the toy models' input ``X``."""
    return {
        "inputs": [
            {"name": "X", "shape": list(x.shape), "datatype": "FP32", "data": x.ravel().tolist()}
        ],
        **extra,
    }
