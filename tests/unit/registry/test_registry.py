"""Gates, promotion, rollback, time travel, concurrency and the audit log, on a real MLflow."""

from __future__ import annotations

import itertools
import json
import threading
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from couturier.errors import ConflictError, InvalidInputError, NotFoundError
from couturier.evaluation import Evaluation
from couturier.registry import (
    GateCheck,
    GatePolicy,
    GateVerdict,
    ModelRegistry,
    ParityError,
    PromotionEvent,
)
from couturier.registry._gates import judge
from couturier.registry._packaging import session
from couturier.settings import Settings
from tests.support.registry import World, package, register


def _champion(registry: ModelRegistry, name: str, world: World) -> int:
    v = register(registry, name, world.model(), world)
    assert v.verdict.passed, v.verdict.failures()
    registry.promote(name, v.version, "champion", actor="ana", reason="first")
    return v.version


def test_a_better_challenger_passes_and_is_promoted(
    registry: ModelRegistry, world: World, name: str
) -> None:
    first = register(registry, name, world.model(informative=False), world)
    registry.promote(name, first.version, "champion", actor="ana", reason="baseline")
    better = register(registry, name, world.model(), world)
    assert better.verdict.passed
    assert better.verdict.champion_version == first.version
    assert better.aliases == ["challenger"]
    event = registry.promote(name, better.version, "champion", actor="bo", reason="better")
    assert event is not None
    assert (event.from_version, event.to_version, event.actor) == (1, 2, "bo")
    assert registry.alias_version(name, "champion") == better.version


def test_a_worse_challenger_is_refused_with_what_would_make_it_pass(
    registry: ModelRegistry, world: World, name: str
) -> None:
    champion = _champion(registry, name, world)
    worse = register(registry, name, world.model(informative=False), world)
    assert not worse.verdict.passed
    assert "beats_champion" in {c.name for c in worse.verdict.failures()}
    assert worse.aliases == []  # a failed candidate is not even challenger
    with pytest.raises(ConflictError, match=r"failed its gate.*beats_champion.*needs") as info:
        registry.promote(name, worse.version, "champion", actor="bo", reason="try")
    assert info.value.http_status == 409
    assert registry.alias_version(name, "champion") == champion


def test_a_slice_regression_is_refused(registry: ModelRegistry, world: World, name: str) -> None:
    _champion(registry, name, world)
    good = world.evaluation(world.model())
    # better overall, but brand=2 lost 0.2 of PR-AUC
    slices = {k: dict(v) for k, v in good.slices.items()}
    slices["brand=2"]["pr_auc"] -= 0.2
    overall = {**good.overall, "pr_auc": good.overall["pr_auc"] + 0.01}
    regressed = Evaluation(overall=overall, slices=slices, holdout="h1")
    v = register(registry, name, world.model(), world, evaluation=regressed)
    failed = {c.name: c for c in v.verdict.failures()}
    assert set(failed) == {"no_slice_regression"}
    assert "brand=2" in failed["no_slice_regression"].detail
    with pytest.raises(ConflictError, match="no_slice_regression"):
        registry.promote(name, v.version, "champion", actor="bo", reason="try")


def test_calibration_and_latency_are_gated(
    registry: ModelRegistry, world: World, name: str
) -> None:
    strict = GatePolicy(max_ece=1e-9, latency_budget_ms=1e-6)
    v = register(registry, name, world.model(), world, policy=strict)
    assert {c.name for c in v.verdict.failures()} == {"calibration", "latency"}


def test_a_model_whose_onnx_parity_fails_is_never_registered(
    registry: ModelRegistry, world: World, name: str
) -> None:
    _champion(registry, name, world)
    before = registry.versions(name)
    model = world.model()
    other = world.model(informative=False)
    broken = package(name, model, world, reference=other.predict_proba)
    with registry.start_run("tests", "parity") as run, pytest.raises(ParityError) as info:
        registry.register(broken, world.evaluation(model), run=run, policy=GatePolicy())
    assert "not registered" in info.value.message and "max |onnx - framework|" in info.value.message
    assert registry.versions(name) == before


