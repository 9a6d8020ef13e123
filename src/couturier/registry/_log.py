"""The append-only promotion log, and the lock that keeps it and the aliases consistent.

MLflow keeps where an alias points now, not where it pointed before, nor who moved it or why.
This log keeps every move: who, when, why, from which version to which, with the evidence.
It lives in SQLite beside the local MLflow store, or in the production PostgreSQL, so every
replica and pipeline reads the same history. Triggers refuse UPDATE and DELETE: the log is
append-only in the database itself, not only in this code. Each move runs inside
:meth:`PromotionLog.exclusive` (SQLite ``BEGIN IMMEDIATE``; PostgreSQL advisory lock), so two
concurrent promotions are serialized and the log's order is the aliases' order.

Its schema is created by whichever process comes first, under the platform's schema lock
(:mod:`couturier.schema`), so replicas that start together never race on the DDL.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from couturier.registry.types import PromotionEvent
from couturier.schema import schema_lock

__all__ = ["PromotionLog", "upgrade_schema"]

_meta = sa.MetaData()
_log = sa.Table(
    "couturier_promotion_log",
    _meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("model", sa.String(256), nullable=False, index=True),
    sa.Column("alias", sa.String(64), nullable=False),
    sa.Column("from_version", sa.Integer, nullable=True),
    sa.Column("to_version", sa.Integer, nullable=True),
    sa.Column("actor", sa.String(256), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("at", sa.String(40), nullable=False),  # ISO 8601 UTC: sortable, portable
    sa.Column("details", sa.Text, nullable=False),
)

_SQLITE_TRIGGERS = [
    """CREATE TRIGGER IF NOT EXISTS couturier_promotion_log_no_update
       BEFORE UPDATE ON couturier_promotion_log
       BEGIN SELECT RAISE(ABORT, 'the promotion log is append-only'); END""",
    """CREATE TRIGGER IF NOT EXISTS couturier_promotion_log_no_delete
       BEFORE DELETE ON couturier_promotion_log
       BEGIN SELECT RAISE(ABORT, 'the promotion log is append-only'); END""",
]
_PG_TRIGGER = [
    """CREATE OR REPLACE FUNCTION couturier_promotion_log_append_only() RETURNS trigger AS $$
       BEGIN RAISE EXCEPTION 'the promotion log is append-only'; END; $$ LANGUAGE plpgsql""",
    """DO $$ BEGIN
         IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'couturier_promotion_log_ro')
         THEN CREATE TRIGGER couturier_promotion_log_ro
              BEFORE UPDATE OR DELETE ON couturier_promotion_log
              FOR EACH ROW EXECUTE FUNCTION couturier_promotion_log_append_only();
         END IF; END $$""",
]


class PromotionLog:
    def __init__(self, url: str, *, create: bool = True) -> None:
        self.url = url
        self.engine: Engine = sa.create_engine(url, future=True)
        self.dialect = self.engine.dialect.name
        if self.dialect == "sqlite":
            # let SQLAlchemy's pysqlite driver leave transactions to us (BEGIN IMMEDIATE)
            @sa.event.listens_for(self.engine, "connect")
            def _no_autobegin(dbapi_conn: Any, _: Any) -> None:
                dbapi_conn.isolation_level = None
                dbapi_conn.execute("PRAGMA busy_timeout = 30000")

            @sa.event.listens_for(self.engine, "begin")
            def _begin_immediate(conn: Connection) -> None:
                conn.exec_driver_sql("BEGIN IMMEDIATE")

        if create and not self.schema_ready():
            self.upgrade()

    def schema_ready(self) -> bool:
        """Whether the table and its append-only triggers exist (a read; no lock, no DDL)."""
        with self.engine.connect() as conn:
            if not sa.inspect(conn).has_table(_log.name):
                return False
            if self.dialect == "postgresql":
                found = (
                    "SELECT count(*) FROM pg_trigger WHERE tgname = 'couturier_promotion_log_ro'"
                )
                expected = 1
            else:
                found = "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name LIKE "
                found += "'couturier_promotion_log_no_%'"
                expected = len(_SQLITE_TRIGGERS)
            return int(conn.exec_driver_sql(found).scalar_one()) >= expected

    def upgrade(self) -> None:
        """Create the table and its triggers if missing, under the schema lock (idempotent)."""
        with schema_lock(self.url), self.engine.begin() as conn:
            _meta.create_all(conn)
            for ddl in _SQLITE_TRIGGERS if self.dialect == "sqlite" else _PG_TRIGGER:
                conn.exec_driver_sql(ddl)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def exclusive(self, model: str) -> Iterator[Connection]:
        """A transaction no other promotion of ``model`` runs beside."""
        with self.engine.begin() as conn:
            if self.dialect == "postgresql":
                key = zlib.crc32(model.encode())
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
            yield conn

    def append(
        self,
        conn: Connection,
        *,
        model: str,
        alias: str,
        from_version: int | None,
        to_version: int | None,
        actor: str,
        reason: str,
        details: dict[str, Any],
    ) -> int:
        at = datetime.now(UTC).isoformat(timespec="microseconds")
        result = conn.execute(
            _log.insert().values(
                model=model,
                alias=alias,
                from_version=from_version,
                to_version=to_version,
                actor=actor,
                reason=reason,
                at=at,
                details=json.dumps(details, default=str),
            )
        )
        return int(result.inserted_primary_key[0])  # type: ignore[index]

    def events(
        self, model: str | None = None, alias: str | None = None, after_id: int = 0
    ) -> list[PromotionEvent]:
        q = sa.select(_log).where(_log.c.id > after_id).order_by(_log.c.id)
        if model is not None:
            q = q.where(_log.c.model == model)
        if alias is not None:
            q = q.where(_log.c.alias == alias)
        with self.engine.connect() as conn:
            rows = conn.execute(q).mappings().all()
        return [
            PromotionEvent(
                id=r["id"],
                model=r["model"],
                alias=r["alias"],
                from_version=r["from_version"],
                to_version=r["to_version"],
                actor=r["actor"],
                reason=r["reason"],
                at=datetime.fromisoformat(r["at"]),
                details=json.loads(r["details"]),
            )
            for r in rows
        ]


def upgrade_schema(url: str) -> bool:
    """Set up the promotion log's schema at ``url`` (the migration step); True if it was
    missing and is now created, False if it was already there."""
    log = PromotionLog(url, create=False)
    try:
        existed = log.schema_ready()
        log.upgrade()
        return not existed
    finally:
        log.close()
