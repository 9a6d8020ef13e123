"""Another domain's latest decision per key, read from its prediction log as the log grows.

One domain consumes another's output through the platform, never through its code: pricing
asks ``context.decisions("authentication", key="listing_id")`` and learns whether a listing was
judged counterfeit, from the records ``/v1/authenticate`` appended. Every replica on a machine
appends to the same daily files (``O_APPEND``), so a reader that follows the files sees what
every replica decided.

Each :meth:`LatestDecisions.get` catches up first: a ``stat`` of the folder and of the newest
two files, then only the bytes appended since the last call, up to the last complete line.
Only ``fields`` of each record are kept, the newest per key; a key that is not an integer or a
string is skipped.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["LatestDecisions"]


class LatestDecisions:
    """The newest record per ``key`` value in a prediction-log folder, projected to ``fields``.

    >>> board = LatestDecisions(folder, key="listing_id", fields=("decision",))  # doctest: +SKIP
    >>> board.get(17)                                        # doctest: +SKIP
    {'decision': 'counterfeit'}

    ``keep``: only records it accepts count (a later record it refuses does not replace an
    earlier one it accepted): the review queue keeps the records that made a listing a case.

    The folder is listed again when its modification time changes or ``relist_s`` has passed
    (a directory's mtime may not change within one clock tick), so a new day's file is found
    within ``relist_s`` at worst. Files older than the newest two are read to their end once and
    then left: the log appends to the current day's file only. The first call reads the whole
    history; :meth:`catch_up` does it ahead (when a service mounts), off the request path.
    """

    def __init__(
        self,
        folder: str | Path,
        *,
        key: str,
        fields: Sequence[str],
        relist_s: float = 1.0,
        keep: Callable[[dict[str, Any]], bool] | None = None,
    ) -> None:
        self.folder = Path(folder)
        self.key, self.fields, self.relist_s = key, tuple(fields), relist_s
        self.keep = keep
        self._latest: dict[int | str, dict[str, Any]] = {}
        self._offsets: dict[str, int] = {}
        self._files: list[str] = []
        self._listed: tuple[int, float] = (-1, 0.0)  # folder mtime, monotonic time of listing
        self._lock = threading.Lock()

    def get(self, key: int | str) -> dict[str, Any] | None:
        """The newest record of ``key`` (projected), after reading what was appended since."""
        with self._lock:
            self._catch_up()
            found = self._latest.get(key)
        return dict(found) if found is not None else None

    def catch_up(self) -> int:
        """Read everything appended so far; the number of keys known."""
        with self._lock:
            self._catch_up()
            return len(self._latest)

    def snapshot(self) -> dict[int | str, dict[str, Any]]:
        """Every key's newest record (projected), after reading what was appended since. The
        dict is a copy; its records are shared: read them, never change them."""
        with self._lock:
            self._catch_up()
            return dict(self._latest)

    def __len__(self) -> int:
        return len(self._latest)

    def _catch_up(self) -> None:
        try:
            mtime = self.folder.stat().st_mtime_ns
        except FileNotFoundError:
            return  # nothing decided yet
        now = time.monotonic()
        if mtime != self._listed[0] or now - self._listed[1] >= self.relist_s:
            self._files = sorted(
                p.name for p in self.folder.glob("predictions-*.jsonl") if p.is_file()
            )
            self._listed = (mtime, now)
        current = set(self._files[-2:])
        for name in self._files:
            if name in current or name not in self._offsets:
                self._read_new(name)

    def _read_new(self, name: str) -> None:
        path = self.folder / name
        start = self._offsets.get(name, 0)
        try:
            if path.stat().st_size <= start:
                self._offsets.setdefault(name, start)
                return
            with path.open("rb") as f:
                f.seek(start)
                chunk = f.read()
        except FileNotFoundError:
            return
        end = chunk.rfind(b"\n") + 1  # a line still being written waits for the next call
        for raw in chunk[:end].splitlines():
            self._take(raw)
        self._offsets[name] = start + end

    def _take(self, raw: bytes) -> None:
        try:
            record = json.loads(raw)
        except ValueError:
            return  # a torn line from a crash: the log's reader skips it too
        if not isinstance(record, dict) or (self.keep is not None and not self.keep(record)):
            return
        key = record.get(self.key)
        if isinstance(key, int | str) and not isinstance(key, bool):
            self._latest[key] = {f: record.get(f) for f in self.fields}
