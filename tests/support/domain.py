"""A small domain for testing the platform's domain seam: ``POST /v1/toy/score`` scores rows
with whatever version of the registered toy model the registry names champion (or canary)."""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import APIRouter, Request

from couturier.domain import Domain
from couturier.errors import InvalidInputError
from couturier.registry import ModelRegistry, session
from couturier.serving import ServiceContext

__all__ = ["TOY_MODEL", "toy_domain"]

TOY_MODEL = "toy-graph"


def _load(registry: ModelRegistry, version: int) -> Any:
    return session(registry.load(TOY_MODEL, version).onnx_model)


def _check(sess: Any) -> str | None:
    (p,) = sess.run(["probabilities"], {"X": np.zeros((1, 4), np.float32)})
    return None if np.isfinite(p).all() else "not finite on zeros"


def _service(context: ServiceContext) -> APIRouter:
    models = context.follow(TOY_MODEL, _load, check=_check)
    sink = context.predictions("toy")
    api = APIRouter(tags=["toy"])

    @api.post("/v1/toy/score", summary="Score rows with the toy model")
    async def score(http: Request) -> dict[str, Any]:
        served = models.pick()
        body = await http.json()
        if "x" not in body:
            raise InvalidInputError("the body needs x: rows of 4 numbers", field="x")
        x = np.asarray(body["x"], np.float32)
        (p,) = served.value.run(["probabilities"], {"X": x})
        answer = {"version": served.version, "role": served.role, "p": p[:, 1].tolist()}
        await sink.append(answer)
        return answer

    return api


def toy_domain(service: Any = _service, name: str = "toy") -> Domain:
    """The toy domain, or one with another ``service`` (to break a rule on purpose)."""
    return Domain(name=name, description="scores rows with a toy model", service=service)
