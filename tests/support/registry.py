"""Small real models with known quality, and a helper that registers them (a pytest plugin)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from couturier.evaluation import Evaluation, evaluate
from couturier.registry import GatePolicy, ModelPackage, ModelRegistry, RegisteredVersion


@dataclass
class World:
    """A labelled holdout with a brand slice, and models of known quality."""

    x: np.ndarray
    y: np.ndarray
    brand: np.ndarray

    def model(self, informative: bool = True, seed: int = 0) -> LogisticRegression:
        x = self.x if informative else self.x * np.array([0, 1, 1, 1], dtype=np.float32)
        return LogisticRegression(random_state=seed).fit(x, self.y)

    def evaluation(self, model: Any) -> Evaluation:
        return evaluate(self.y, model.predict_proba(self.x)[:, 1], {"brand": self.brand}, "h1")


@pytest.fixture(scope="module")
def world() -> World:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4000, 4)).astype(np.float32)
    y = (x[:, 0] * 2 + rng.normal(size=4000) > 2.0).astype(int)
    return World(x, y, rng.integers(0, 3, 4000))


def package(name: str, model: Any, world: World, reference: Any = None) -> ModelPackage:
    from skl2onnx import to_onnx

    onx = to_onnx(model, world.x[:1], options={id(model): {"zipmap": False}}, target_opset=17)
    return ModelPackage(
        name=name,
        onnx_model=onx.SerializeToString(),
        features=["f0", "f1", "f2", "f3"],
        reference=reference or model.predict_proba,
        sample=world.x[:300],
        output="probabilities",
        thresholds={"review": 0.3, "counterfeit": 0.8},
    )


POLICY = GatePolicy(
    metric="pr_auc",
    min_improvement=0.0,
    max_slice_regression=0.05,
    min_slice_size=100,
    max_ece=0.1,
    latency_budget_ms=50.0,
)


def register(
    registry: ModelRegistry,
    name: str,
    model: Any,
    world: World,
    evaluation: Evaluation | None = None,
    policy: GatePolicy = POLICY,
) -> RegisteredVersion:
    champion = registry.alias_version(name, "champion")
    champion_eval = None
    if champion is not None:
        loaded = registry.load(name, champion)
        from couturier.registry._packaging import session

        sess = session(loaded.onnx_model)
        (p,) = sess.run(["probabilities"], {"X": world.x})
        champion_eval = evaluate(world.y, p[:, 1], {"brand": world.brand}, "h1")
    with registry.start_run("tests", name, lineage={"simulator_seed": 7}) as run:
        ev = evaluation or world.evaluation(model)
        run.log_evaluation(ev)
        return registry.register(
            package(name, model, world),
            ev,
            run=run,
            policy=policy,
            champion_evaluation=champion_eval,
        )


def champion_and_challenger(
    registry: ModelRegistry, name: str, world: World
) -> tuple[RegisteredVersion, RegisteredVersion]:
    """v1, a weak model, as champion; v2, a better one, registered and judged against it."""
    v1 = register(registry, name, world.model(informative=False), world)
    registry.promote(name, v1.version, "champion", actor="test", reason="first")
    return v1, register(registry, name, world.model(), world)
