"""The review console's own state, in SQLite: reviewers, leases, verdicts, escalations.

The labels themselves go to the label store, the marketplace's ``verdicts`` and
``control_points`` tables (:meth:`couturier.marketplace.Marketplace.append`), where training
and monitoring read every expert's verdicts; this database keeps what only the console needs:
who may sign in, who holds which case until when, and each verdict's note and provenance.

Every replica of the server on a machine opens the same file. A write runs in one
``BEGIN IMMEDIATE`` transaction (SQLite's write lock), so two replicas never hand out one case
twice, and a form is accepted once: recording a verdict deletes the lease whose token the form
carried, in the transaction that stores the verdict. The label parts are written inside that
transaction, before its commit: when they cannot be written, nothing is stored.
"""

from __future__ import annotations

import json
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from couturier.domains.authentication.review._auth import hash_password, verify_password
from couturier.errors import ConflictError, InvalidInputError

__all__ = [
    "CONSOLE_VERDICT_BASE",
    "REVIEWER_EXPERT_BASE",
    "Lease",
    "ReviewStore",
    "Reviewer",
    "StoredVerdict",
]

Role = Literal["reviewer", "senior"]
ROLES: tuple[str, ...] = ("reviewer", "senior")
#: The console's verdict ids are drawn at random from [2^40, 2^59): far above any simulated
#: world's (they count from 0), below 2^60 so that a report's check id (verdict_id * 8 + the
#: point's index) fits in int64. Random rather than counted, so that an id is never handed out
#: twice: not after a transaction that rolled back with its labels half written, not by two
#: consoles (two homes, a database reset) writing to one label store. Two draws collide with
#: odds of ~n^2 / 2^60: one in a million after a million verdicts.
CONSOLE_VERDICT_BASE = 2**40
_CONSOLE_VERDICT_END = 2**59


def new_verdict_id() -> int:
    return CONSOLE_VERDICT_BASE + secrets.randbelow(_CONSOLE_VERDICT_END - CONSOLE_VERDICT_BASE)


#: A reviewer's ``expert_id`` in the label store: this + the reviewer's id (the simulator's
#: experts are 0-23).
REVIEWER_EXPERT_BASE = 10_000

