"""The ``couturier`` command line. ``couturier --help`` lists the commands."""

from couturier.cli import _simulate  # noqa: F401 - registers its commands on the app
from couturier.cli._app import app, main

__all__ = ["app", "main"]
