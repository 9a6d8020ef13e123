"""Every error couturier raises on purpose, with its context and its HTTP status.

The hierarchy::

    CouturierError                      500  the base class, never raised itself
    ├── InvalidInputError               422  a value broke a rule: field, rule and fix
    │   ├── InvalidParameterError       422  an impossible parameter (count, rate, scenario name)
    │   └── PayloadTooLargeError        413  a request body over the server's limit
    ├── UnauthorizedError               401  an admin route without the right token
    ├── ForbiddenError                  403  an admin route while admin routes are off
    ├── NotFoundError                   404  an unknown model, version, alias, run or entity
    ├── ConflictError                   409  the request fits the rules but not the current state
    ├── SettingsError                   500  misconfigured: a missing or bad variable
    ├── MissingExtraError               500  an optional extra is not installed: the pip command
    └── DependencyUnavailableError      503  a store or server the request needs is down

Messages state the value, the rule and the fix, in one line, because the CLI prints them as one
line and the HTTP layer returns them as the ``detail`` of an ``application/problem+json`` body.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ConflictError",
    "CouturierError",
    "DependencyUnavailableError",
    "ForbiddenError",
    "InvalidInputError",
    "InvalidParameterError",
    "MissingExtraError",
    "NotFoundError",
    "PayloadTooLargeError",
    "SettingsError",
    "UnauthorizedError",
]


class CouturierError(Exception):
    """Base class. ``context`` carries the fields a caller may want to act on."""

    http_status: int = 500

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(message)
        self.message = message
        self.context: dict[str, Any] = context

    def to_problem(self) -> dict[str, Any]:
        """The error as an RFC 9457 problem body (``application/problem+json``)."""
        return {
            "type": f"https://couturier.dev/errors/{type(self).__name__}",
            "title": type(self).__name__,
            "status": self.http_status,
            "detail": self.message,
            **{k: v for k, v in self.context.items() if _jsonable(v)},
        }


class InvalidInputError(CouturierError):
    """A value broke a rule. ``field`` names it."""

    http_status = 422

    def __init__(self, message: str, *, field: str, **context: Any) -> None:
        super().__init__(message, field=field, **context)
        self.field = field


class InvalidParameterError(InvalidInputError):
    """An impossible parameter: a negative count, a rate outside [0, 1], an unknown name."""


class UnauthorizedError(CouturierError):
    http_status = 401


class ForbiddenError(CouturierError):
    http_status = 403


class PayloadTooLargeError(InvalidInputError):
    """A request body over the server's limit."""

    http_status = 413


class NotFoundError(CouturierError):
    http_status = 404


class ConflictError(CouturierError):
    http_status = 409


class SettingsError(CouturierError):
    """The process cannot start as configured. ``variable`` names the environment variable."""

    def __init__(self, message: str, *, variable: str, **context: Any) -> None:
        super().__init__(message, variable=variable, **context)
        self.variable = variable


class MissingExtraError(CouturierError):
    """An optional extra is not installed. ``extra`` names it; the message has the command."""

    def __init__(self, message: str, *, module: str, extra: str, **context: Any) -> None:
        super().__init__(message, module=module, extra=extra, **context)
        self.module = module
        self.extra = extra


class DependencyUnavailableError(CouturierError):
    http_status = 503


def _jsonable(value: Any) -> bool:
    return isinstance(value, str | int | float | bool | list | dict) or value is None
