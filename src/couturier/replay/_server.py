"""The replay's server: ``couturier serve``'s app, in this process, on a simulated clock."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from couturier.domain import Domain
from couturier.registry import ModelRegistry
from couturier.settings import Settings

__all__ = ["SimulatedClock", "replay_server", "wait_for_champion"]


class SimulatedClock:
    """The time the server logs predictions at; the replay sets it before each request."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@contextmanager
def replay_server(
    settings: Settings, domain: Domain, clock: SimulatedClock
) -> Iterator[tuple[str, Any]]:
    """Serve ``domain`` (following the registry) until the block ends: (base URL, app)."""
    from couturier.serving import ModelRepository, create_app, serve_in_thread

    app = create_app(
        ModelRepository(),
        registry=lambda: ModelRegistry(settings),
        follow_interval_s=0.2,
        domains=[domain],
        settings=settings,
        clock=clock,
    )
    with serve_in_thread(app) as url:
        yield url, app


def wait_for_champion(app: Any, model: str, version: int, timeout_s: float = 60.0) -> None:
    """Block until the server's followed ``model`` serves ``version`` as champion."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for followed in app.state.context.followed:
            if followed.model == model and followed.versions().get("champion") == version:
                return
        time.sleep(0.05)
    raise TimeoutError(f"the server did not swap {model} to v{version} in {timeout_s:.0f} s")
