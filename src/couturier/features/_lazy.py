"""An online reader a service builds on first use, and again after a failure.

A service mounts before its domain's features are registered (a fresh deployment, a store that
is down): it must not fail to start, and it must not try to build the reader on every request
while the cause persists. Every domain's service needs exactly this, so it lives here.

>>> readers = LazyReader(lambda: open_online_reader(FEATURES, settings))  # doctest: +SKIP
>>> readers.get().get([{"listing_id": 7, ...}])                          # doctest: +SKIP
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from couturier.errors import CouturierError, DependencyUnavailableError
from couturier.features._online import OnlineReader
from couturier.features._repo import FeatureRepo
from couturier.features.types import FeatureSet
from couturier.settings import Settings

__all__ = ["LazyReader", "open_online_reader"]


def open_online_reader(features: FeatureSet, settings: Settings) -> OnlineReader:
    """An :class:`OnlineReader` of ``features`` in the store ``settings`` name; refused (and
    the repo's connections released) while the features are not registered there."""
    repo = FeatureRepo(features, settings)
    try:
        return OnlineReader(repo)
    except BaseException:
        repo.close()
        raise


class LazyReader:
    """Builds an :class:`OnlineReader` with ``open_reader`` on first use; after a failure,
    tries again at most every ``retry_s`` and meanwhile raises the same
    :class:`DependencyUnavailableError` (503) at once. Safe to share between threads: one
    build at a time, the others wait for its result. ``get`` may block: call it off the event
    loop."""

    def __init__(
        self,
        open_reader: Callable[[], OnlineReader],
        *,
        retry_s: float = 5.0,
        what: str = "the features",
    ) -> None:
        self._open = open_reader
        self.retry_s = retry_s
        self.what = what
        self._reader: OnlineReader | None = None
        self._failed: tuple[float, str] | None = None
        self._lock = threading.Lock()

    @property
    def current(self) -> OnlineReader | None:
        """The reader if it is built, without trying to build it."""
        return self._reader

    def get(self) -> OnlineReader:
        """The reader, built now if it is not yet; 503 while it cannot be built."""
        if self._reader is not None:
            return self._reader
        with self._lock:
            if self._reader is not None:
                return self._reader
            if self._failed is not None and time.monotonic() - self._failed[0] < self.retry_s:
                raise DependencyUnavailableError(self._failed[1])
            try:
                self._reader = self._open()
            except Exception as exc:  # a store or registry that is down, misconfigured, ...
                cause = exc.message if isinstance(exc, CouturierError) else repr(exc)
                why = f"{self.what} cannot be read: {cause}"
                self._failed = (time.monotonic(), why)
                raise DependencyUnavailableError(why) from exc
            return self._reader
