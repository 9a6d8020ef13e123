"""The model registry: MLflow for runs, versions and aliases; gates, audit and time travel on top.

    registry = ModelRegistry(settings)
    with registry.start_run("authentication", "lgbm-2026-03", params=..., lineage=...) as run:
        run.log_evaluation(evaluation)
        version = registry.register(package, evaluation, run=run, policy=policy)
    registry.promote("authentication-listing", version.version, "champion", actor="ana",
                     reason="beats v3 on the March holdout")

Every alias move goes through :meth:`ModelRegistry.promote` (or ``rollback``/``clear_alias``),
which serializes moves per model, checks the gate for ``champion``, moves the MLflow alias and
appends the move to the promotion log in one step.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from couturier.errors import ConflictError, InvalidInputError, NotFoundError
from couturier.evaluation import Evaluation
from couturier.registry._card import ModelCard
from couturier.registry._gates import judge
from couturier.registry._log import PromotionLog
from couturier.registry._packaging import check_parity, describe_io, measure_latency
from couturier.registry._run import LoadedModel, RegisteredVersion, Run
from couturier.registry._tracking import code_version, environment, store_uris
from couturier.registry.types import (
    ALIASES,
    GatePolicy,
    GateVerdict,
    ModelPackage,
    PromotionEvent,
)
from couturier.settings import Settings

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

__all__ = ["ModelRegistry", "ParityError"]

PIP_REQUIREMENTS = ["onnxruntime", "numpy"]
GATE_TAG = "couturier.gate"
ARTIFACTS_DIR = "artifacts"  # beside model.onnx in a version's model folder
APPROVAL_TAG = "couturier.approved_by"


class ParityError(InvalidInputError):
    """ONNX Runtime and the framework disagree: the model is not registered."""


class ModelRegistry:
    """MLflow tracking and registry for a profile, with gates and an audit log."""

    def __init__(self, settings: Settings) -> None:
        for noisy in ("mlflow", "alembic"):  # schema set-up chatter on every new local store
            logging.getLogger(noisy).setLevel(logging.WARNING)
        self.tracking_uri, self.artifact_root, log_url = store_uris(settings)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.client = MlflowClient(
                tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri
            )
        self.log = PromotionLog(log_url)
        self._hooks: list[Callable[[PromotionEvent], None]] = []

    def close(self) -> None:
        self.log.close()

    # ---- tracking ----------------------------------------------------------------------
    def experiment_id(self, name: str) -> str:
        exp = self.client.get_experiment_by_name(name)
        if exp is not None:
            return str(exp.experiment_id)
        try:
            location = f"{self.artifact_root}/{name}" if self.artifact_root else None
            return str(self.client.create_experiment(name, artifact_location=location))
        except MlflowException:  # created meanwhile by another process
            exp = self.client.get_experiment_by_name(name)
            if exp is None:
                raise
            return str(exp.experiment_id)

    @contextmanager
    def start_run(
        self,
        experiment: str,
        run_name: str,
        *,
        params: dict[str, Any] | None = None,
        lineage: dict[str, Any] | None = None,
    ) -> Iterator[Run]:
        """A run tagged with lineage, code version and environment; FAILED if the block raises."""
        tags = {f"lineage.{k}": str(v) for k, v in (lineage or {}).items()}
        tags.update({f"code.{k}": str(v) for k, v in code_version().items()})
        tags.update({f"env.{k}": v for k, v in environment().items()})
        tags["mlflow.runName"] = run_name
        created = self.client.create_run(
            self.experiment_id(experiment), run_name=run_name, tags=tags
        )
        run = Run(self.client, created.info.run_id, experiment, dict(lineage or {}))
        if params:
            run.log_params(params)
        try:
            yield run
        except BaseException:
            self.client.set_terminated(run.run_id, status="FAILED")
            raise
        self.client.set_terminated(run.run_id, status="FINISHED")

    # ---- registration --------------------------------------------------------------------
    def register(
        self,
        package: ModelPackage,
        evaluation: Evaluation,
        *,
        run: Run,
        policy: GatePolicy,
        champion_evaluation: Evaluation | None = None,
        card: ModelCard | None = None,
        actor: str = "pipeline",
    ) -> RegisteredVersion:
        """Check parity, measure latency, judge the gate, then log and register the ONNX model.

        A model whose parity fails is never registered: :class:`ParityError` says why. A model
        whose gate fails is registered (its evidence is worth keeping) but cannot become
        champion; one whose gate passes becomes ``challenger``.
        """
        parity = check_parity(package)
        run.log_json(parity.__dict__, "gate/parity.json")
        if not parity.passed:
            self.client.set_tag(run.run_id, "couturier.parity", "failed")
            raise ParityError(
                f"model {package.name!r} was not registered: {parity.detail}; fix the export "
                "(opset, converter options, dtype) until ONNX Runtime matches the framework",
                field="onnx_model",
            )
        latency = measure_latency(package.onnx_model, package.output, package.first_row())
        champion = self.alias_version(package.name, "champion")
        verdict = judge(
            policy,
            evaluation,
            champion_evaluation if champion is not None else None,
            champion_version=champion,
            parity_passed=True,
            parity_max_error=parity.max_abs_error,
            latency_p99_ms=latency,
        )
        inputs, outputs = describe_io(package.onnx_model)
        spec = package.serving_spec(inputs, outputs)
        run.log_metrics(
            {"onnx_latency_p99_ms": latency, "onnx_parity_max_abs_error": parity.max_abs_error}
        )
        run.log_json(verdict.as_dict(), "gate/verdict.json")
        run.log_json(spec, "model/serving.json")
        if champion_evaluation is not None:
            run.log_json(champion_evaluation.as_dict(), "evaluation/champion_evaluation.json")
        self._log_onnx(run, package)
        self._ensure_model(package.name, package.description)
        mv = self.client.create_model_version(
            package.name,
            source=f"runs:/{run.run_id}/model",
            run_id=run.run_id,
            tags={
                GATE_TAG: json.dumps(verdict.as_dict(), default=str),
                "couturier.gate_passed": str(verdict.passed).lower(),
                "couturier.policy": json.dumps(policy.as_dict()),
                **{f"lineage.{k}": str(v) for k, v in run.lineage.items()},
            },
            description=package.description,
        )
        version = int(mv.version)
        if card is not None:
            card.version, card.verdict = version, verdict
            run.log_card(card)
        aliases: list[str] = []
        if verdict.passed:
            self.promote(
                package.name, version, "challenger", actor=actor, reason="registered; gate passed"
            )
            aliases.append("challenger")
        return RegisteredVersion(package.name, version, run.run_id, verdict, aliases)

    def _log_onnx(self, run: Run, package: ModelPackage) -> None:
        import onnx

        with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            path = Path(tmp) / "model"
            mlflow.onnx.save_model(
                onnx.load_from_string(package.onnx_model),
                str(path),
                pip_requirements=PIP_REQUIREMENTS,  # explicit: inference is slow and unneeded
                # one self-contained file: serving loads model.onnx as bytes, and MLflow's
                # default moves every tensor over 1 KB into side files that bytes cannot reach
                save_as_external_data=False,
            )
            for name, data in package.artifacts.items():
                target = path / ARTIFACTS_DIR / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
            self.client.log_artifacts(run.run_id, str(path), "model")

    def _ensure_model(self, name: str, description: str) -> None:
        try:
            self.client.create_registered_model(name, description=description or None)
        except MlflowException as exc:
            if "RESOURCE_ALREADY_EXISTS" not in str(exc.error_code):
                raise

    # ---- queries ---------------------------------------------------------------------------
    def models(self) -> list[str]:
        return sorted(m.name for m in self.client.search_registered_models())

    def _check_model(self, name: str) -> None:
        try:
            self.client.get_registered_model(name)
        except MlflowException:
            known = self.models()
            raise NotFoundError(
                f"no model {name!r}; registered models: {', '.join(known) or 'none yet'}",
                model=name,
            ) from None

    def versions(self, name: str) -> list[int]:
        self._check_model(name)
        return sorted(int(v.version) for v in self.client.search_model_versions(f"name='{name}'"))

    def _version(self, name: str, version: int) -> Any:
        self._check_model(name)
        try:
            return self.client.get_model_version(name, str(version))
        except MlflowException:
            raise NotFoundError(
                f"model {name!r} has no version {version}; versions: "
                f"{', '.join(map(str, self.versions(name)))}",
                model=name,
                version=version,
            ) from None

    def alias_version(self, name: str, alias: str) -> int | None:
        try:
            return int(self.client.get_model_version_by_alias(name, alias).version)
        except MlflowException:
            return None

    def aliases(self, name: str) -> dict[str, int]:
        self._check_model(name)
        return {k: int(v) for k, v in self.client.get_registered_model(name).aliases.items()}

    def verdict(self, name: str, version: int) -> GateVerdict | None:
        raw = self._version(name, version).tags.get(GATE_TAG)
        return GateVerdict.from_dict(json.loads(raw)) if raw else None

    def show(self, name: str, version: int | None = None) -> dict[str, Any]:
        self._check_model(name)
        if version is None:
            return {
                "name": name,
                "aliases": self.aliases(name),
                "versions": self.versions(name),
            }
        mv = self._version(name, version)
        verdict = self.verdict(name, version)
        return {
            "name": name,
            "version": version,
            "run_id": mv.run_id,
            "created": datetime.fromtimestamp(mv.creation_timestamp / 1000, UTC).isoformat(),
            "aliases": [a for a, v in self.aliases(name).items() if v == version],
            "gate": verdict.as_dict() if verdict else None,
            "approved_by": mv.tags.get(APPROVAL_TAG),
            "lineage": {k[8:]: v for k, v in mv.tags.items() if k.startswith("lineage.")},
        }

    def load(self, name: str, ref: str | int = "champion") -> LoadedModel:
        """The ONNX bytes and serving spec of a version, by alias or number."""
        if isinstance(ref, str) and not ref.isdigit():
            version = self.alias_version(name, ref)
            if version is None:
                self._check_model(name)
                raise NotFoundError(
                    f"model {name!r} has no {ref!r}; aliases: {self.aliases(name) or 'none'}",
                    model=name,
                    alias=ref,
                )
        else:
            version = int(ref)
        mv = self._version(name, version)
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(self.client.download_artifacts(mv.run_id, "model", tmp))
            onnx_bytes = (local / "model.onnx").read_bytes()
            spec = json.loads((local / "serving.json").read_text())
            artifacts = {
                n: (local / ARTIFACTS_DIR / n).read_bytes() for n in spec.get("artifacts", [])
            }
        return LoadedModel(name, version, onnx_bytes, spec, artifacts)

    # ---- moves -----------------------------------------------------------------------------
    def subscribe(self, hook: Callable[[PromotionEvent], None]) -> None:
        """Call ``hook`` after every alias move made by this process."""
        self._hooks.append(hook)

    def promote(
        self,
        name: str,
        version: int,
        alias: str,
        *,
        actor: str,
        reason: str,
        _rollback: bool = False,
    ) -> PromotionEvent | None:
        """Point ``alias`` at ``version``. ``champion`` needs a passed, current gate verdict."""
        self._check_alias(alias, reason)
        mv = self._version(name, version)

        def check(current: int | None) -> None:
            if alias == "champion" and not _rollback:
                self._check_gate(name, version, mv, current)

        return self._move(name, alias, version, actor=actor, reason=reason, check=check)

    def _move(
        self,
        name: str,
        alias: str,
        version: int | None,
        *,
        actor: str,
        reason: str,
        check: Callable[[int | None], None] | None = None,
    ) -> PromotionEvent | None:
        """Point ``alias`` at ``version`` (None: remove it) and log the move, under the lock."""
        with self.log.exclusive(name) as conn:
            current = self.alias_version(name, alias)
            if current == version:
                return None  # already there: nothing to log
            if check is not None:
                check(current)
            if version is None:
                self.client.delete_registered_model_alias(name, alias)
                details: dict[str, Any] = {}
            else:
                self.client.set_registered_model_alias(name, alias, str(version))
                verdict = self.verdict(name, version)
                details = {
                    "gate_passed": verdict.passed if verdict else None,
                    "metrics": {c.name: c.value for c in verdict.checks} if verdict else {},
                }
            event_id = self.log.append(
                conn,
                model=name,
                alias=alias,
                from_version=current,
                to_version=version,
                actor=actor,
                reason=reason,
                details=details,
            )
        event = self.log.events(name, after_id=event_id - 1)[0]
        for hook in self._hooks:
            hook(event)
        return event

    @staticmethod
    def _check_alias(alias: str, reason: str) -> None:
        if alias not in ALIASES:
            raise InvalidInputError(
                f"no alias {alias!r}; aliases: {', '.join(ALIASES)}", field="alias"
            )
        if not reason.strip():
            raise InvalidInputError("an alias move needs a reason (--reason)", field="reason")

    def _check_gate(self, name: str, version: int, mv: Any, champion: int | None) -> None:
        raw = mv.tags.get(GATE_TAG)
        if not raw:
            raise ConflictError(
                f"{name} v{version} has no gate verdict; register it through the registry so "
                "it is judged",
                model=name,
                version=version,
            )
        verdict = GateVerdict.from_dict(json.loads(raw))
        if not verdict.passed:
            failed = "; ".join(
                f"{c.name}: {c.detail} (value {c.value}, needs {c.threshold})"
                for c in verdict.failures()
            )
            raise ConflictError(
                f"{name} v{version} failed its gate and cannot become champion: {failed}",
                model=name,
                version=version,
            )
        if verdict.champion_version != champion:
            raise ConflictError(
                f"{name} v{version} was judged against champion "
                f"v{verdict.champion_version}, but the champion is now v{champion}; "
                "re-evaluate it against the current champion and register again",
                model=name,
                version=version,
            )
        policy = GatePolicy(**json.loads(mv.tags.get("couturier.policy", "{}")))
        if policy.require_approval and not mv.tags.get(APPROVAL_TAG):
            raise ConflictError(
                f"{name} v{version} needs a person's approval before it becomes champion: "
                f"couturier models approve {name} {version} --by YOU",
                model=name,
                version=version,
            )

    def approve(self, name: str, version: int, *, actor: str) -> None:
        self._version(name, version)
        if not actor.strip():
            raise InvalidInputError("an approval needs a name (--by)", field="by")
        self.client.set_model_version_tag(name, str(version), APPROVAL_TAG, actor)

    def clear_alias(
        self, name: str, alias: str, *, actor: str, reason: str
    ) -> PromotionEvent | None:
        """Remove ``alias`` (end a canary, stop a shadow); logged like any move."""
        self._check_alias(alias, reason)
        self._check_model(name)
        return self._move(name, alias, None, actor=actor, reason=reason)

    def rollback(self, name: str, *, actor: str, reason: str) -> PromotionEvent:
        """Point ``champion`` back at the version it pointed to before its last move."""
        self._check_model(name)
        moves = [e for e in self.log.events(name, alias="champion")]
        if not moves or moves[-1].from_version is None:
            raise ConflictError(
                f"{name} has no previous champion to roll back to "
                f"({len(moves)} champion moves logged)",
                model=name,
            )
        previous = moves[-1].from_version
        event = self.promote(
            name, previous, "champion", actor=actor, reason=f"rollback: {reason}", _rollback=True
        )
        if event is None:  # pragma: no cover - the log says the champion is elsewhere
            raise ConflictError(f"{name} champion is already v{previous}", model=name)
        return event

    def history(self, name: str | None = None, alias: str | None = None) -> list[PromotionEvent]:
        if name is not None:
            self._check_model(name)
        return self.log.events(name, alias)

    def alias_at(self, name: str, alias: str, when: datetime) -> int | None:
        """Which version ``alias`` pointed to at ``when`` (None: no version yet, or cleared)."""
        if when.tzinfo is None:
            raise InvalidInputError(
                f"time {when.isoformat()} has no time zone; give one, e.g. {when.isoformat()}Z",
                field="at",
            )
        target = None
        for e in self.history(name, alias):
            if e.at <= when:
                target = e.to_version
        return target

    def events_since(self, after_id: int = 0) -> list[PromotionEvent]:
        """Every alias move after ``after_id``: the cheap poll serving and pipelines use."""
        return self.log.events(after_id=after_id)
