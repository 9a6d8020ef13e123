"""Error answers: ``application/problem+json`` (RFC 9457) with the protocol's ``error`` member.

One builder for every route, FastAPI's and the plain ASGI infer path's alike, so a client sees
the same body for the same mistake wherever it makes it.
"""

from __future__ import annotations

import json
from typing import Any

from couturier.errors import CouturierError

__all__ = ["PROBLEM", "answer", "problem", "problem_bytes", "validation_problem"]

PROBLEM = "application/problem+json"
Answer = tuple[int, list[tuple[bytes, bytes]], bytes]


def problem(status: int, title: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": f"https://couturier.dev/errors/{title}",
        "title": title,
        "status": status,
        "detail": detail,
        "error": detail,  # the Open Inference Protocol's error member (KServe, tritonclient)
        **extra,
    }


def answer(body: dict[str, Any], headers: list[tuple[bytes, bytes]] | None = None) -> Answer:
    """Status, headers and bytes of a problem body."""
    return (
        body["status"],
        [(b"content-type", PROBLEM.encode()), *(headers or [])],
        json.dumps(body, separators=(",", ":")).encode(),
    )


def problem_bytes(exc: CouturierError | None, *, status: int | None = None) -> Answer:
    """Status, headers and body for ``exc`` (None: an unexpected failure, already logged)."""
    if exc is None:
        return answer(problem(500, "InternalError", "the server failed; the error was logged"))
    described = exc.to_problem()
    extra = {k: v for k, v in described.items() if k not in ("type", "title", "status", "detail")}
    body = problem(status or exc.http_status, described["title"], exc.message, **extra)
    retry_after = getattr(exc, "retry_after", None)
    headers = (
        [] if retry_after is None else [(b"retry-after", str(max(1, round(retry_after))).encode())]
    )
    return answer(body, headers)


def validation_problem(errors: list[Any]) -> Answer:
    """The first schema error of a request body (pydantic's ``errors()``), as a 422."""
    first = errors[0] if errors else {"loc": (), "msg": "invalid"}
    where = ".".join(str(p) for p in first["loc"] if p != "body") or "body"
    return answer(
        problem(
            422,
            "InvalidInputError",
            f"{where}: {first['msg']}; see the request schema at /docs",
            field=where,
        )
    )
