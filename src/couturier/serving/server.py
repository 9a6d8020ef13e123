"""The process ``couturier serve`` runs: the service over the registry, under Granian.

Granian (decision 0017: more requests a second than uvicorn on couturier's app here, by less
than one round's noise) runs the app in a worker process that imports its target and calls it:
:func:`app_from_environment` builds the app there, from the settings and the options
:func:`run` leaves in ``COUTURIER_SERVE_OPTIONS``. :func:`run` replaces the calling process
with Granian's main process (``exec``): it keeps the pid, so SIGTERM still reaches the server
(Granian stops its worker gracefully: requests in flight are answered, for at most
``KILL_TIMEOUT_S``), and it holds none of the modules the command line imported (412 MB of
proportional memory otherwise, measured). ``server="uvicorn"`` runs the same app under uvicorn
in the calling process instead.

Granian reads ``GRANIAN_*`` environment variables as options too; the command line given here
wins over them.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import os
import socket
import sys
from collections.abc import Callable
from typing import Any, Literal

from couturier.errors import CouturierError, InvalidParameterError
from couturier.settings import Settings

__all__ = ["KILL_TIMEOUT_S", "OPTIONS_VARIABLE", "app_from_environment", "build_app", "run"]

#: the environment variable that carries the options to Granian's worker
OPTIONS_VARIABLE = "COUTURIER_SERVE_OPTIONS"
#: how long Granian waits for its worker to finish the requests in flight after SIGTERM (the
#: deployment's terminationGracePeriodSeconds is the other bound)
KILL_TIMEOUT_S = 30


def build_app(
    alias: str = "champion",
    follow: bool = True,
    canary_share: float = 0.1,
    say: Callable[[str], None] | None = None,
) -> Any:
    """The service over every registered model's ``alias``, with every domain mounted. ``say``
    prints what it serves (default: print, flushed: a worker's stdout is often a pipe)."""
    say = say or functools.partial(print, flush=True)
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
    """Granian's factory: the app, built in Granian's worker from ``OPTIONS_VARIABLE``. A
    failure the platform names (a registry out of reach, say) is one line, then exit 2."""
    try:
        return build_app(**json.loads(os.environ.get(OPTIONS_VARIABLE, "{}")))
    except CouturierError as exc:
        print(f"error: {exc.message}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None


def listen_address(host: str) -> str:
    """``host`` as an IP address: Granian binds addresses, never names (uvicorn resolved them)."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    try:
        return str(socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)[0][4][0])
    except (socket.gaierror, UnicodeError):
        raise InvalidParameterError(
            f"--host {host!r} is neither an IP address nor a name this machine resolves; "
            "pass an address such as 127.0.0.1 or 0.0.0.0",
            field="host",
        ) from None


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
    address = listen_address(host)
    os.environ[OPTIONS_VARIABLE] = json.dumps(options)
    sys.stdout.flush()
    sys.stderr.flush()
    command = [sys.executable, "-m", "granian", "--interface", "asgi", "--factory"]
    command += ["--host", address, "--port", str(port), "--workers", "1", "--loop", "uvloop"]
    command += ["--no-ws", "--log-level", "warning", "--workers-kill-timeout", str(KILL_TIMEOUT_S)]
    os.execv(sys.executable, [*command, f"{__name__}:app_from_environment"])