def test_rollback_restores_the_previous_champion(
    registry: ModelRegistry, world: World, name: str
) -> None:
    v1 = _champion(registry, name, world)
    v2 = register(registry, name, world.model(seed=1), world)
    registry.promote(name, v2.version, "champion", actor="bo", reason="refresh")
    event = registry.rollback(name, actor="oncall", reason="alerts on v2")
    assert (event.from_version, event.to_version) == (v2.version, v1)
    assert event.reason == "rollback: alerts on v2"
    assert registry.alias_version(name, "champion") == v1


def test_rollback_without_a_previous_champion_is_refused(
    registry: ModelRegistry, world: World, name: str
) -> None:
    _champion(registry, name, world)
    with pytest.raises(ConflictError, match="no previous champion"):
        registry.rollback(name, actor="oncall", reason="?")


def test_history_answers_which_version_an_alias_pointed_to_at_a_time(
    registry: ModelRegistry, world: World, name: str
) -> None:
    before = datetime.now(UTC)
    v1 = _champion(registry, name, world)
    between = datetime.now(UTC)
    v2 = register(registry, name, world.model(seed=2), world)
    registry.promote(name, v2.version, "champion", actor="bo", reason="refresh")
    after = datetime.now(UTC)
    assert registry.alias_at(name, "champion", before) is None
    assert registry.alias_at(name, "champion", between) == v1
    assert registry.alias_at(name, "champion", after) == v2.version
    assert registry.alias_at(name, "challenger", after) == v2.version
    events = registry.history(name, "champion")
    assert [(e.from_version, e.to_version) for e in events] == [(None, v1), (v1, v2.version)]
    with pytest.raises(InvalidInputError, match="time zone"):
        registry.alias_at(name, "champion", datetime(2026, 1, 1))


def test_a_stale_verdict_cannot_replace_a_newer_champion(
    registry: ModelRegistry, world: World, name: str
) -> None:
    v1 = _champion(registry, name, world)
    v2 = register(registry, name, world.model(seed=3), world)
    v3 = register(registry, name, world.model(seed=4), world)
    assert v2.verdict.champion_version == v3.verdict.champion_version == v1
    registry.promote(name, v3.version, "champion", actor="bo", reason="v3")
    with pytest.raises(ConflictError, match=f"judged against champion v{v1}.*now v{v3.version}"):
        registry.promote(name, v2.version, "champion", actor="bo", reason="v2")


def test_approval_when_the_policy_requires_it(
    registry: ModelRegistry, world: World, name: str
) -> None:
    v = register(
        registry,
        name,
        world.model(),
        world,
        policy=replace(GatePolicy(max_ece=0.1, latency_budget_ms=50.0), require_approval=True),
    )
    with pytest.raises(ConflictError, match="approve"):
        registry.promote(name, v.version, "champion", actor="bo", reason="go")
    registry.approve(name, v.version, actor="head-of-authentication")
    assert registry.promote(name, v.version, "champion", actor="bo", reason="go") is not None
    assert registry.show(name, v.version)["approved_by"] == "head-of-authentication"


def test_concurrent_promotions_leave_a_consistent_state(
    registry: ModelRegistry, world: World, name: str, tmp_path: Path
) -> None:
    versions = [register(registry, name, world.model(seed=s), world).version for s in range(4)]
    settings = Settings(home=Path(registry.tracking_uri.removeprefix("sqlite:///")).parent.parent)
    errors: list[BaseException] = []

    def worker(k: int) -> None:
        reg = ModelRegistry(settings)  # its own connections, as another process would have
        try:
            for i in range(6):
                v = versions[(k + i) % len(versions)]
                reg.promote(name, v, "canary", actor=f"worker-{k}", reason=f"round {i}")
        except BaseException as exc:
            errors.append(exc)
        finally:
            reg.close()

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    moves = registry.history(name, "canary")
    assert len(moves) >= 4
    for before, after in itertools.pairwise(moves):
        assert after.from_version == before.to_version  # every move starts where the last ended
    assert registry.alias_version(name, "canary") == moves[-1].to_version


