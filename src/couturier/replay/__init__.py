"""Time-travel replay: simulated days through features, serving, the prediction log,
monitoring, pipelines and the registry, under a retraining policy (``never``, ``scheduled``,
``triggered``). A domain takes part by declaring its :class:`Traffic`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from couturier.replay._spec import Answer, ReplayRequest, Traffic

if TYPE_CHECKING:
    from couturier.replay._plot import plot_replays
    from couturier.replay._replay import POLICIES, ReplayConfig, ReplayResult, run_replay

__all__ = [
    "POLICIES",
    "Answer",
    "ReplayConfig",
    "ReplayRequest",
    "ReplayResult",
    "Traffic",
    "plot_replays",
    "run_replay",
]


def __getattr__(name: str) -> Any:  # the loop imports the whole stack: only when it is used
    if name in ("POLICIES", "ReplayConfig", "ReplayResult", "run_replay"):
        from couturier.replay import _replay

        return getattr(_replay, name)
    if name == "plot_replays":
        from couturier.replay import _plot

        return _plot.plot_replays
    raise AttributeError(f"module 'couturier.replay' has no attribute {name!r}")
