"""Reading a prediction stream for monitoring: every usable record as a row, every other one
counted and quarantined with its reason, so one bad line never stops a monitoring run.

A record is unusable when its line is not JSON (a torn write is the log's, and is skipped by
it; this is anything else), when a field the :class:`Watch` names is missing or of the wrong
type, or when it names a model version the registry does not know (a record from another
registry, or a version deleted since). Quarantined lines are written, with their reason, to
``quarantine.jsonl`` beside the monitoring results, so a person can look at them.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from couturier.monitoring._spec import Watch, field_value

__all__ = ["Quarantined", "Records", "read_records"]


@dataclass(frozen=True)
class Quarantined:
    where: str  # file:line, or "labels row N"
    reason: str
    line: str
    day: str = ""  # the day it belongs to (its time, else its file's date); "" for labels


@dataclass
class Records:
    """The usable records as a frame (``key``, ``time``, ``version``, ``score``, ``stratum``,
    ``degraded``, one column per watched feature, ``embedding`` as arrays) and what was
    quarantined."""

    frame: pd.DataFrame
    quarantined: list[Quarantined] = field(default_factory=list)

    def reasons(self, day: str | None = None) -> dict[str, int]:
        """Quarantined records by kind of reason (only ``day``'s, if given)."""
        kept = [q for q in self.quarantined if day is None or q.day == day]
        return dict(Counter(q.reason.split(":")[0] for q in kept))


def _lines(folder: Path) -> Iterator[tuple[str, bytes]]:
    for path in sorted(folder.glob("predictions-*.jsonl")):
        with path.open("rb") as f:
            for n, raw in enumerate(f, start=1):
                if not raw.endswith(b"\n"):
                    break  # the tail of a write a crash cut short: the log's own rule
                yield f"{path.name}:{n}", raw


def _embedding(value: Any) -> np.ndarray:
    vector = np.asarray(value, dtype=np.float32)
    if vector.ndim != 1 or vector.size == 0 or not np.isfinite(vector).all():
        raise ValueError(f"embedding of shape {vector.shape} is not a finite, non-empty vector")
    return vector


def _day_of(record: Any, watch: Watch, where: str) -> str:
    """The day a quarantined line belongs to: its own time when it has one, else its file's."""
    try:
        return pd.Timestamp(field_value(record, watch.time)).date().isoformat()
    except (KeyError, TypeError, ValueError, AttributeError):
        return where.split(":", maxsplit=1)[0].removeprefix("predictions-").removesuffix(".jsonl")


def _row(watch: Watch, record: Mapping[str, Any], known: Collection[int] | None) -> dict[str, Any]:
    """One record as a row; ``ValueError(reason)`` when it cannot be used."""
    try:
        version = int(field_value(record, watch.version))
        row: dict[str, Any] = {
            "key": int(field_value(record, watch.key)),
            "time": pd.Timestamp(field_value(record, watch.time)),
            "version": version,
            "score": float(field_value(record, watch.score)),
        }
        for path in watch.numeric:
            value = field_value(record, path)
            row[path] = float("nan") if value is None else float(value)
        for path in watch.categorical:
            row[path] = str(field_value(record, path))
        row["degraded"] = bool(field_value(record, watch.degraded)) if watch.degraded else False
        if watch.embedding is not None:
            value = field_value(record, watch.embedding)
            # an answer served without its model's embedding (the model's tier was down) is
            # degraded: counted, never judged, so it needs none
            row["embedding"] = None if value is None and row["degraded"] else _embedding(value)
    except KeyError as exc:
        raise ValueError(f"missing field: {exc.args[0]!r} is not in the record") from None
    except (TypeError, ValueError) as exc:
        raise ValueError(f"bad value: {exc}") from None
    if row["time"].tzinfo is None:
        raise ValueError(f"bad value: time {row['time']} has no time zone")
    if not 0.0 <= row["score"] <= 1.0:
        raise ValueError(f"bad value: score {row['score']} is outside [0, 1]")
    if known is not None and version not in known:
        raise ValueError(f"unknown version: {watch.model} v{version} is not in the registry")
    row["stratum"] = watch.stratum(record) if watch.stratum is not None else "all"
    return row


def _same_length(
    rows: list[dict[str, Any]], quarantined: list[Quarantined]
) -> list[dict[str, Any]]:
    """Rows whose embedding has the most common length (or none: a degraded answer); the
    others are quarantined."""
    lengths = Counter(len(r["embedding"]) for r in rows if r["embedding"] is not None)
    if not lengths:
        return rows
    size = lengths.most_common(1)[0][0]
    kept = []
    for r in rows:
        if r["embedding"] is None or len(r["embedding"]) == size:
            kept.append(r)
            continue
        reason = f"bad value: embedding of length {len(r['embedding'])}, the stream's is {size}"
        quarantined.append(Quarantined(f"key {r['key']}", reason, "", r["time"].date().isoformat()))
    return kept


def read_records(watch: Watch, folder: str | Path, known: Collection[int] | None) -> Records:
    """Every record of ``watch``'s stream under ``folder`` (the stream's own folder).

    ``known``: the model versions the registry holds (``None``: do not check)."""
    rows: list[dict[str, Any]] = []
    quarantined: list[Quarantined] = []
    folder = Path(folder)
    if folder.is_dir():
        for where, raw in _lines(folder):
            text = raw.decode("utf-8", errors="replace").rstrip("\n")
            try:
                record = json.loads(text)
                if not isinstance(record, dict):
                    raise ValueError("not a JSON object")
            except ValueError as exc:
                day = _day_of(None, watch, where)
                quarantined.append(Quarantined(where, f"unparsable: {exc}", text[:500], day))
                continue
            try:
                rows.append(_row(watch, record, known))
            except ValueError as exc:
                day = _day_of(record, watch, where)
                quarantined.append(Quarantined(where, str(exc), text[:500], day))
    columns = [
        "key",
        "time",
        "version",
        "score",
        *watch.numeric,
        *watch.categorical,
        "stratum",
        "degraded",
    ]
    if watch.embedding is not None and rows:
        rows = _same_length(rows, quarantined)
    frame = pd.DataFrame(rows, columns=[*columns, "embedding"] if watch.embedding else columns)
    frame["time"] = pd.to_datetime(frame["time"], utc=True)
    return Records(frame.sort_values("time", kind="stable").reset_index(drop=True), quarantined)
