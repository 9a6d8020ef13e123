"""What a domain asks the monitoring layer to watch (:class:`Watch`), and the alert rules.

A domain declares one :class:`Watch` per served model in its :class:`~couturier.domain.Domain`.
The monitoring layer knows no domain: it reads the model's prediction stream and the labels the
domain's ``labels`` function returns, and everything it needs to know about their shape is
here, as field paths (``"features.price_ratio"`` reads ``record["features"]["price_ratio"]``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from couturier.errors import InvalidParameterError

if TYPE_CHECKING:
    import pandas as pd

    from couturier.marketplace import Marketplace

__all__ = ["AlertPolicy", "LabelSource", "Watch", "field_value"]

#: The marketplace -> one row per label: the watch's ``key``, ``label`` (0/1) and
#: ``arrived_at`` (UTC timestamp: when the label reached the platform, not when it was decided).
LabelSource = Callable[["Marketplace"], "pd.DataFrame"]


@dataclass(frozen=True)
class AlertPolicy:
    """When a signal becomes an alert: it must persist (``need`` of the last ``window`` days),
    and performance must fall ``tolerance`` (relative) below its reference level."""

    window: int = 3
    need: int = 2
    tolerance: float = 0.10
    #: a label-free estimate is only acted on while it is trusted (no sign of concept shift)
    act_on_untrusted_estimate: bool = False
    #: the calibration error the model had when promoted (its holdout's; the gate allows
    #: 0.05, the recipes reach ~0.01): a matured cohort well above it breaks the estimate's trust
    reference_ece: float = 0.02

    def __post_init__(self) -> None:
        if not 1 <= self.need <= self.window:
            raise InvalidParameterError(
                f"need={self.need} must be between 1 and window={self.window}", field="need"
            )
        if not 0.0 < self.tolerance < 1.0:
            raise InvalidParameterError(
                f"tolerance={self.tolerance} must be in (0, 1), e.g. 0.1", field="tolerance"
            )


@dataclass(frozen=True)
class Watch:
    """One model's prediction stream, its labels, and what to watch in them.

    ``key`` (the entity a label names), ``numeric``, ``categorical``, ``score``, ``embedding``,
    ``time`` and ``degraded`` are field paths
    into a prediction-log record. ``version`` is the path of the record's model version (the
    record names the version that answered, so a drift is always measured against the same
    champion's own reference window). ``stratum`` names the labelling route a record took
    (flagged for review, random audit, the rest): experts label flagged listings first, so
    performance is weighted by each route's label coverage.
    """

    model: str
    stream: str
    key: str
    score: str = "probability"
    numeric: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    embedding: str | None = None
    time: str = "at"
    #: a field that is truthy when the answer ran degraded (a store down: defaults served);
    #: those records are counted, and left out of drift and performance (not the world's doing)
    degraded: str | None = None
    version: str = "version"
    stratum: Callable[[Mapping[str, Any]], str] | None = None
    labels: LabelSource | None = None
    #: the keys that exist (listings): a label naming any other key is refused, row named
    keys: Callable[[Marketplace], Collection[int]] | None = None
    #: days after which a cohort's labels count as matured (realized performance is reported)
    maturity_days: float = 14.0
    #: the first days a champion version serves are its reference window
    reference_days: int = 7
    #: the smallest effects that count as data drift, whatever the sample size: PSI on a
    #: numeric feature (0.1 "moderate", 0.25 the usual "significant") and Cohen's h on a
    #: feature's missing share (0.2 "small", 0.5 "medium")
    min_psi: float = 0.1
    min_missing_h: float = 0.2
    alerts: AlertPolicy = field(default_factory=AlertPolicy)


_MISSING = object()


def field_value(record: Mapping[str, Any], path: str) -> Any:
    """``record`` at a dotted ``path``; raises ``KeyError(path)`` when a part is missing."""
    value: Any = record
    for part in path.split("."):
        value = value.get(part, _MISSING) if isinstance(value, Mapping) else _MISSING
        if value is _MISSING:
            raise KeyError(path)
    return value
