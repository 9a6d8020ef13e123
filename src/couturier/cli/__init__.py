"""The ``couturier`` command line. ``couturier --help`` lists the commands."""

from couturier.cli._app import app, main

__all__ = ["app", "main"]