_NAME = re.compile(r"[^\W_][\w .'-]{0,63}")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS reviewers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT UNIQUE NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('reviewer', 'senior')),
    password TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS leases (
    listing_id INTEGER PRIMARY KEY,
    reviewer_id INTEGER NOT NULL UNIQUE,
    token TEXT NOT NULL UNIQUE,
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS verdicts (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    verdict_id INTEGER NOT NULL UNIQUE,
    listing_id INTEGER NOT NULL,
    reviewer_id INTEGER NOT NULL,
    verdict TEXT NOT NULL CHECK (verdict IN ('authentic', 'counterfeit')),
    kind TEXT NOT NULL,
    note TEXT NOT NULL,
    report TEXT NOT NULL,
    model_decision TEXT,
    model_probability REAL,
    recorded_at TEXT NOT NULL,
    lease_token TEXT NOT NULL UNIQUE
);
CREATE INDEX IF NOT EXISTS verdicts_by_listing ON verdicts (listing_id);
CREATE TABLE IF NOT EXISTS escalations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    listing_id INTEGER NOT NULL,
    reviewer_id INTEGER NOT NULL,
    note TEXT NOT NULL,
    at TEXT NOT NULL,
    lease_token TEXT NOT NULL UNIQUE
);
"""


_DUMMY_HASH = hash_password("nobody's password")


@dataclass(frozen=True)
class Reviewer:
    id: int
    name: str
    role: Role

    @property
    def expert_id(self) -> int:
        return REVIEWER_EXPERT_BASE + self.id


@dataclass(frozen=True)
class Lease:
    listing_id: int
    reviewer_id: int
    token: str
    expires_at: float


@dataclass(frozen=True)
class StoredVerdict:
    verdict_id: int
    listing_id: int
    reviewer_id: int
    verdict: str
    kind: str
    note: str
    report: list[dict[str, Any]]
    model_decision: str | None
    model_probability: float | None
    recorded_at: str


class ReviewStore:
    """The console's database at ``path`` (created with its tables on first open).

    ``lease_s``: how long a case stays held without a sign of life from its reviewer's page.
    """

    def __init__(self, path: str | Path, *, lease_s: float = 300.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.lease_s = lease_s
        self._db = sqlite3.connect(
            self.path, timeout=10.0, isolation_level=None, check_same_thread=False
        )
        self._db.row_factory = sqlite3.Row
        self._lock = threading.Lock()  # one connection per store, shared by the server's threads
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")  # a recorded verdict survives a power cut
            self._db.executescript(_SCHEMA)
            self._db.execute(
                "INSERT OR IGNORE INTO meta VALUES ('secret', ?)", (secrets.token_hex(32),)
            )
        self.secret: str = self._one("SELECT value FROM meta WHERE key = 'secret'")["value"]

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, holding SQLite's write lock from its start."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _one(self, sql: str, args: tuple[Any, ...] = ()) -> sqlite3.Row:
        with self._lock:
            row: sqlite3.Row = self._db.execute(sql, args).fetchone()
        return row

    def _all(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return list(self._db.execute(sql, args).fetchall())

    # -- reviewers ---------------------------------------------------------------------------

    def add_reviewer(self, name: str, password: str, role: str = "reviewer") -> Reviewer:
        if role not in ROLES:
            raise InvalidInputError(
                f"role {role!r} is unknown; a reviewer is one of: {', '.join(ROLES)}", field="role"
            )
        if not _NAME.fullmatch(name):
            raise InvalidInputError(
                f"reviewer name {name!r}: 1 to 64 letters, digits, spaces or . _ ' -, starting "
                "with a letter or digit",
                field="name",
            )
        if len(password) < 8:
            raise InvalidInputError(
                "the password has fewer than 8 characters; choose a longer one", field="password"
            )
        try:
            with self._write() as db:
                db.execute(
                    "INSERT INTO reviewers (name, role, password, created_at) VALUES (?, ?, ?, ?)",
                    (name, role, hash_password(password), _now_iso()),
                )
        except sqlite3.IntegrityError:
            raise ConflictError(
                f"a reviewer called {name!r} exists already; pick another name", field="name"
            ) from None
        found = self.reviewer_named(name)
        assert found is not None  # just inserted, in this transaction's commit
        return found

    def reviewer_named(self, name: str) -> Reviewer | None:
        row = self._one("SELECT id, name, role FROM reviewers WHERE name = ?", (name,))
        return Reviewer(row["id"], row["name"], row["role"]) if row else None

    def reviewer(self, reviewer_id: int) -> Reviewer | None:
        row = self._one("SELECT id, name, role FROM reviewers WHERE id = ?", (reviewer_id,))
        return Reviewer(row["id"], row["name"], row["role"]) if row else None

    def reviewers(self) -> list[Reviewer]:
        rows = self._all("SELECT id, name, role FROM reviewers ORDER BY name")
        return [Reviewer(r["id"], r["name"], r["role"]) for r in rows]

    def sign_in(self, name: str, password: str) -> Reviewer | None:
        """The reviewer when ``password`` is theirs; None otherwise (which, is not told)."""
        row = self._one("SELECT id, name, role, password FROM reviewers WHERE name = ?", (name,))
        if row is None:
            verify_password(password, _DUMMY_HASH)  # as long as a wrong password takes
            return None
        if not verify_password(password, row["password"]):
            return None
        return Reviewer(row["id"], row["name"], row["role"])

    # -- leases ------------------------------------------------------------------------------

    def lease_next(self, reviewer: Reviewer, candidates: Iterator[int]) -> Lease | None:
        """Hold the first of ``candidates`` (listing ids, best first) that nobody else holds,
        giving up the reviewer's earlier lease; None (the earlier lease kept) when every
        candidate is held by somebody else."""
        now = time.time()
        with self._write() as db:
            db.execute("DELETE FROM leases WHERE expires_at < ?", (now,))
            others = "SELECT listing_id FROM leases WHERE reviewer_id != ?"
            held = {r[0] for r in db.execute(others, (reviewer.id,))}
            for listing_id in candidates:
                if listing_id in held:
                    continue
                lease = Lease(
                    listing_id, reviewer.id, secrets.token_urlsafe(16), now + self.lease_s
                )
                # the old lease goes only now: a refused take leaves the reviewer their case
                db.execute("DELETE FROM leases WHERE reviewer_id = ?", (reviewer.id,))
                db.execute(
                    "INSERT INTO leases VALUES (?, ?, ?, ?)",
                    (lease.listing_id, lease.reviewer_id, lease.token, lease.expires_at),
                )
                return lease
        return None

    def lease_of(self, reviewer: Reviewer) -> Lease | None:
        row = self._one(
            "SELECT * FROM leases WHERE reviewer_id = ? AND expires_at >= ?",
            (reviewer.id, time.time()),
        )
        return Lease(**dict(row)) if row else None

    def held(self) -> dict[int, int]:
        """Listing id -> reviewer id, for every lease not yet expired."""
        rows = self._all(
            "SELECT listing_id, reviewer_id FROM leases WHERE expires_at >= ?", (time.time(),)
        )
        return {r[0]: r[1] for r in rows}

    def renew(self, reviewer: Reviewer, token: str) -> Lease | None:
        """Extend the reviewer's lease (their page is open and in use); None if it is gone."""
        now = time.time()
        with self._write() as db:
            db.execute(
                "UPDATE leases SET expires_at = ? WHERE reviewer_id = ? AND token = ? "
                "AND expires_at >= ?",
                (now + self.lease_s, reviewer.id, token, now),
            )
        lease = self.lease_of(reviewer)
        return lease if lease is not None and lease.token == token else None

    def release(self, reviewer: Reviewer) -> None:
        with self._write() as db:
            db.execute("DELETE FROM leases WHERE reviewer_id = ?", (reviewer.id,))

    def _take_lease(
        self, db: sqlite3.Connection, reviewer: Reviewer, listing_id: int, token: str
    ) -> None:
        """Consume the lease the form carried, or refuse (:meth:`check_lease`)."""
        self._check_lease(db, reviewer, listing_id, token)
        db.execute("DELETE FROM leases WHERE token = ?", (token,))

    def check_lease(self, reviewer: Reviewer, listing_id: int, token: str) -> None:
        """Refuse a form whose lease does not hold: a case the reviewer does not hold, a lease
        that expired, or a form already used (its lease was consumed)."""
        with self._lock:
            self._check_lease(self._db, reviewer, listing_id, token)

    def _check_lease(
        self, db: sqlite3.Connection, reviewer: Reviewer, listing_id: int, token: str
    ) -> None:
        row = db.execute("SELECT * FROM leases WHERE token = ?", (token,)).fetchone()
        if row is None or row["reviewer_id"] != reviewer.id or row["listing_id"] != listing_id:
            raise ConflictError(
                f"you do not hold listing {listing_id}: this form was already used, or its case "
                "was handed to someone else after your lease expired; nothing was stored. "
                "Take the next case from the queue.",
                field="lease",
            )
        if row["expires_at"] < time.time():
            raise ConflictError(
                f"your lease on listing {listing_id} expired (no sign of life from the page for "
                f"{self.lease_s:.0f} s); nothing was stored. Take the case again from the queue.",
                field="lease",
            )

    # -- verdicts ----------------------------------------------------------------------------

    def record(  # noqa: PLR0913 - one verdict's fields, keyword-only
        self,
        reviewer: Reviewer,
        *,
        listing_id: int,
        lease_token: str,
        verdict: str,
        kind: str,
        note: str,
        report: list[dict[str, Any]],
        model: dict[str, Any] | None,
        at: datetime,
        write_labels: Callable[[int], None],
    ) -> StoredVerdict:
        """Store one verdict, consuming the reviewer's lease; ``write_labels(verdict_id)``
        writes it to the label store inside the transaction (its failure stores nothing)."""
        model = model or {}
        with self._write() as db:
            self._take_lease(db, reviewer, listing_id, lease_token)
            verdict_id = new_verdict_id()
            stored = StoredVerdict(
                verdict_id,
                listing_id,
                reviewer.id,
                verdict,
                kind,
                note,
                report,
                model.get("decision"),
                model.get("probability"),
                _utc(at),
            )
            db.execute(
                "INSERT INTO verdicts (verdict_id, listing_id, reviewer_id, verdict, kind, note, "
                "report, model_decision, model_probability, recorded_at, lease_token) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    stored.verdict_id,
                    listing_id,
                    reviewer.id,
                    verdict,
                    kind,
                    note,
                    json.dumps(report),
                    stored.model_decision,
                    stored.model_probability,
                    stored.recorded_at,
                    lease_token,
                ),
            )
            write_labels(verdict_id)
        return stored

    def escalate(
        self, reviewer: Reviewer, *, listing_id: int, lease_token: str, note: str, at: datetime
    ) -> None:
        """Hand the case to a senior reviewer without a verdict, consuming the lease."""
        with self._write() as db:
            self._take_lease(db, reviewer, listing_id, lease_token)
            db.execute(
                "INSERT INTO escalations (listing_id, reviewer_id, note, at, lease_token) "
                "VALUES (?, ?, ?, ?, ?)",
                (listing_id, reviewer.id, note, _utc(at), lease_token),
            )

    def verdicts(self, listing_id: int | None = None) -> list[StoredVerdict]:
        """Every verdict the console recorded (of one listing), oldest first."""
        where, args = (
            ("WHERE listing_id = ?", (listing_id,)) if listing_id is not None else ("", ())
        )
        rows = self._all(
            "SELECT verdict_id, listing_id, reviewer_id, verdict, kind, note, report, "
            f"model_decision, model_probability, recorded_at FROM verdicts {where} "
            "ORDER BY seq",
            args,
        )
        return [StoredVerdict(**{**dict(r), "report": json.loads(r["report"])}) for r in rows]

    def said_since(self, seq: int) -> list[tuple[int, int, int, int, str, str, str]]:
        """(seq, verdict id, listing id, reviewer id, verdict, kind, recorded at) of every
        verdict recorded after ``seq``, in order: what the queue reads as they come."""
        rows = self._all(
            "SELECT seq, verdict_id, listing_id, reviewer_id, verdict, kind, recorded_at "
            "FROM verdicts WHERE seq > ? ORDER BY seq",
            (seq,),
        )
        return [(r[0], r[1], r[2], r[3], r[4], r[5], r[6]) for r in rows]

    def escalations_since(self, seq: int) -> list[tuple[int, int, int, str]]:
        """(id, listing id, reviewer id, at) of every escalation after ``seq``, in order."""
        rows = self._all(
            "SELECT id, listing_id, reviewer_id, at FROM escalations WHERE id > ? ORDER BY id",
            (seq,),
        )
        return [(r[0], r[1], r[2], r[3]) for r in rows]

    def recorded_since(self, since: datetime) -> int:
        return int(
            self._one("SELECT COUNT(*) FROM verdicts WHERE recorded_at >= ?", (_utc(since),))[0]
        )


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


def _utc(at: datetime) -> str:
    """Stored times are UTC ISO strings, so they compare as strings."""
    if at.tzinfo is None:
        raise InvalidInputError(f"{at} has no time zone; pass an aware time", field="at")
    return at.astimezone(UTC).isoformat()
