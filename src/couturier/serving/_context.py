"""The seam between the server and a domain: what a domain's ``service`` hook is handed.

A domain never builds its own registry client, metrics or prediction log, and never loads its
models once at start-up: it asks the context to :meth:`~ServiceContext.follow` a registered
model, so its routes swap champions and canaries exactly like the Open Inference Protocol
routes, and answer 503 until a champion exists.

>>> def service(context: ServiceContext) -> APIRouter:                     # doctest: +SKIP
...     graphs = context.follow("authentication", AuthenticationGraph.from_registry)
...     sink = context.predictions("authentication")
...     return router(graphs, sink, context.metrics)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from couturier.registry import ModelRegistry
from couturier.serving._decisions import LatestDecisions
from couturier.serving._follow import Followed
from couturier.serving._metrics import Metrics
from couturier.serving._predictions import PredictionLog, PredictionSink
from couturier.serving._remote import RemoteModel
from couturier.settings import Settings

if TYPE_CHECKING:
    from fastapi import APIRouter

__all__ = ["Mountable", "ServiceContext"]

T = TypeVar("T")


class Mountable(Protocol):
    """What the server mounts: a named service hook (``couturier.domain.Domain`` is one).
    Serving depends on this shape, not on the domain module."""

    @property
    def name(self) -> str: ...

    @property
    def service(self) -> Callable[[ServiceContext], APIRouter] | None: ...

    @property
    def pages(self) -> Callable[[ServiceContext], APIRouter] | None: ...


@dataclass
class ServiceContext:
    """Settings, registry, metrics, prediction sinks and alias following, for one server.

    ``registry`` is for reads while the service mounts (in the mounting thread); following
    happens on the server's follower thread with a client of its own. ``sinks`` makes the
    prediction sink of a stream name (default: an append-only :class:`PredictionLog` under
    ``$COUTURIER_HOME/predictions/<stream>``).
    """

    settings: Settings
    registry: ModelRegistry
    metrics: Metrics
    sinks: Callable[[str], PredictionSink] | None = None
    canary_share: float = 0.1
    seed: int | None = None
    #: called on every swap a followed model makes (the server counts them in its metrics)
    on_swap: Callable[[str, str, int | None, str | None], None] | None = None
    followed: list[Followed[Any]] = field(default_factory=list)
    #: the time a prediction is logged at: the wall clock, or a simulated one in a replay
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    #: the clients of models served on a tier of their own (:meth:`remote`)
    remotes: dict[str, RemoteModel] = field(default_factory=dict)

    def follow(
        self,
        model: str,
        load: Callable[[ModelRegistry, int], T],
        *,
        check: Callable[[T], str | None] | None = None,
    ) -> Followed[T]:
        """Serve ``model``'s champion (and canary) as ``load(registry, version)`` builds them.

        What the registry holds now is loaded before this returns; later moves are followed by
        the server. ``check`` runs on each loaded object: a reason returned refuses the swap.
        """
        followed = Followed(
            model,
            load,
            check=check,
            canary_share=self.canary_share,
            seed=self.seed,
            on_swap=self.on_swap,
        )
        followed.load_current(self.registry)
        self.followed.append(followed)
        return followed

    def predictions(self, stream: str) -> PredictionSink:
        """The prediction sink of ``stream`` (every answer goes in before it is sent)."""
        if self.sinks is not None:
            return self.sinks(stream)
        folder = self.settings.paths.predictions / stream
        return PredictionLog(folder, fsync=self.settings.predictions_fsync)

    def decisions(
        self,
        stream: str,
        *,
        key: str,
        fields: Sequence[str] = ("decision", "at"),
        keep: Callable[[dict[str, Any]], bool] | None = None,
    ) -> LatestDecisions:
        """The newest answer per ``key`` in a prediction stream (see :class:`LatestDecisions`;
        ``keep``: only the answers it accepts): how one domain consumes another's decisions."""
        return LatestDecisions(
            self.settings.paths.predictions / stream, key=key, fields=fields, keep=keep
        )

    def remote(self, model: str) -> RemoteModel | None:
        """The client of ``model`` on its own tier when ``COUTURIER_REMOTE_MODELS`` names a
        server for it, else None (the model runs in process). One client, and so one circuit
        breaker, per model and server."""
        url = self.settings.remote_models.get(model)
        if url is None:
            return None
        if model not in self.remotes:
            self.remotes[model] = RemoteModel(
                model,
                url,
                timeout_s=self.settings.remote_timeout_ms / 1000,
                breaker_failures=self.settings.remote_breaker_failures,
                breaker_reset_s=self.settings.remote_breaker_reset_s,
            )
        return self.remotes[model]

    def problems(self) -> dict[str, str]:
        """Why a followed model is not serving what the registry says, by model."""
        return {f.model: f.problem for f in self.followed if f.problem}
