"""What every domain must honour, checked the same way for each (like scikit-learn's
``check_estimator``): every domain's tests call :func:`check_domain`.

>>> from couturier.conformance import check_domain
>>> from couturier.domains.authentication import domain
>>> check_domain(domain)                                        # doctest: +SKIP

The checks, each named in the error it raises when it fails:

* ``declaration``: a :class:`~couturier.domain.Domain` with a lower-case identifier for a name
  and a description, found through the ``couturier.domains`` entry points (when installed).
* ``features``: a feature service whose name starts with the domain's, integer join keys, and
  every field's default of its declared type (what serving falls back to in an outage).
* ``recipe``: callable as ``recipe(market, repo, registry)``.
* ``service``: mounts through a :class:`~couturier.serving.ServiceContext` on a registry with
  no champion (a fresh deployment) without raising; its routes live under ``/v1/``, clash with
  no platform route and no other domain's, and carry an OpenAPI summary; it loads its models
  through ``context.follow``; while a model it follows has no champion, every route answers
  503 ``application/problem+json`` naming it, never a 500. Every route is a plain route: a
  router included in the service's router is refused, since these checks cannot see into it.
* ``pages``: mount the same way without raising; every route lives under one prefix of the
  domain's own (``/review``), outside the API's ``/v1`` and the platform's routes, and clashes
  with no other domain's pages.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from couturier.domain import Domain, load_domains

if TYPE_CHECKING:
    from fastapi.routing import APIRoute

__all__ = ["DomainConformanceError", "check_domain"]

_PLATFORM_PREFIXES = ("/v2", "/metrics", "/admin", "/docs", "/openapi.json", "/redoc")
_TYPES: dict[str, tuple[type, ...]] = {
    "int64": (int,),
    "float64": (int, float),
    "string": (str,),
    "bool": (bool,),
}


class DomainConformanceError(AssertionError):
    """A domain broke a rule of the platform's domain seam. ``check`` names the rule."""

    def __init__(self, domain: str, check: str, message: str) -> None:
        super().__init__(f"domain {domain!r} fails {check!r}: {message}")
        self.domain = domain
        self.check = check


def check_domain(domain: Domain, *, installed: bool = True) -> None:
    """Run every check on ``domain``; raise :class:`DomainConformanceError` on the first
    broken rule. ``installed=False`` skips the entry-point check (a domain under test)."""
    _check_declaration(domain, installed)
    _check_features(domain)
    _check_recipe(domain)
    _check_service(domain)
    _check_pages(domain)


def _fail(domain: Domain, check: str, message: str) -> DomainConformanceError:
    return DomainConformanceError(getattr(domain, "name", "?"), check, message)


def _check_declaration(domain: Domain, installed: bool) -> None:
    if not isinstance(domain, Domain):
        raise _fail(domain, "declaration", f"{type(domain).__name__} is not a couturier Domain")
    if not re.fullmatch(r"[a-z][a-z0-9_]*", domain.name):
        raise _fail(domain, "declaration", "the name must be a lower-case identifier")
    if not domain.description.strip():
        raise _fail(domain, "declaration", "the description is empty")
    if installed and load_domains().get(domain.name) is not domain:
        raise _fail(
            domain,
            "declaration",
            "not found in the couturier.domains entry points; declare it in pyproject.toml "
            f'([project.entry-points."couturier.domains"] {domain.name} = "...:domain")',
        )


def _check_features(domain: Domain) -> None:
    features = domain.features
    if features is None:
        return
    if not features.service.startswith(domain.name):
        raise _fail(
            domain,
            "features",
            f"feature service {features.service!r} must start with the domain's name",
        )
    for view in features.views:
        if not view.fields:
            raise _fail(domain, "features", f"view {view.name!r} declares no field")
        for f in view.fields:
            if f.default is not None and not isinstance(f.default, _TYPES[f.dtype]):
                raise _fail(
                    domain,
                    "features",
                    f"{view.name}.{f.name}: default {f.default!r} is not a {f.dtype}",
                )


def _check_recipe(domain: Domain) -> None:
    if domain.recipe is None:
        return
    if not callable(domain.recipe):
        raise _fail(domain, "recipe", "the recipe is not callable")
    try:
        inspect.signature(domain.recipe).bind(object(), object(), object())
    except TypeError as exc:
        message = f"cannot be called as recipe(market, repo, registry): {exc}"
        raise _fail(domain, "recipe", message) from None


