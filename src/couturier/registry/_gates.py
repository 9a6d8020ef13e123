"""The promotion gate: does a candidate deserve to become champion?

Every check is recorded, passed or not, with its value and threshold, so the verdict stored
with the version says exactly what would make a refused candidate pass. A policy's
``require_approval`` is enforced at promotion (a person approves after registration).
"""

from __future__ import annotations

from datetime import UTC, datetime

from couturier.evaluation import Evaluation
from couturier.registry.types import GateCheck, GatePolicy, GateVerdict

__all__ = ["judge"]


def judge(
    policy: GatePolicy,
    candidate: Evaluation,
    champion: Evaluation | None,
    *,
    champion_version: int | None,
    parity_passed: bool,
    parity_max_error: float,
    latency_p99_ms: float,
) -> GateVerdict:
    m = policy.metric
    checks: list[GateCheck] = []
    value = candidate.overall.get(m)
    checks.append(
        GateCheck(
            "parity",
            parity_passed,
            parity_max_error,
            None,
            "ONNX Runtime matches the framework"
            if parity_passed
            else "ONNX Runtime disagrees with the framework",
        )
    )
    if champion is None:
        checks.append(
            GateCheck(
                "beats_champion",
                value is not None,
                value,
                None,
                "no champion yet: the first version sets the bar",
            )
        )
    else:
        if candidate.holdout != champion.holdout:
            checks.append(
                GateCheck(
                    "same_holdout",
                    False,
                    candidate.holdout,
                    champion.holdout,
                    "candidate and champion were evaluated on different holdouts; "
                    "evaluate both on the same one",
                )
            )
        bar = champion.overall.get(m, float("-inf")) + policy.min_improvement
        ok = value is not None and value >= bar
        checks.append(
            GateCheck(
                "beats_champion",
                ok,
                value,
                bar,
                f"{m} {value:.4f} vs champion v{champion_version} "
                f"{champion.overall.get(m, float('nan')):.4f} + margin {policy.min_improvement}"
                if value is not None
                else f"candidate has no {m}",
            )
        )
        worst_name, worst_drop = None, 0.0
        for name, metrics in candidate.slices.items():
            base = champion.slices.get(name)
            if base is None or metrics.get("n", 0) < policy.min_slice_size:
                continue
            if m in metrics and m in base:
                drop = base[m] - metrics[m]
                if drop > worst_drop:
                    worst_name, worst_drop = name, drop
        checks.append(
            GateCheck(
                "no_slice_regression",
                worst_drop <= policy.max_slice_regression,
                worst_drop,
                policy.max_slice_regression,
                f"worst slice {worst_name}: {m} down {worst_drop:.4f}"
                if worst_name
                else "no slice got worse",
            )
        )
    ece = candidate.overall.get("ece")
    checks.append(
        GateCheck(
            "calibration",
            ece is not None and ece <= policy.max_ece,
            ece,
            policy.max_ece,
            "expected calibration error" if ece is not None else "scores are not probabilities",
        )
    )
    checks.append(
        GateCheck(
            "latency",
            latency_p99_ms <= policy.latency_budget_ms,
            latency_p99_ms,
            policy.latency_budget_ms,
            "single-row p99 in ONNX Runtime, ms",
        )
    )
    return GateVerdict(
        passed=all(c.passed for c in checks),
        checks=checks,
        champion_version=champion_version,
        policy=policy.as_dict(),
        evaluated_at=datetime.now(UTC).isoformat(),
    )
