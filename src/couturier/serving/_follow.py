"""Following the registry: one poller of the promotion log, and what follows each model.

The :class:`Follower` polls the registry's append-only promotion log and hands every alias move
to its subscribers: the :class:`~couturier.serving.ModelRepository` behind the Open Inference
Protocol routes, and one :class:`Followed` per model a domain serves. Both swap the same way: the
new version is loaded and checked off the request path, then replaces the old one in a single
reference assignment, so a request that took the old one finishes on it and no request fails.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from couturier.errors import DependencyUnavailableError
from couturier.registry import ModelRegistry, PromotionEvent

__all__ = ["Followed", "Follower", "Served"]

log = logging.getLogger("couturier.serving")
T = TypeVar("T")

#: A subscriber: called from the follower's thread, with the follower's registry client.
Handler = Callable[[ModelRegistry, PromotionEvent], None]


class Follower:
    """Polls the promotion log every ``interval_s`` and calls each handler on each move.

    Nothing is lost between what subscribers loaded and the first poll: the log's position is
    read when the follower is made, and :meth:`start` first runs each subscriber's ``sync``
    (load what the aliases name now; a no-op for what is already loaded), so a move made while
    the server was loading is applied either by the sync or by the first poll. A handler that
    raises (the registry hiccups) leaves its event to be retried on the next poll, up to
    ``retries`` times. The registry client is used from the follower's own thread only.
    """

    def __init__(self, registry: ModelRegistry, interval_s: float = 2.0, retries: int = 3) -> None:
        self.registry = registry
        self.interval_s = interval_s
        self.retries = retries
        self._handlers: list[Handler] = []
        self._syncs: list[Callable[[ModelRegistry], object]] = []
        self._failures: dict[int, int] = {}  # event id -> failed attempts
        self._last = max((e.id for e in registry.events_since(0)), default=0)

    def subscribe(
        self, handler: Handler, sync: Callable[[ModelRegistry], object] | None = None
    ) -> None:
        self._handlers.append(handler)
        if sync is not None:
            self._syncs.append(sync)

    def sync(self) -> None:
        """Bring every subscriber to what the registry's aliases name now."""
        for sync in self._syncs:
            try:
                sync(self.registry)
            except Exception:  # the next move is still followed
                log.exception("could not sync with the registry at start")

    def poll(self) -> int:
        """Hand every move since the last poll to the handlers; the number of moves handled."""
        handled = 0
        for event in self.registry.events_since(self._last):
            failed = False
            for handler in self._handlers:
                try:
                    handler(self.registry, event)
                except Exception:  # one subscriber's failure must not stop the others
                    log.exception("following %s %s failed", event.model, event.alias)
                    failed = True
            attempts = self._failures.get(event.id, 0) + 1 if failed else 0
            if failed and attempts < self.retries:
                self._failures[event.id] = attempts
                break  # retried on the next poll (reloads are idempotent)
            self._failures.pop(event.id, None)
            self._last = event.id
            handled += 1
        return handled

    def start(self) -> threading.Event:
        """Sync, then poll in a daemon thread until the returned event is set."""
        self.sync()
        stop = threading.Event()

        def loop() -> None:
            while not stop.wait(self.interval_s):
                try:
                    self.poll()
                except Exception:  # the registry is down: keep serving what is loaded
                    log.warning("registry unreachable; serving the loaded versions")

        threading.Thread(target=loop, name="couturier-follow", daemon=True).start()
        return stop


@dataclass(frozen=True)
class Served(Generic[T]):
    """What one request runs on: the loaded object, its version and the role it holds."""

    value: T
    version: int
    role: str  # champion or canary


class Followed(Generic[T]):
    """A domain's view of one registered model: its champion and canary, loaded by the
    domain's ``load(registry, version)`` and swapped when the registry moves them.

    Until a champion exists (or while none could be loaded), :meth:`pick` raises
    :class:`~couturier.errors.DependencyUnavailableError`, which the server answers with a 503
    problem body naming what is missing. ``check`` (optional) runs on a freshly loaded object
    and returns why it must not serve, or None; a version that fails it never answers.
    """

    ROLES = ("champion", "canary")

    def __init__(
        self,
        model: str,
        load: Callable[[ModelRegistry, int], T],
        *,
        check: Callable[[T], str | None] | None = None,
        canary_share: float = 0.1,
        seed: int | None = None,
        on_swap: Callable[[str, str, int | None, str | None], None] | None = None,
    ) -> None:
        self.model = model
        self._load = load
        self._check = check
        self.canary_share = canary_share
        self._rng = random.Random(seed)
        self._on_swap = on_swap
        self._served: dict[str, Served[T]] = {}
        self.problem: str | None = None  # why the champion is not what the registry says

    @classmethod
    def fixed(cls, model: str, value: T, version: int) -> Followed[T]:
        """A champion that never moves (tests, benchmarks, a service run without a registry)."""
        followed: Followed[T] = cls(model, lambda registry, number: value)
        followed._served = {"champion": Served(value, version, "champion")}
        return followed

    # ---- the request path -------------------------------------------------------------------
    def pick(self) -> Served[T]:
        """The champion, or the canary for ``canary_share`` of calls. One dict read each: a
        swap never hands a request half of one version and half of another."""
        served = self._served
        canary = served.get("canary")
        if canary is not None and self._rng.random() < self.canary_share:
            return canary
        champion = served.get("champion")
        if champion is None:
            why = f" ({self.problem})" if self.problem else ""
            raise DependencyUnavailableError(
                f"model {self.model!r} has no champion loaded{why}; register a version and "
                f"promote it (couturier models promote {self.model} VERSION), then retry",
                model=self.model,
            )
        return champion

    def versions(self) -> dict[str, int]:
        """The version each role (champion, canary) serves now."""
        return {role: served.version for role, served in self._served.items()}

    # ---- following ----------------------------------------------------------------------------
    def load_current(self, registry: ModelRegistry) -> None:
        """Load what the registry's champion and canary aliases point to now (at mount)."""
        for role in self.ROLES:
            self.reload(registry, role)

    def handle(self, registry: ModelRegistry, event: PromotionEvent) -> None:
        """A :class:`Follower` handler: reload on moves of this model's champion or canary."""
        if event.model == self.model and event.alias in self.ROLES:
            self.reload(registry, event.alias)

    def reload(self, registry: ModelRegistry, role: str) -> str | None:
        """Load the registry's ``role`` version and swap to it; the problem if it could not."""
        number = registry.alias_version(self.model, role)
        current = self._served.get(role)
        if number is None:
            if role == "canary" and current is not None:
                self._set(role, None)
                self._record(role, None, None)
            return None
        if current is not None and current.version == number:
            return None
        try:
            value = self._load(registry, number)
            problem = self._check(value) if self._check is not None else None
        except Exception as exc:  # a version that cannot load is a refused swap, not a crash
            problem = f"version {number} could not be loaded: {type(exc).__name__}: {exc}"
        if problem is None:
            self._set(role, Served(value, number, role))
        else:
            log.warning("%s v%s not swapped in as %s: %s", self.model, number, role, problem)
        if role == "champion":
            self.problem = None if problem is None else f"v{number}: {problem}"
        self._record(role, number, problem)
        return problem

    def _set(self, role: str, served: Served[T] | None) -> None:
        updated = dict(self._served)  # copy, then one assignment: readers see old or new
        if served is None:
            updated.pop(role, None)
        else:
            updated[role] = served
        self._served = updated

    def _record(self, role: str, version: int | None, problem: str | None) -> None:
        if self._on_swap is not None:
            self._on_swap(self.model, role, version, problem)
