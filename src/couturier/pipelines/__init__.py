"""Pipelines: each domain's stages as Dagster assets, at each domain's cadence.

A domain declares *when* (:class:`Cadence`, :class:`Retrain`); this layer builds the assets
(feature tables, each retraining's model and promotion, daily monitoring partitions), the
jobs, the schedules and the sensor that retrains on persisted alerts. Dagster itself is
imported only by :func:`build_definitions` and the modules behind it, so declaring a cadence
costs a domain nothing.

>>> from couturier.pipelines import Cadence, Retrain
>>> Cadence(retrain=(Retrain("model", "0 3 * * *"),)).materialize
'0 * * * *'
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from couturier.pipelines._sensor import RetrainRequest, retrain_requests
from couturier.pipelines._spec import Cadence, Retrain

if TYPE_CHECKING:
    from couturier.pipelines._definitions import build_definitions, job_names
    from couturier.pipelines._resource import CouturierResource
    from couturier.pipelines._run import local_instance, run_job

__all__ = [
    "Cadence",
    "CouturierResource",
    "Retrain",
    "RetrainRequest",
    "build_definitions",
    "job_names",
    "local_instance",
    "retrain_requests",
    "run_job",
]

_LAZY = {
    "build_definitions": "couturier.pipelines._definitions",
    "job_names": "couturier.pipelines._definitions",
    "CouturierResource": "couturier.pipelines._resource",
    "local_instance": "couturier.pipelines._run",
    "run_job": "couturier.pipelines._run",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from importlib import import_module

        from couturier.extras import require

        require("dagster", extra="pipelines", purpose="the pipelines layer")
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'couturier.pipelines' has no attribute {name!r}")
