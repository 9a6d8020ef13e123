"""When a domain's stages run: what a domain declares to the pipelines layer.

Cron strings are in UTC. Each :class:`Retrain` becomes its own asset, job and schedule, so a
domain can retrain a cheap component daily and a heavy one weekly; each may name its own recipe
(a variant that reuses the champion's heavy component, say), else the domain's recipe runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from couturier.errors import InvalidParameterError

if TYPE_CHECKING:
    from couturier.domain import Recipe

__all__ = ["Cadence", "Retrain"]

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_FIELD = re.compile(r"^(\*|\d+)$")


@dataclass(frozen=True)
class Retrain:
    """One retraining: ``name`` (an asset name), ``cron`` (when), ``recipe`` (default: the
    domain's), and whether a persisted monitoring alert starts it (``on_alert``)."""

    name: str
    cron: str
    recipe: Recipe | None = None
    on_alert: bool = True

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise InvalidParameterError(
                f"retrain name {self.name!r} must match {_NAME.pattern}, e.g. 'graph'",
                field="name",
            )
        fields = self.cron.split()
        if len(fields) != 5 or not all(_FIELD.match(f) for f in fields[2:]):
            raise InvalidParameterError(
                f"cron {self.cron!r}: 5 fields whose day fields are '*' or one number, e.g. "
                "'0 3 * * *' (daily) or '0 4 * * 0' (Sundays); ranges and steps are not "
                "supported (a replay reads the day fields)",
                field="cron",
            )


@dataclass(frozen=True)
class Cadence:
    """A domain's schedule: feature materialization, each retraining, monitoring."""

    materialize: str = "0 * * * *"  # hourly
    retrain: tuple[Retrain, ...] = field(default_factory=lambda: (Retrain("model", "0 3 * * *"),))
    monitor: str = "0 5 * * *"  # daily, after the night's labels

    def __post_init__(self) -> None:
        minute, hour, *days = self.monitor.split()
        if not (minute.isdigit() and hour.isdigit() and days == ["*", "*", "*"]):
            raise InvalidParameterError(
                f"monitor cron {self.monitor!r} must be daily at a fixed time, e.g. '0 5 * * *' "
                "(monitoring judges one day per run)",
                field="monitor",
            )
        names = [r.name for r in self.retrain]
        if len(set(names)) != len(names):
            raise InvalidParameterError(f"retrain names must be unique: {names}", field="retrain")
