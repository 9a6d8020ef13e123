"""A circuit breaker around a dependency's calls: stop calling one that is down, probe it, close.

::

    closed ──(``failures`` consecutive failed calls)──> open ──(``reset_s`` later)──> half-open
      ^                                                  ^                                 │
      └───────────────(the probe call answers)───────────┴───(the probe call fails)────────┘

While open, a call fails at once, without touching the dependency: a caller degrades (the
online store's declared defaults, an answer without the remote model) in microseconds instead of
holding a worker thread for a socket timeout. Used by the online store's reader
(``features/_online.py``) and the remote model client (``serving/_remote.py``).

The state machine, its counters and its listeners are pybreaker's (``docs/decisions/
0008-online-store-timeouts-and-breaker.md``). Two things are ours:

* calls run inside ``CircuitBreaker.calling()``, not ``CircuitBreaker.call()``: ``call`` holds
  the breaker's lock for the whole call (pybreaker issue #55), so every call of the process
  would queue behind the one in flight, and behind a hung dependency's timeout; ``calling()``
  takes the lock only to decide and runs the call outside it.
* one probe at a time: pybreaker's half-open state lets every caller through; here the first
  caller after the reset interval probes and every other one fails at once until it is done.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Literal, TypeVar, cast

import pybreaker

from couturier.errors import InvalidParameterError

__all__ = ["Breaker", "BreakerOpenError", "BreakerState", "describe"]

log = logging.getLogger("couturier.breaker")

T = TypeVar("T")
BreakerState = Literal["closed", "open", "half-open"]


class BreakerOpenError(Exception):
    """The breaker refused a call without making it (open, or a probe in flight)."""


class _Recorder(pybreaker.CircuitBreakerListener):
    """Keeps the last failure (for the refusal's message) and logs every state change."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.last_failure: BaseException | None = None

    def failure(self, cb: pybreaker.CircuitBreaker, exc: BaseException) -> None:
        self.last_failure = exc

    def state_change(
        self,
        cb: pybreaker.CircuitBreaker,
        old_state: pybreaker.CircuitBreakerState | None,
        new_state: pybreaker.CircuitBreakerState,
    ) -> None:
        if new_state.name == pybreaker.STATE_OPEN:
            probe = old_state is not None and old_state.name == pybreaker.STATE_HALF_OPEN
            # a failed probe every reset interval for as long as the outage lasts: debug
            log.log(
                logging.DEBUG if probe else logging.WARNING,
                "%s: circuit open, %s (last: %s); next probe in %.3g s",
                self.name,
                "the probe call failed" if probe else f"{cb.fail_max} consecutive calls failed",
                describe(self.last_failure),
                cb.reset_timeout,
            )
        elif new_state.name == pybreaker.STATE_CLOSED and old_state is not None:
            log.warning("%s: circuit closed, it answers again", self.name)


class Breaker:
    """A circuit breaker around a dependency's calls, safe to share between threads.

    >>> breaker = Breaker("online store (redis)", failures=5, reset_s=1.0)
    >>> breaker.call(lambda: 42)
    42
    >>> breaker.state
    'closed'
    """

    def __init__(self, name: str, *, failures: int, reset_s: float) -> None:
        if isinstance(failures, bool) or not isinstance(failures, int) or failures < 1:
            raise InvalidParameterError(
                f"failures={failures!r}: the breaker opens after that many consecutive failed "
                "calls, so it must be an integer >= 1; e.g. failures=5",
                field="failures",
            )
        if not reset_s > 0:
            raise InvalidParameterError(
                f"reset_s={reset_s!r}: the seconds an open breaker waits before it probes must "
                "be positive; e.g. reset_s=1",
                field="reset_s",
            )
        self.name = name
        self._recorder = _Recorder(name)
        # throw_new_error_on_trip=False: the call that trips the breaker raises its own error,
        # so the caller's message names the real cause; CircuitBreakerError then only ever
        # means "refused without calling"
        self._breaker = pybreaker.CircuitBreaker(
            fail_max=failures,
            reset_timeout=reset_s,
            listeners=[self._recorder],
            name=name,
            throw_new_error_on_trip=False,
        )
        self._probe = threading.Lock()

    @property
    def state(self) -> BreakerState:
        """``closed`` (calls go through), ``open`` (refused at once; it stays ``open``
        past the reset interval until the next call probes) or ``half-open`` (a probe is in
        flight)."""
        return cast(BreakerState, self._breaker.current_state)

    @property
    def failures(self) -> int:
        """Consecutive failed calls that open the breaker."""
        return self._breaker.fail_max

    @property
    def reset_s(self) -> float:
        """Seconds an open breaker refuses calls before it lets one probe through."""
        return self._breaker.reset_timeout

    @property
    def last_failure(self) -> BaseException | None:
        """The error of the last failed call, or None if none failed yet."""
        return self._recorder.last_failure

    def call(self, fn: Callable[[], T]) -> T:
        """``fn()`` if the breaker lets it through: its result, or its own error.

        Raises :class:`BreakerOpenError` without calling ``fn`` while the breaker is open,
        or while another caller's probe is in flight.
        """
        if self._breaker.current_state == pybreaker.STATE_CLOSED:
            return self._guarded(fn)
        if not self._probe.acquire(blocking=False):
            raise BreakerOpenError(f"{self.name}: a probe call is in flight")
        try:
            return self._guarded(fn)
        finally:
            self._probe.release()

    def _guarded(self, fn: Callable[[], T]) -> T:
        try:
            # entering decides under pybreaker's lock (refuse, or let the call through: past
            # the reset interval the breaker turns half-open and this call is the probe);
            # the call itself runs outside the lock
            with self._breaker.calling():
                return fn()
        except pybreaker.CircuitBreakerError as exc:
            raise BreakerOpenError(f"{self.name}: {exc}") from None


def describe(exc: BaseException | None) -> str:
    """``TypeName: message`` of an error, for one-line messages."""
    return "none" if exc is None else f"{type(exc).__name__}: {exc}"
