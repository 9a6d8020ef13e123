"""What enters the registry and what it decides: packages, gate policies, verdicts, events."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

import numpy as np

from couturier.errors import InvalidInputError

__all__ = [
    "ALIASES",
    "CHECK_STATUSES",
    "FAILED",
    "NOT_JUDGED",
    "PASSED",
    "CheckStatus",
    "GateCheck",
    "GatePolicy",
    "GateVerdict",
    "ModelPackage",
    "PromotionEvent",
]

#: The aliases a version can hold. ``champion`` serves; ``challenger`` waits for promotion;
#: ``canary`` takes a share of traffic; ``shadow`` sees mirrored traffic and only logs.
ALIASES: tuple[str, ...] = ("champion", "challenger", "canary", "shadow")


@dataclass
class ModelPackage:
    """A model ready for the registry: ONNX plus everything serving needs to run it.

    ``reference`` is the framework's own prediction function; before registration the
    registry checks that ONNX Runtime gives the same ``output`` on ``sample`` within
    ``tolerance`` (absolute). ``sample`` is one array for a single-input model (fed as float32)
    or a dict of named arrays, fed as they are, for a model with several inputs.

    ``artifacts`` travel with the version beside ``model.onnx`` (a quantized variant, a
    retrieval index, a calibration table): name -> bytes, names may contain ``/``.
    ``components`` names the registered versions this model was fitted on top of (a fusion
    model's inputs), so serving loads the same graph that was evaluated.
    """

    name: str
    onnx_model: bytes
    features: list[str]
    reference: Callable[[Any], np.ndarray]
    sample: np.ndarray | dict[str, np.ndarray]
    output: str
    preprocessing: dict[str, Any] = field(default_factory=dict)
    thresholds: dict[str, float] = field(default_factory=dict)
    tolerance: float = 1e-4
    description: str = ""
    artifacts: dict[str, bytes] = field(default_factory=dict)
    components: dict[str, int] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def first_row(self) -> np.ndarray | dict[str, np.ndarray]:
        if isinstance(self.sample, dict):
            return {k: v[:1] for k, v in self.sample.items()}
        return self.sample[:1]

    def rows(self) -> int:
        first = next(iter(self.sample.values())) if isinstance(self.sample, dict) else self.sample
        return len(first)

    def serving_spec(
        self, inputs: list[dict[str, Any]], outputs: list[dict[str, Any]]
    ) -> dict[str, Any]:
        return {
            "format": "onnx",
            "inputs": inputs,
            "outputs": outputs,
            "score_output": self.output,
            "features": list(self.features),
            "preprocessing": self.preprocessing,
            "thresholds": self.thresholds,
            "artifacts": sorted(self.artifacts),
            "components": self.components,
            **self.extra,
        }


@dataclass(frozen=True)
class GatePolicy:
    """What a version must show to become ``champion``. Declared per model by its domain."""

    metric: str = "pr_auc"
    min_improvement: float = 0.0  # over the champion, on the same holdout
    max_slice_regression: float = 0.05  # no slice may lose more than this vs the champion
    min_slice_size: int = 100  # slices smaller than this are not judged (too noisy)
    max_ece: float | None = 0.05  # calibration bound; None: calibration is not judged
    latency_budget_ms: float = 5.0  # single-row p99 in ONNX Runtime
    require_approval: bool = False  # a person must approve (``couturier models approve``)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


#: What a gate check concluded. ``not judged``: the check had nothing to judge (no threshold in
#: the policy, no champion to compare with, no slice large enough); it never fails the gate,
#: and it never claims to have passed.
CheckStatus = Literal["passed", "failed", "not judged"]
PASSED: CheckStatus = "passed"
FAILED: CheckStatus = "failed"
NOT_JUDGED: CheckStatus = "not judged"
CHECK_STATUSES: tuple[CheckStatus, ...] = (PASSED, FAILED, NOT_JUDGED)


@dataclass(frozen=True)
class GateCheck:
    """One check of a verdict: its value, the threshold it was held to, and what it concluded.

    >>> GateCheck("calibration", NOT_JUDGED, 0.12, None, "this policy does not judge it").failed
    False
    """

    name: str
    status: CheckStatus
    value: float | str | None
    threshold: float | str | None
    detail: str

    def __post_init__(self) -> None:
        if self.status not in CHECK_STATUSES:
            raise InvalidInputError(
                f"gate check {self.name!r} has status {self.status!r}; "
                f"a status is one of {', '.join(CHECK_STATUSES)}",
                field="status",
            )

    @classmethod
    def of(
        cls,
        name: str,
        passed: bool,
        value: float | str | None,
        threshold: float | str | None,
        detail: str,
    ) -> GateCheck:
        """A judged check: ``passed`` or ``failed``."""
        return cls(name, PASSED if passed else FAILED, value, threshold, detail)

    @property
    def passed(self) -> bool:
        """Judged and passed (a check that was not judged did not pass: it did not fail either)."""
        return self.status == PASSED

    @property
    def failed(self) -> bool:
        """Judged and failed: the only status that fails the gate."""
        return self.status == FAILED

    @property
    def judged(self) -> bool:
        return self.status != NOT_JUDGED

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GateCheck:
        """Read a stored check; verdicts stored before ``status`` existed carry ``passed``."""
        status = data.get("status")
        if status is None:
            status = PASSED if data["passed"] else FAILED
        return cls(
            name=str(data["name"]),
            status=status,
            value=data.get("value"),
            threshold=data.get("threshold"),
            detail=str(data.get("detail", "")),
        )


@dataclass(frozen=True)
class GateVerdict:
    """The gate's decision on one version, with every check it made (``gate/verdict.json``).

    ``passed`` is True when no check failed; checks that were not judged are listed by
    :meth:`not_judged` so a reader sees what the gate did *not* look at.
    """

    passed: bool
    checks: list[GateCheck]
    champion_version: int | None  # the champion it was compared with
    policy: dict[str, Any]
    evaluated_at: str

    def failures(self) -> list[GateCheck]:
        return [c for c in self.checks if c.failed]

    def not_judged(self) -> list[GateCheck]:
        return [c for c in self.checks if not c.judged]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GateVerdict:
        return cls(
            passed=bool(data["passed"]),
            checks=[GateCheck.from_dict(c) for c in data["checks"]],
            champion_version=data.get("champion_version"),
            policy=dict(data.get("policy", {})),
            evaluated_at=str(data.get("evaluated_at", "")),
        )


@dataclass(frozen=True)
class PromotionEvent:
    """One line of the append-only promotion log."""

    id: int
    model: str
    alias: str
    from_version: int | None
    to_version: int | None
    actor: str
    reason: str
    at: datetime
    details: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["at"] = self.at.isoformat()
        return d
