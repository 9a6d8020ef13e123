"""The process ``couturier serve`` runs: the service over the registry, under Granian.

Granian (decision 0017: more requests a second than uvicorn on the same app here, and a
tighter p99) runs the app in a worker process that imports its target and calls it:
:func:`app_from_environment` builds the app there, from the settings and the options
:func:`run` leaves in ``COUTURIER_SERVE_OPTIONS``. :func:`run` replaces the calling process
with Granian's main process (``exec``): it keeps the pid, so SIGTERM still reaches the server
(Granian stops its worker gracefully: requests in flight are answered), and it holds none of
the modules the command line imported (about 290 MB otherwise, measured). ``server="uvicorn"``
runs the same app under uvicorn in the calling process instead.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import Any, Literal

from couturier.settings import Settings

__all__ = ["OPTIONS_VARIABLE", "app_from_environment", "build_app", "run"]

#: the environment variable that carries the options to Granian's worker
OPTIONS_VARIABLE = "COUTURIER_SERVE_OPTIONS"


def build_app(
    alias: str = "champion",
    follow: bool = True,
    canary_share: float = 0.1,
    say: Callable[[str], None] = print,
) -> Any:
    """The service over every registered model's ``alias``, with every domain mounted."""
    from couturier.domain import load_domains
    from couturier.registry import ModelRegistry
    from couturier.serving._app import Routing, create_app
    from couturier.serving._predictions import PredictionLog
    from couturier.serving._repository import ModelRepository

    settings = Settings.load()
    registry = ModelRegistry(settings)
    try:
        repository = ModelRepository.from_registry(registry, alias=alias)
    finally:
        registry.close()
    loaded = ", ".join(f"{n} v{repository.get(n).version}" for n in repository.names())
    say(f"serving {loaded or 'no models yet (register one first)'}")
    for name, problem in repository.problems.items():
        say(f"not serving {name}: {problem}")
    domains = list(load_domains().values())
    app = create_app(
        repository,
        expected=repository.names(),
        registry=lambda: ModelRegistry(settings),
        follow=follow,
        domains=domains,
        settings=settings,
        routing=Routing(canary_share=canary_share),
        admin_token=settings.admin_token,
        shadow_log=PredictionLog(
            settings.paths.predictions / "shadow", fsync=settings.predictions_fsync
        ),
    )
    say(f"domains mounted: {', '.join(d.name for d in domains if d.service) or 'none'}")
    return app


def app_from_environment() -> Any:
    """Granian's factory: the app, built in Granian's worker from ``OPTIONS_VARIABLE``."""
    return build_app(**json.loads(os.environ[OPTIONS_VARIABLE]))


def run(
    host: str,
    port: int,
    options: dict[str, Any],
    server: Literal["granian", "uvicorn"] = "granian",
) -> None:
    """Serve until SIGTERM. Under Granian this never returns: the process becomes Granian."""
    if server == "uvicorn":
        import uvicorn

        uvicorn.run(build_app(**options), host=host, port=port, log_level="warning")
        return
    os.environ[OPTIONS_VARIABLE] = json.dumps(options)
    sys.stdout.flush()
    sys.stderr.flush()
    command = [sys.executable, "-m", "granian", "--interface", "asgi", "--factory"]
    command += ["--host", host, "--port", str(port), "--workers", "1", "--loop", "uvloop"]
    command += ["--no-ws", "--log-level", "warning", f"{__name__}:app_from_environment"]
    os.execv(sys.executable, command)