def test_clearing_an_alias_is_a_logged_move_that_hooks_see(
    registry: ModelRegistry, world: World, name: str
) -> None:
    v = _champion(registry, name, world)
    registry.promote(name, v, "canary", actor="ana", reason="5% of traffic")
    seen: list[PromotionEvent] = []
    registry.subscribe(seen.append)
    event = registry.clear_alias(name, "canary", actor="ana", reason="canary done")
    assert event is not None and (event.from_version, event.to_version) == (v, None)
    assert registry.alias_version(name, "canary") is None
    assert seen[-1].id == event.id
    assert registry.clear_alias(name, "canary", actor="ana", reason="again") is None
    assert registry.alias_at(name, "canary", datetime.now(UTC)) is None


def test_the_promotion_log_refuses_updates_and_deletes(
    registry: ModelRegistry, world: World, name: str
) -> None:
    _champion(registry, name, world)
    with (
        registry.log.engine.connect() as conn,
        pytest.raises(sa.exc.DBAPIError, match="append-only"),
    ):
        conn.execute(sa.text("UPDATE couturier_promotion_log SET actor = 'mallory'"))
    with (
        registry.log.engine.connect() as conn,
        pytest.raises(sa.exc.DBAPIError, match="append-only"),
    ):
        conn.execute(sa.text("DELETE FROM couturier_promotion_log"))
    assert all(e.actor != "mallory" for e in registry.history(name))


def test_alias_moves_are_observable_by_poll_and_hook(
    registry: ModelRegistry, world: World, name: str
) -> None:
    last = registry.events_since()[-1].id if registry.events_since() else 0
    seen: list[PromotionEvent] = []
    registry.subscribe(seen.append)
    v = _champion(registry, name, world)
    polled = [e for e in registry.events_since(last) if e.model == name]
    assert [(e.alias, e.to_version) for e in polled] == [("challenger", v), ("champion", v)]
    assert [e.id for e in seen if e.model == name] == [e.id for e in polled]


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (
            lambda r, n: r.promote("no-such-model", 1, "champion", actor="a", reason="r"),
            NotFoundError,
            "no model 'no-such-model'; registered models:",
        ),
        (
            lambda r, n: r.promote(n, 99, "champion", actor="a", reason="r"),
            NotFoundError,
            "has no version 99; versions: 1",
        ),
        (
            lambda r, n: r.promote(n, 1, "king", actor="a", reason="r"),
            InvalidInputError,
            "no alias 'king'; aliases: champion, challenger, canary, shadow",
        ),
        (
            lambda r, n: r.promote(n, 1, "canary", actor="a", reason=" "),
            InvalidInputError,
            "needs a reason",
        ),
        (lambda r, n: r.load(n, "shadow"), NotFoundError, "has no 'shadow'"),
    ],
)
def test_bad_requests_say_what_exists(
    registry: ModelRegistry, world: World, name: str, call: object, error: type, match: str
) -> None:
    _champion(registry, name, world)
    with pytest.raises(error, match=match):
        call(registry, name)  # type: ignore[operator]


