"""Shared database schema is set up once, whoever starts first, under one advisory lock.

Serving replicas, pipelines and the migration job (``couturier db upgrade``, an init container
on Kubernetes) may start at the same moment on one PostgreSQL. Two processes running the same
DDL at once fail: ``tuple concurrently updated`` on ``CREATE OR REPLACE FUNCTION``, a duplicate
key in ``pg_type`` on ``CREATE TABLE``. So every process that may create schema (the promotion
log, Feast's SQL registry) does it while holding :data:`SCHEMA_LOCK` on the server, and skips
it when the schema is already there. SQLite needs no lock here: its writers are serialized by
the database file's own lock.

>>> with schema_lock("postgresql://couturier@db:5432/couturier"):   # doctest: +SKIP
...     create_tables()
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["SCHEMA_LOCK", "is_postgres", "schema_lock"]

#: The advisory lock key every couturier process takes around schema set-up ("couturie").
SCHEMA_LOCK = 0x636F757475726965


def is_postgres(url: str) -> bool:
    return url.startswith(("postgresql://", "postgresql+", "postgres://"))


@contextmanager
def schema_lock(url: str, timeout_s: float = 120.0) -> Iterator[None]:
    """Hold the schema lock of ``url``'s PostgreSQL server for the block (SQLite: no-op).

    The lock is a session-level advisory lock on a connection of its own, released when the
    block ends (or the connection drops, if the process dies holding it).
    """
    if not is_postgres(url):
        yield
        return
    import psycopg

    dsn = "postgresql://" + url.split("://", 1)[1]
    with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
        conn.execute(f"SET lock_timeout = {int(timeout_s * 1000)}")
        conn.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK,))
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK,))
