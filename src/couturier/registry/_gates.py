"""The promotion gate: does a candidate deserve to become champion?

Every check is recorded with its value, its threshold and what it concluded: ``passed``,
``failed`` or ``not judged``. *Not judged* is said out loud, never recorded as a pass: a policy
without a calibration bound (``max_ece=None``), a first version with no champion to beat, slices
too small (``min_slice_size``) or missing on either side. A check that was not judged never
fails the gate, so the verdict stored with the version says exactly what would make a refused
candidate pass, and what the gate did not look at. A policy's ``require_approval`` is enforced
at promotion (a person approves after registration).
"""

from __future__ import annotations

from datetime import UTC, datetime

from couturier.evaluation import Evaluation
from couturier.registry.types import NOT_JUDGED, GateCheck, GatePolicy, GateVerdict

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
    """Every check of ``policy`` on ``candidate`` (against ``champion`` on the same holdout)."""
    checks = [
        GateCheck.of(
            "parity",
            parity_passed,
            parity_max_error,
            None,
            "ONNX Runtime matches the framework"
            if parity_passed
            else "ONNX Runtime disagrees with the framework",
        ),
        *_against_champion(policy, candidate, champion, champion_version),
        _calibration(policy, candidate),
        GateCheck.of(
            "latency",
            latency_p99_ms <= policy.latency_budget_ms,
            latency_p99_ms,
            policy.latency_budget_ms,
            "single-row p99 in ONNX Runtime, ms",
        ),
    ]
    return GateVerdict(
        passed=not any(c.failed for c in checks),
        checks=checks,
        champion_version=champion_version,
        policy=policy.as_dict(),
        evaluated_at=datetime.now(UTC).isoformat(),
    )


def _against_champion(
    policy: GatePolicy,
    candidate: Evaluation,
    champion: Evaluation | None,
    champion_version: int | None,
) -> list[GateCheck]:
    if champion is None:
        return [
            _beats_champion(policy, candidate, None, None),
            GateCheck(
                "no_slice_regression", NOT_JUDGED, None, None, "no champion to compare slices with"
            ),
        ]
    same = candidate.holdout == champion.holdout
    return [
        GateCheck.of(
            "same_holdout",
            same,
            candidate.holdout,
            champion.holdout,
            "candidate and champion were evaluated on the same holdout"
            if same
            else "candidate and champion were evaluated on different holdouts; "
            "evaluate both on the same one",
        ),
        _beats_champion(policy, candidate, champion, champion_version),
        _slices(policy, candidate, champion),
    ]


def _beats_champion(
    policy: GatePolicy,
    candidate: Evaluation,
    champion: Evaluation | None,
    champion_version: int | None,
) -> GateCheck:
    m = policy.metric
    value = candidate.overall.get(m)
    if value is None:
        return GateCheck.of("beats_champion", False, None, None, f"candidate has no {m}")
    if champion is None:
        return GateCheck(
            "beats_champion",
            NOT_JUDGED,
            value,
            None,
            "no champion yet: the first version sets the bar",
        )
    base = champion.overall.get(m)
    if base is None:
        return GateCheck(
            "beats_champion",
            NOT_JUDGED,
            value,
            None,
            f"champion v{champion_version} has no {m} to compare with",
        )
    bar = base + policy.min_improvement
    return GateCheck.of(
        "beats_champion",
        value >= bar,
        value,
        bar,
        f"{m} {value:.4f} vs champion v{champion_version} {base:.4f} "
        f"+ margin {policy.min_improvement}",
    )


def _slices(policy: GatePolicy, candidate: Evaluation, champion: Evaluation) -> GateCheck:
    """The worst slice's drop in the metric, over the slices both sides can be judged on."""
    m = policy.metric
    judged, skipped = 0, 0
    worst_name, worst_drop = None, 0.0
    for name, metrics in candidate.slices.items():
        base = champion.slices.get(name)
        if (
            base is None
            or metrics.get("n", 0) < policy.min_slice_size
            or m not in metrics
            or m not in base
        ):
            skipped += 1
            continue
        judged += 1
        drop = base[m] - metrics[m]
        if drop > worst_drop:
            worst_name, worst_drop = name, drop
    unjudged = f"; {skipped} slice(s) not judged" if skipped else ""
    if not judged:
        return GateCheck(
            "no_slice_regression",
            NOT_JUDGED,
            None,
            policy.max_slice_regression,
            f"no slice with {m} on both sides and at least {policy.min_slice_size} rows{unjudged}",
        )
    return GateCheck.of(
        "no_slice_regression",
        worst_drop <= policy.max_slice_regression,
        worst_drop,
        policy.max_slice_regression,
        (
            f"worst slice {worst_name}: {m} down {worst_drop:.4f}"
            if worst_name
            else "no slice got worse"
        )
        + f" ({judged} slice(s) judged{unjudged})",
    )


def _calibration(policy: GatePolicy, candidate: Evaluation) -> GateCheck:
    ece = candidate.overall.get("ece")
    if policy.max_ece is None:
        return GateCheck(
            "calibration",
            NOT_JUDGED,
            ece,
            None,
            "this policy sets no calibration bound (max_ece=None)",
        )
    return GateCheck.of(
        "calibration",
        ece is not None and ece <= policy.max_ece,
        ece,
        policy.max_ece,
        "expected calibration error" if ece is not None else "scores are not probabilities",
    )
