"""Where monitoring results live: one JSON file per model and day, re-runs replace their day.

``<folder>/<model>/<YYYY-MM-DD>.json`` holds a :class:`DayReport`; ``quarantine.jsonl`` beside
them holds every record a run could not use, with its reason. A run writes its day's file
atomically (a temporary file renamed over it), so a run killed halfway leaves the previous
result, and running a day twice gives the same file but for ``ran_at``: re-runs are idempotent.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np

from couturier.features import Freshness
from couturier.monitoring._job import DayReport, Signal
from couturier.monitoring._records import Quarantined

__all__ = ["MonitoringStore"]


def _plain(value: Any) -> Any:
    """numpy scalars as the Python values they hold (a numpy bool is not JSON's bool)."""
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def _from_dict(data: dict[str, Any]) -> DayReport:
    signals = {k: Signal(**v) for k, v in data.pop("signals", {}).items()}
    return DayReport(**data, signals=signals)


class MonitoringStore:
    """The monitoring results under ``folder`` (``$COUTURIER_HOME/monitoring`` by default)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def _day_path(self, model: str, day: str) -> Path:
        return self.folder / model / f"{day}.json"

    def save(self, report: DayReport, quarantined: Sequence[Quarantined] = ()) -> Path:
        path = self._day_path(report.model, report.day)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(asdict(report), indent=1, default=_plain) + "\n")
        tmp.replace(path)
        if quarantined:
            lines = (json.dumps({"day": report.day, **asdict(q)}) + "\n" for q in quarantined)
            (path.parent / "quarantine.jsonl").write_text("".join(lines))
        return path

    def models(self) -> list[str]:
        if not self.folder.is_dir():
            return []
        return sorted(p.name for p in self.folder.iterdir() if p.is_dir() and p.name[0] != "_")

    def reports(self, model: str, *, before: date | None = None) -> list[DayReport]:
        """Every stored day of ``model``, oldest first (only days before ``before``, if given)."""
        folder = self.folder / model
        if not folder.is_dir():
            return []
        days = sorted(p for p in folder.glob("????-??-??.json"))
        if before is not None:
            days = [p for p in days if p.stem < before.isoformat()]
        return [_from_dict(json.loads(p.read_text())) for p in days]

    def latest(self, model: str) -> DayReport | None:
        days = sorted((self.folder / model).glob("????-??-??.json"))
        return _from_dict(json.loads(days[-1].read_text())) if days else None

    def save_freshness(self, service: str, views: Sequence[Freshness]) -> Path:
        """The feature views' newest online values after a materialization; the exporter
        ages them at each scrape, so a materialization that stops running shows as growing
        staleness, not as the last age it wrote."""
        path = self.folder / "_freshness" / f"{service}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        rows = [
            {
                "view": v.view,
                "newest_value_at": v.newest_value_at.isoformat() if v.newest_value_at else None,
                "ttl_seconds": v.ttl_seconds,
                "at": datetime.now(UTC).isoformat(),
            }
            for v in views
        ]
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(rows, indent=1) + "\n")
        tmp.replace(path)
        return path

    def freshness(self) -> dict[str, list[dict[str, Any]]]:
        """Per feature service, its views' freshness as last saved."""
        folder = self.folder / "_freshness"
        if not folder.is_dir():
            return {}
        return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}