def test_runs_record_lineage_code_environment_slices_and_a_card(
    registry: ModelRegistry, world: World, name: str
) -> None:
    from couturier.registry import ModelCard

    model = world.model()
    ev = world.evaluation(model)
    with registry.start_run(
        "tests", "lineage", lineage={"feature_service": "svc_v1", "time_cutoff": "2026-03-01"}
    ) as run:
        run.log_evaluation(ev)
        run.log_evaluation_plots(world.y, model.predict_proba(world.x)[:, 1], "test")
        card = ModelCard(name, "testing the registry", ["synthetic data"], ev, run.lineage)
        v = registry.register(
            package(name, model, world),
            ev,
            run=run,
            policy=GatePolicy(max_ece=0.1, latency_budget_ms=50.0),
            card=card,
        )
    data = registry.client.get_run(v.run_id).data
    assert data.tags["lineage.feature_service"] == "svc_v1"
    assert len(data.tags["code.git_commit"]) in (7, 40) or data.tags["code.git_commit"] == "unknown"
    assert data.tags["env.python"].startswith("3.11")
    assert "slice.brand.1.pr_auc" in data.metrics
    assert data.metrics["pr_auc"] == pytest.approx(ev.overall["pr_auc"])
    arts = {a.path for a in registry.client.list_artifacts(v.run_id, "card")}
    assert arts == {"card/model_card.md", "card/model_card.html"}
    plots = {a.path for a in registry.client.list_artifacts(v.run_id, "plots")}
    assert plots == {"plots/roc.png", "plots/pr.png", "plots/calibration.png"}
    shown = registry.show(name, v.version)
    assert shown["lineage"]["time_cutoff"] == "2026-03-01"
    assert shown["gate"]["passed"] is True


def test_a_loaded_version_runs_and_carries_its_serving_spec(
    registry: ModelRegistry, world: World, name: str
) -> None:
    v = _champion(registry, name, world)
    loaded = registry.load(name, "champion")
    assert loaded.version == v
    assert loaded.spec["thresholds"] == {"review": 0.3, "counterfeit": 0.8}
    assert loaded.spec["features"] == ["f0", "f1", "f2", "f3"]
    assert loaded.spec["inputs"][0]["shape"] == [None, 4]
    (p,) = session(loaded.onnx_model).run(["probabilities"], {"X": world.x[:5]})
    np.testing.assert_allclose(p, world.model().predict_proba(world.x[:5]), atol=1e-5)
    assert json.loads(json.dumps(loaded.spec)) == loaded.spec


# ---- checks that cannot judge say so -------------------------------------------------------
def _judge(
    policy: GatePolicy, candidate: Evaluation, champion: Evaluation | None = None
) -> GateVerdict:
    return judge(
        policy,
        candidate,
        champion,
        champion_version=None if champion is None else 1,
        parity_passed=True,
        parity_max_error=0.0,
        latency_p99_ms=1.0,
    )


_CANDIDATE = Evaluation(
    overall={"pr_auc": 0.5, "ece": 0.4},
    slices={"brand=0": {"n": 50.0, "pr_auc": 0.1}, "brand=1": {"n": 500.0, "pr_auc": 0.5}},
    holdout="h1",
)


def test_a_check_without_a_threshold_is_not_judged_and_does_not_fail_the_gate() -> None:
    verdict = _judge(GatePolicy(max_ece=None, latency_budget_ms=5.0), _CANDIDATE)
    status = {c.name: c.status for c in verdict.checks}
    assert status == {
        "parity": "passed",
        "beats_champion": "not judged",  # no champion: nothing to beat
        "no_slice_regression": "not judged",
        "calibration": "not judged",  # an ECE of 0.4 is neither passed nor failed
        "latency": "passed",
    }
    assert verdict.passed and verdict.failures() == []
    calibration = next(c for c in verdict.checks if c.name == "calibration")
    assert calibration.value == 0.4 and calibration.threshold is None
    assert not calibration.passed and not calibration.failed
    assert {c.name for c in verdict.not_judged()} == {
        "beats_champion",
        "no_slice_regression",
        "calibration",
    }
    # the same candidate under a bound is judged, and fails
    bounded = _judge(GatePolicy(max_ece=0.05, latency_budget_ms=5.0), _CANDIDATE)
    assert [c.name for c in bounded.failures()] == ["calibration"] and not bounded.passed


