"""The ``couturier`` command line. ``couturier --help`` lists the commands."""

from couturier.cli import _db, _features, _models, _serve, _simulate  # noqa: F401 - register commands
from couturier.cli._app import app, main

__all__ = ["app", "main"]
