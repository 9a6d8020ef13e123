"""Time-travel replay: simulated days through features, serving, the prediction log,
monitoring, pipelines and the registry, under a retraining policy (``never``, ``scheduled``,
``triggered``). A domain takes part by declaring its :class:`Traffic`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from couturier.replay._spec import Answer, ReplayRequest, Traffic

if TYPE_CHECKING:
    from couturier.replay._replay import POLICIES, ReplayConfig, ReplayResult, run_replay

__all__ = [
    "POLICIES",
    "Answer",
    "ReplayConfig",
    "ReplayRequest",
    "ReplayResult",
    "Traffic",
    "run_replay",
]


def __getattr__(name: str) -> Any:
    if name in ("POLICIES", "ReplayConfig", "ReplayResult", "run_replay"):
        from couturier.replay import _replay

        return getattr(_replay, name)
    raise AttributeError(f"module 'couturier.replay' has no attribute {name!r}")
