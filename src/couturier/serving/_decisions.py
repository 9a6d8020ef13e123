"""Another domain's latest decision per key, read from its prediction log as the log grows.

One domain consumes another's output through the platform, never through its code: pricing
asks ``context.decisions("authentication", key="listing_id")`` and learns whether a listing was
judged counterfeit, from the records ``/v1/authenticate`` appended. Every replica on a machine
appends to the same daily files (``O_APPEND``), so a reader that follows the files sees what
every replica decided.

Each :meth:`LatestDecisions.get` catches up first: one ``stat`` of the folder (a new day's file
changes it) and one of each file, then only the bytes appended since the last call, up to the
last complete line. Only ``fields`` of each record are kept, the newest per key.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["LatestDecisions"]


class LatestDecisions:
    """The newest record per ``key`` value in a prediction-log folder, projected to ``fields``.

    >>> board = LatestDecisions(folder, key="listing_id", fields=("decision",))  # doctest: +SKIP
    >>> board.get(17)                                        # doctest: +SKIP
    {'decision': 'counterfeit'}
    """

    def __init__(self, folder: str | Path, *, key: str, fields: Sequence[str]) -> None:
        self.folder = Path(folder)
        self.key, self.fields = key, tuple(fields)
        self._latest: dict[Any, dict[str, Any]] = {}
        self._offsets: dict[str, int] = {}
        self._files: list[str] = []
        self._listed_at = -1
        self._lock = threading.Lock()

    def get(self, key: Any) -> dict[str, Any] | None:
        with self._lock:
            self._catch_up()
            found = self._latest.get(key)
        return dict(found) if found is not None else None

    def __len__(self) -> int:
        return len(self._latest)

    def _catch_up(self) -> None:
        try:
            listed = self.folder.stat().st_mtime_ns
        except FileNotFoundError:
            return  # nothing decided yet
        if listed != self._listed_at:
            self._files = sorted(
                p.name for p in self.folder.glob("predictions-*.jsonl") if p.is_file()
            )
            self._listed_at = listed
        for name in self._files:
            self._read_new(name)

    def _read_new(self, name: str) -> None:
        path = self.folder / name
        start = self._offsets.get(name, 0)
        try:
            if path.stat().st_size <= start:
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
        if isinstance(record, dict) and self.key in record:
            self._latest[record[self.key]] = {f: record.get(f) for f in self.fields}
