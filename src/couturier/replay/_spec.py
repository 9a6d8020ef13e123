"""What a domain tells the replay: the requests a simulated day makes, and how good the
answers were against the simulator's truth."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from couturier.marketplace import Marketplace

__all__ = ["Answer", "ReplayRequest", "Traffic"]


@dataclass(frozen=True)
class ReplayRequest:
    """One request of the day: ``json`` POSTed to ``path`` at simulated time ``at``."""

    path: str
    json: dict[str, Any]
    at: datetime
    key: int


@dataclass(frozen=True)
class Answer:
    request: ReplayRequest
    status: int
    body: dict[str, Any]


@dataclass(frozen=True)
class Traffic:
    """``requests(market, start, end)``: the requests of the events that arrived in
    ``[start, end)`` (``market`` is seen as of ``end``). ``outcome(market, answers)``: the
    day's quality measured with the simulator's truth (a replay-only view: served models never
    see the truth). ``model``: the registered model whose versions the answers come from."""

    model: str
    requests: Callable[[Marketplace, datetime, datetime], Iterator[ReplayRequest]]
    outcome: Callable[[Marketplace, Sequence[Answer]], dict[str, float]]
