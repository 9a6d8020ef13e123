"""The prediction log: every decision appended before it is acknowledged, crash-safe.

Records are JSON lines in daily files (``predictions-YYYY-MM-DD.jsonl``) under a folder, in
one of two durabilities:

* ``fsync=False`` (the default): ``append`` writes the line with one ``write`` to a file opened
  for appending before it returns, so an answered request's record is in the kernel: it
  survives ``kill -9`` of the server (the issue's requirement), not a crash of the machine.
  No thread, no wait: ~20 microseconds.
* ``fsync=True``: a writer thread takes what the requests queued, writes it with one ``write``
  and one ``fsync`` (group commit: one disk flush for every record that arrived meanwhile) and
  only then resolves the requests' futures: it survives a power cut too, for ~1.7 ms more per
  request on this machine's disk (measured on ``/v1/authenticate``: p50 3.6 -> 5.3 ms).

A crash can leave at most one torn last line, which :func:`read_predictions` skips.

Monitoring reads these files. Anything that implements :class:`PredictionSink` (``append``
returning once the record is safe, and ``close``) can take the log's place: a queue or a table
in production.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

__all__ = ["PredictionLog", "PredictionSink", "read_predictions", "settle"]


@runtime_checkable
class PredictionSink(Protocol):
    """Where served predictions go. ``append`` returns once the record is as safe as the sink
    promises (the answer is sent after it); ``close`` flushes and releases."""

    async def append(self, record: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


class PredictionLog:
    """The local sink: daily JSON-lines files (see the module's docstring)."""

    def __init__(self, folder: str | Path, *, fsync: bool = False) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.fsync = fsync
        self._fd: int | None = None  # the day's file, kept open (fsync=False)
        self._day = ""
        self._pending: list[tuple[bytes, asyncio.Future[None], asyncio.AbstractEventLoop]] = []
        self._lock = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        if fsync:
            self._thread.start()

    async def append(self, record: dict[str, Any]) -> None:
        """Returns once the record is on disk (written and fsynced)."""
        line = (json.dumps(record, separators=(",", ":"), default=str) + "\n").encode()
        if not self.fsync:
            if self._closed:
                raise RuntimeError("the prediction log is closed")
            os.write(self._file(), line)  # O_APPEND: one write, never interleaved
            return
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        with self._lock:
            if self._closed:
                raise RuntimeError("the prediction log is closed")
            self._pending.append((line, done, loop))
            self._lock.notify()
        await done

    def _file(self) -> int:
        day = f"{datetime.now(UTC):%Y-%m-%d}"
        if self._fd is None or day != self._day:
            if self._fd is not None:
                os.close(self._fd)
            path = self.folder / f"predictions-{day}.jsonl"
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            self._day = day
        return self._fd

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._pending and not self._closed:
                    self._lock.wait()
                batch, self._pending = self._pending, []
                if not batch and self._closed:
                    return
            error: BaseException | None = None
            try:
                path = self.folder / f"predictions-{datetime.now(UTC):%Y-%m-%d}.jsonl"
                fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                try:
                    os.write(fd, b"".join(line for line, _, _ in batch))
                    os.fsync(fd)
                finally:
                    os.close(fd)
            except OSError as exc:  # the disk refused: every waiting request learns it
                error = exc
            for _, future, loop in batch:
                loop.call_soon_threadsafe(settle, future, None, error)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._lock.notify()
        if self.fsync:
            self._thread.join(10)
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def settle(future: asyncio.Future[Any], value: Any, error: BaseException | None = None) -> None:
    """Resolve ``future`` with ``value``, or with ``error`` when there is one, unless it is
    already done (``loop.call_soon_threadsafe(settle, ...)`` from a worker thread)."""
    if future.done():
        return
    if error is None:
        future.set_result(value)
    else:
        future.set_exception(error)


def read_predictions(folder: str | Path) -> Iterator[dict[str, Any]]:
    """Every complete record, oldest file first; a torn last line (a crash) is skipped."""
    for path in sorted(Path(folder).glob("predictions-*.jsonl")):
        with path.open("rb") as f:
            for raw in f:
                if not raw.endswith(b"\n"):
                    break  # the tail of a write a crash cut short
                yield json.loads(raw)