def test_slices_below_the_minimum_size_are_not_judged() -> None:
    champion = Evaluation(
        overall={"pr_auc": 0.4, "ece": 0.01},
        slices={"brand=0": {"n": 50.0, "pr_auc": 0.9}, "brand=1": {"n": 500.0, "pr_auc": 0.5}},
        holdout="h1",
    )
    policy = GatePolicy(max_ece=None, min_slice_size=100, max_slice_regression=0.05)
    checks = {c.name: c for c in _judge(policy, _CANDIDATE, champion).checks}
    # brand=0 lost 0.8 but has 50 rows: skipped and said so; brand=1 is judged
    assert checks["no_slice_regression"].status == "passed"
    assert "1 slice(s) judged; 1 slice(s) not judged" in checks["no_slice_regression"].detail
    assert checks["beats_champion"].status == "passed"
    assert checks["same_holdout"].status == "passed"
    too_small = _judge(replace(policy, min_slice_size=1000), _CANDIDATE, champion)
    slices_check = next(c for c in too_small.checks if c.name == "no_slice_regression")
    assert slices_check.status == "not judged" and slices_check.value is None
    assert "at least 1000 rows" in slices_check.detail and too_small.passed


def test_a_champion_without_the_metric_is_not_beaten_by_default() -> None:
    champion = Evaluation(overall={"ece": 0.01}, holdout="h1")
    checks = {c.name: c for c in _judge(GatePolicy(max_ece=None), _CANDIDATE, champion).checks}
    assert checks["beats_champion"].status == "not judged"
    assert "has no pr_auc" in checks["beats_champion"].detail


def test_a_check_status_is_one_of_three() -> None:
    with pytest.raises(InvalidInputError, match="passed, failed, not judged"):
        GateCheck("parity", "maybe", None, None, "")  # type: ignore[arg-type]


_OLD_VERDICT = {  # gate/verdict.json as the code before check statuses wrote it
    "passed": False,
    "checks": [
        {"name": "parity", "passed": True, "value": 1e-7, "threshold": None, "detail": "ok"},
        {"name": "beats_champion", "passed": False, "value": 0.3, "threshold": 0.4, "detail": "x"},
        {"name": "calibration", "passed": True, "value": 0.2, "threshold": 1.0, "detail": "ece"},
    ],
    "champion_version": 1,
    "policy": {"metric": "pr_auc", "max_ece": 1.0},
    "evaluated_at": "2026-03-01T00:00:00+00:00",
}


def test_a_verdict_stored_by_the_old_code_still_loads() -> None:
    verdict = GateVerdict.from_dict(_OLD_VERDICT)
    assert [c.status for c in verdict.checks] == ["passed", "failed", "passed"]
    assert [c.name for c in verdict.failures()] == ["beats_champion"]
    assert not verdict.passed and verdict.not_judged() == []
    assert GateVerdict.from_dict(verdict.as_dict()) == verdict  # and round-trips in the new one


def test_an_old_verdict_on_a_version_is_read_and_enforced(
    registry: ModelRegistry, world: World, name: str
) -> None:
    from couturier.registry._registry import GATE_TAG

    v = register(registry, name, world.model(), world)
    registry.client.set_model_version_tag(name, str(v.version), GATE_TAG, json.dumps(_OLD_VERDICT))
    verdict = registry.verdict(name, v.version)
    assert verdict is not None and [c.name for c in verdict.failures()] == ["beats_champion"]
    shown = registry.show(name, v.version)
    assert [c["status"] for c in shown["gate"]["checks"]] == ["passed", "failed", "passed"]
    with pytest.raises(ConflictError, match="beats_champion"):
        registry.promote(name, v.version, "champion", actor="bo", reason="old verdict")


def test_the_model_card_says_which_checks_were_not_judged(tmp_path: Path) -> None:
    from couturier.registry import ModelCard, render_card

    verdict = _judge(GatePolicy(max_ece=None, latency_budget_ms=5.0), _CANDIDATE)
    card = ModelCard("m", "testing", ["none"], _CANDIDATE, {}, verdict=verdict, version=1)
    md, html = (p.read_text() for p in render_card(card, tmp_path))
    assert "| calibration | not judged | 0.4 | - |" in md
    assert "Not judged: beats_champion, no_slice_regression, calibration" in md
    assert "| latency | passed |" in md
    assert '<td class="nj">not judged</td>' in html and "Gate <b>PASSED</b>" in html
