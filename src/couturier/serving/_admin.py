"""Admin routes: what an operator changes on a running server, behind a bearer token.

    GET  /admin/models/{name}                      loaded versions, roles, batching limits
    PUT  /admin/models/{name}/batching             change batching limits now (no restart)
    POST /admin/models/{name}/reload               load the registry's alias now (hot swap)
    PUT  /admin/models/{name}/aliases/{alias}      move an alias in the registry (logged with
                                                   the reason), then load it here at once

Every route needs ``Authorization: Bearer <COUTURIER_ADMIN_TOKEN>``. Without a configured
token the routes answer 403 (they are off), with a missing or wrong token 401; the token is
compared in constant time. Alias moves go through the registry, so its gates, its promotion
log and every other replica (which follow the log) see them: this server holds no state of
its own that another replica would miss.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from couturier.errors import ConflictError, ForbiddenError, UnauthorizedError

if TYPE_CHECKING:
    from couturier.registry import ModelRegistry
    from couturier.serving._batching import Batching
    from couturier.serving._repository import ModelRepository

__all__ = ["admin_router"]

Role = Literal["champion", "canary", "shadow"]


class BatchingUpdate(BaseModel):
    """Only the limits given change."""

    model_config = ConfigDict(extra="forbid")

    max_batch: int | None = Field(default=None, ge=1, le=4096)
    max_wait_ms: float | None = Field(default=None, ge=0, le=1000)
    max_queue: int | None = Field(default=None, ge=0)
    max_queue_ms: float | None = Field(default=None, gt=0)


class Reload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role = "champion"


class AliasMove(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int | None = Field(
        default=...,
        ge=1,
        le=2**31 - 1,  # the promotion log stores versions as 32-bit integers
        description="the version to point at; null removes the alias",
    )
    reason: str = Field(min_length=1, description="why, for the promotion log")
    actor: str = Field(default="admin-api", min_length=1)


def admin_router(  # noqa: C901 - a factory of route closures: mccabe counts every route in it
    repository: ModelRepository,
    batching: Callable[[str], Batching],
    token: str | None,
    registry: Callable[[], ModelRegistry] | None,
    threads: int | None = None,
) -> APIRouter:
    def authorized(request: Request) -> None:
        if not token:
            raise ForbiddenError(
                "admin routes are off: no admin token is configured; set COUTURIER_ADMIN_TOKEN "
                "and restart the server"
            )
        given = request.headers.get("authorization", "")
        scheme, _, value = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(value.encode(), token.encode()):
            raise UnauthorizedError(
                "this route needs the header Authorization: Bearer <COUTURIER_ADMIN_TOKEN>; "
                "the token given is missing or wrong"
            )

    api = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(authorized)])

    def describe(name: str) -> dict[str, Any]:
        default = repository.get(name)
        limits = batching(name)
        return {
            "name": name,
            "default_version": default.version,
            "loaded_versions": repository.versions(name),
            "roles": {
                role: (v.version if (v := repository.role(name, role)) else None)
                for role in repository.ROLES
            },
            "batching": {
                "max_batch": limits.max_batch,
                "max_wait_ms": limits.max_wait_ms,
                "max_queue": limits.max_queue,
                "max_queue_ms": limits.max_queue_ms,
            },
        }

    def open_registry() -> ModelRegistry:
        if registry is None:
            raise ConflictError(
                "this server was started without a registry (it serves files); restart it "
                "with `couturier serve` to reload or move aliases"
            )
        return registry()

    @api.get("/models/{name}")
    async def model(name: str) -> dict[str, Any]:
        return describe(name)

    @api.put("/models/{name}/batching")
    async def set_batching(name: str, update: BatchingUpdate) -> dict[str, Any]:
        repository.get(name)  # 404 for a model that is not loaded
        limits = batching(name)
        changes = update.model_dump(exclude_none=True)
        for field, value in changes.items():
            setattr(limits, field, value)
        for loaded in repository.loaded(name):  # the live batchers change at once
            if loaded.batcher is not None:
                for field, value in changes.items():
                    setattr(loaded.batcher, field, value)
        return describe(name)

    def reload_now(name: str, role: str) -> str | None:
        opened = open_registry()
        try:
            return repository.reload(opened, name, role, threads)
        finally:
            opened.close()

    @api.post("/models/{name}/reload")
    async def reload(name: str, body: Reload) -> dict[str, Any]:
        problem = await asyncio.to_thread(reload_now, name, body.role)
        if problem is not None:
            raise ConflictError(f"{name} {body.role} was not swapped in: {problem}", model=name)
        return describe(name)

    @api.put("/models/{name}/aliases/{alias}")
    async def move_alias(name: str, alias: Role, body: AliasMove) -> dict[str, Any]:
        def move() -> dict[str, Any]:
            opened = open_registry()
            try:
                if body.version is None:
                    event = opened.clear_alias(name, alias, actor=body.actor, reason=body.reason)
                else:
                    event = opened.promote(
                        name, body.version, alias, actor=body.actor, reason=body.reason
                    )
                problem = repository.reload(opened, name, alias, threads)
            finally:
                opened.close()
            return {
                "event": None if event is None else event.id,
                "problem": problem,
            }

        moved = await asyncio.to_thread(move)
        return {**describe(name), **moved}

    return api
