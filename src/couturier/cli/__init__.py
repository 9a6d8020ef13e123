"""The ``couturier`` command line. ``couturier --help`` lists the commands."""

from couturier.cli import (  # noqa: F401 - register commands
    _db,
    _deploy,
    _features,
    _models,
    _monitor,
    _pipelines,
    _plan,
    _replay,
    _serve,
    _simulate,
)
from couturier.cli._app import add_domain_commands, app, main

add_domain_commands()

__all__ = ["app", "main"]