def _check_service(domain: Domain) -> None:
    if domain.service is None:
        return
    from fastapi import APIRouter
    from fastapi.routing import APIRoute

    from couturier.registry import ModelRegistry
    from couturier.serving import Metrics, ModelRepository, ServiceContext, create_app
    from couturier.settings import Settings

    with tempfile.TemporaryDirectory(prefix="couturier-check-") as home:
        settings = Settings(home=Path(home))
        registry = ModelRegistry(settings)
        context = ServiceContext(settings, registry, Metrics())
        try:
            router = domain.service(context)
        except Exception as exc:
            raise _fail(
                domain,
                "service",
                f"mounting with no champion raised {type(exc).__name__}: {exc}; a service "
                "must mount before its models exist and answer 503 until they do",
            ) from exc
        finally:
            registry.close()
        if not isinstance(router, APIRouter):
            raise _fail(domain, "service", f"returned {type(router).__name__}, not an APIRouter")
        _only_plain_routes(domain, "service", router)
        routes = [r for r in router.routes if isinstance(r, APIRoute)]
        if not routes:
            raise _fail(domain, "service", "its router has no route")
        _check_routes(domain, routes)
        if not context.followed:
            raise _fail(
                domain,
                "service",
                "it follows no model: load models through context.follow(model, load), so "
                "the routes follow the registry's champion and canary like /v2",
            )
        app = create_app(
            ModelRepository(),
            registry=lambda: ModelRegistry(settings),
            follow=False,
            domains=[domain],
            settings=settings,
        )
        names = [f.model for f in context.followed]
        for route in routes:
            for method in sorted((route.methods or set()) - {"HEAD", "OPTIONS"}):
                path = re.sub(r"\{[^}]+\}", "1", route.path)
                status, headers, body = asyncio.run(_call(app, method, path))
                kind = headers.get("content-type", "")
                if status != 503 or not kind.startswith("application/problem+json"):
                    raise _fail(
                        domain,
                        "service",
                        f"{method} {route.path} with no champion answered {status} {kind}; "
                        "it must answer 503 application/problem+json until a champion exists",
                    )
                detail = json.loads(body).get("detail", "")
                if not any(name in detail for name in names):
                    raise _fail(
                        domain,
                        "service",
                        f"{method} {route.path}'s 503 does not name the missing model "
                        f"({', '.join(names)}): {detail!r}",
                    )


def _only_plain_routes(domain: Domain, check: str, router: Any) -> None:
    from fastapi.routing import APIRoute

    for route in router.routes:
        if not isinstance(route, APIRoute):
            raise _fail(
                domain,
                check,
                f"its router holds a {type(route).__name__}, not a plain route (an included "
                "router?): declare every route on the router the hook returns, so they can "
                "be checked",
            )


def _check_pages(domain: Domain) -> None:
    if domain.pages is None:
        return
    routes = _mounted(domain, domain.pages, "pages")
    prefixes = {"/" + r.path.strip("/").split("/", 1)[0] for r in routes.routes}
    if len(prefixes) != 1 or not routes.routes:
        raise _fail(domain, "pages", f"its routes must share one prefix; found {sorted(prefixes)}")
    (prefix,) = prefixes
    if prefix.startswith(("/v1", *_PLATFORM_PREFIXES)):
        raise _fail(domain, "pages", f"{prefix} is the API's or the platform's; pick another")
    for other in load_domains().values():
        if other.name != domain.name and other.pages is not None:
            theirs = _mounted(other, other.pages, "pages")
            if any(r.path == prefix or r.path.startswith(prefix + "/") for r in theirs.routes):
                raise _fail(domain, "pages", f"{prefix} clashes with the {other.name} pages")


def _mounted(domain: Domain, hook: Any, check: str) -> Any:
    """``hook``'s router, mounted on a throw-away context with no champion."""
    from fastapi import APIRouter

    from couturier.registry import ModelRegistry
    from couturier.serving import Metrics, ServiceContext
    from couturier.settings import Settings

    with tempfile.TemporaryDirectory(prefix="couturier-check-") as home:
        settings = Settings(home=Path(home))
        registry = ModelRegistry(settings)
        try:
            router = hook(ServiceContext(settings, registry, Metrics()))
        except Exception as exc:
            raise _fail(
                domain, check, f"mounting with no champion raised {type(exc).__name__}: {exc}"
            ) from exc
        finally:
            registry.close()
    if not isinstance(router, APIRouter):
        raise _fail(domain, check, f"returned {type(router).__name__}, not an APIRouter")
    _only_plain_routes(domain, check, router)
    return router


def _check_routes(domain: Domain, routes: list[APIRoute]) -> None:
    others = {
        (m, r.path)
        for other in load_domains().values()
        if other.name != domain.name and other.service is not None
        for r in _declared_routes(other)
        for m in r.methods or ()
    }
    for route in routes:
        if not route.path.startswith("/v1/"):
            raise _fail(domain, "service", f"route {route.path} is not under /v1/")
        if route.path.startswith(_PLATFORM_PREFIXES):
            raise _fail(domain, "service", f"route {route.path} clashes with a platform route")
        if any((m, route.path) in others for m in route.methods or ()):
            raise _fail(domain, "service", f"route {route.path} clashes with another domain's")
        if not getattr(route, "summary", None):
            raise _fail(domain, "service", f"route {route.path} has no OpenAPI summary")


def _declared_routes(domain: Domain) -> list[APIRoute]:
    """Another domain's routes, mounted on a throw-away context."""
    from fastapi.routing import APIRoute

    if domain.service is None:
        return []
    router = _mounted(domain, domain.service, "service")
    return [r for r in router.routes if isinstance(r, APIRoute)]


async def _call(app: Any, method: str, path: str) -> tuple[int, dict[str, str], bytes]:
    """One request straight through the ASGI app: an empty JSON object as the body."""
    body = b"{}"
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"2")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    sent = False
    status = 0
    headers: dict[str, str] = {}
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            headers.update({k.decode(): v.decode() for k, v in message.get("headers", [])})
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    try:
        await app(scope, receive, send)
    except Exception:  # Starlette sends its 500 and then re-raises: the 500 is the finding
        status = status or 500
    return status, headers, b"".join(chunks)
