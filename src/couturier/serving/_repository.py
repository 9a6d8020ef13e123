"""The models a server holds: ONNX Runtime sessions for registry versions, by name and version.

At start the repository loads the ``champion`` of every registered model (or the names it is
given). Each loaded version keeps its session, its declared inputs and outputs and its serving
spec; nothing is unpickled (ONNX bytes and JSON only).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from couturier.errors import InvalidInputError, NotFoundError
from couturier.registry import LoadedModel, ModelRegistry, PromotionEvent, session
from couturier.serving._batching import Batcher
from couturier.serving._tensors import DATATYPES, onnx_to_datatype

__all__ = ["LoadedVersion", "ModelRepository"]

log = logging.getLogger("couturier.serving")
#: Models whose single-row call is faster than this run inline in the event loop.
INLINE_BELOW_MS = 0.5


@dataclass
class LoadedVersion:
    name: str
    version: int
    session: Any
    spec: dict[str, Any]
    inputs: list[dict[str, Any]] = field(default_factory=list)
    outputs: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_onnx(
        cls, name: str, version: int, onnx_model: bytes, spec: dict[str, Any], threads: int
    ) -> LoadedVersion:
        sess = session(onnx_model, threads)

        def describe(arg: Any) -> dict[str, Any]:
            return {
                "name": arg.name,
                "datatype": onnx_to_datatype(arg.type),
                "shape": [d if isinstance(d, int) else -1 for d in arg.shape],
            }

        loaded = cls(
            name,
            version,
            sess,
            spec,
            [describe(a) for a in sess.get_inputs()],
            [describe(a) for a in sess.get_outputs()],
        )
        loaded.row_ms = loaded.single_row_ms()  # at load, off the request path
        return loaded

    batcher: Batcher | None = None
    row_ms: float | None = None  # median single-row time, measured by from_onnx

    def __post_init__(self) -> None:
        # asked on every request: computed once
        self.declared = {i["name"]: i for i in self.inputs}
        self.input_names = frozenset(self.declared)
        self.output_names = [o["name"] for o in self.outputs]

    def check(self, feeds: dict[str, np.ndarray], outputs: list[str] | None) -> list[str]:
        """The outputs to return, after checking the request's input and output names."""
        if outputs is None and feeds.keys() == self.input_names:
            return self.output_names  # the common request: every input, every output
        known = set(self.output_names)
        wanted = outputs or self.output_names
        unknown = [o for o in wanted if o not in known]
        if unknown:
            raise InvalidInputError(
                f"model {self.name!r} has no output {unknown[0]!r}; its outputs: "
                f"{', '.join(sorted(known))}",
                field="outputs",
            )
        missing = [i["name"] for i in self.inputs if i["name"] not in feeds]
        if missing:
            raise InvalidInputError(
                f"model {self.name!r} needs input {missing[0]!r}; its inputs: "
                f"{', '.join(i['name'] for i in self.inputs)}",
                field="inputs",
            )
        extra = [n for n in feeds if n not in {i["name"] for i in self.inputs}]
        if extra:
            raise InvalidInputError(
                f"model {self.name!r} has no input {extra[0]!r}; its inputs: "
                f"{', '.join(i['name'] for i in self.inputs)}",
                field="inputs",
            )
        return wanted

    def run_all(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        names = self.output_names
        return dict(zip(names, self.session.run(names, feeds), strict=True))

    def batched(self, inline_below_ms: float = INLINE_BELOW_MS, **options: Any) -> Batcher:
        """This version's batcher, created on first use (inside the serving event loop).

        Runs inline in the event loop, unqueued, when one row takes under ``inline_below_ms``.
        """
        if self.batcher is None:
            if self.row_ms is None:
                self.row_ms = self.single_row_ms()
            inline = self.row_ms < inline_below_ms
            if np.isfinite(self.row_ms):  # a first guess at a call's time, until one is timed
                options.setdefault("call_s", self.row_ms / 1000)
            self.batcher = Batcher(self.run_all, inline=inline, **options)
        return self.batcher

    def single_row_ms(self, runs: int = 20) -> float:
        """Median single-row latency of an all-zero row, in ms (inf when it cannot run)."""
        feeds = self.zero_row()
        try:
            self.run_all(feeds)
            samples = []
            for _ in range(runs):
                t = time.perf_counter()
                self.run_all(feeds)
                samples.append(time.perf_counter() - t)
        except Exception:
            return float("inf")
        return float(np.median(samples) * 1000)

    def zero_row(self) -> dict[str, np.ndarray]:
        return {
            i["name"]: np.zeros(
                [1 if d in (-1, None) else d for d in i["shape"]],
                dtype=DATATYPES.get(i["datatype"], np.float32),
            )
            for i in self.inputs
        }

    def health_check(self) -> str | None:
        """Run one all-zero row through the model: None when it answers finite numbers."""
        feeds = self.zero_row()
        try:
            out = self.run_all(feeds)
        except Exception as exc:  # any failure to answer is a failed check, with its reason
            return f"{type(exc).__name__}: {exc}"
        for name, value in out.items():
            v = np.asarray(value)
            if v.dtype.kind == "f" and not np.isfinite(v).all():
                return f"output {name!r} is not finite on an all-zero input"
        return None


class ModelRepository:
    """Loaded versions by model name, and which of them answers: the default (``champion``),
    an optional ``canary`` that takes a share of unversioned requests, and an optional
    ``shadow`` that sees a copy of them and is only logged.

    Swaps are atomic: a request takes its :class:`LoadedVersion` once and keeps it to the end,
    so a swap never pulls a model from under a request; the previous default stays loaded
    (and addressable by version) until the next swap, which drains it.
    """

    KEEP = 2  # versions kept loaded per model besides canary and shadow: default + previous
    ROLES = ("canary", "shadow")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._models: dict[str, dict[int, LoadedVersion]] = {}
        self._default: dict[str, int] = {}
        self._roles: dict[str, dict[str, int]] = {}  # name -> {"canary": v, "shadow": v}
        self.swaps: list[dict[str, Any]] = []  # what follow() and reload() did, newest last
        #: model -> why its registry version is not the one serving (cleared by a good swap)
        self.problems: dict[str, str] = {}
        self.on_swap: Callable[[str, str, int | None, str | None], None] | None = None

    @classmethod
    def from_registry(
        cls,
        registry: ModelRegistry,
        names: list[str] | None = None,
        alias: str = "champion",
        threads: int | None = None,
    ) -> ModelRepository:
        """The ``alias`` version of each model (every registered one by default), and its
        canary and shadow when the registry has them, so a fresh replica serves as the others.
        """
        repo = cls()
        for name in names if names is not None else registry.models():
            number = registry.alias_version(name, alias)
            if number is None:
                continue  # registered, nothing promoted yet: nothing to serve
            try:
                repo.add(_load(registry, name, number, threads))
            except Exception as exc:  # a broken version must not take the server down
                log.warning("could not load %s v%s: %s", name, number, exc)
                repo.problems[name] = (
                    f"{name} v{number} ({alias}) could not be loaded: {type(exc).__name__}: {exc}"
                )
                continue
            for role in cls.ROLES:
                other = registry.alias_version(name, role)
                if other is None:
                    continue
                try:
                    repo.set_role(name, role, repo._loaded(registry, name, other, threads))
                except Exception as exc:  # the champion serves; the role waits for a fix
                    log.warning("could not load %s v%s as %s: %s", name, other, role, exc)
                    repo._record(name, other, role, f"{type(exc).__name__}: {exc}")
        return repo

    def _loaded(
        self, registry: ModelRegistry, name: str, number: int, threads: int | None
    ) -> LoadedVersion:
        """Version ``number`` of ``name``: the one already loaded (one session, one batcher per
        version, whatever roles it holds), else loaded from the registry."""
        found = self._models.get(name, {}).get(number)
        return found if found is not None else _load(registry, name, number, threads)

    def add(self, version: LoadedVersion) -> None:
        """Load ``version`` and make it the default of its name."""
        with self._lock:
            versions = self._models.setdefault(version.name, {})
            versions[version.version] = version
            self._default[version.name] = version.version
            self._evict(version.name)

    def _evict(self, name: str) -> None:
        versions = self._models[name]
        held = {self._default[name], *self._roles.get(name, {}).values()}
        unheld = [v for v in sorted(versions) if v not in held]
        for old in unheld[: max(0, len(unheld) - (self.KEEP - 1))]:
            del versions[old]  # in-flight requests still hold it; it drains with them

    def set_role(self, name: str, role: str, version: LoadedVersion | None) -> None:
        """Give ``role`` (canary or shadow) to ``version``; None ends the role."""
        if role not in self.ROLES:
            raise InvalidInputError(f"no role {role!r}; roles: canary, shadow", field="role")
        with self._lock:
            roles = self._roles.setdefault(name, {})
            if version is None:
                roles.pop(role, None)
            else:
                self._models.setdefault(name, {})[version.version] = version
                roles[role] = version.version
            if name in self._default:
                self._evict(name)

    def has_roles(self, name: str) -> bool:
        return bool(self._roles.get(name))

    def role(self, name: str, role: str) -> LoadedVersion | None:
        number = self._roles.get(name, {}).get(role)
        return None if number is None else self._models[name].get(number)

    def swap(self, candidate: LoadedVersion, role: str = "champion") -> str | None:
        """Give ``candidate`` the role (``champion``: the default) if it passes its health
        check; else keep the current one and return why (the automatic revert: a failing
        version never answers)."""
        problem = candidate.health_check()
        self._record(candidate.name, candidate.version, role, problem)
        if role == "champion":
            if problem is None:
                self.problems.pop(candidate.name, None)
            else:
                self.problems[candidate.name] = (
                    f"{candidate.name} v{candidate.version} failed its health check: {problem}"
                )
        if problem is None:
            if role == "champion":
                self.add(candidate)
            else:
                self.set_role(candidate.name, role, candidate)
        return problem

    def _record(self, name: str, version: int | None, role: str, problem: str | None) -> None:
        self.swaps.append(
            {
                "model": name,
                "version": version,
                "role": role,
                "at": time.time(),
                "ok": problem is None,
                "problem": problem,
            }
        )

    def reload(
        self,
        registry: ModelRegistry,
        name: str,
        role: str = "champion",
        threads: int | None = None,
    ) -> str | None:
        """Load the registry's ``role`` alias of ``name`` now and swap to it (or end the role
        when the alias is gone). Returns the problem when it could not."""
        number = registry.alias_version(name, role)
        if number is None:
            if role == "champion":
                return f"{name} has no champion in the registry; nothing to serve"
            if self._roles.get(name, {}).get(role) is None:
                return None  # no such role here either: nothing to end
            self.set_role(name, role, None)
            self._record(name, None, role, None)
            return None
        current = (
            self._default.get(name) if role == "champion" else self._roles.get(name, {}).get(role)
        )
        if current == number:
            return None
        try:
            candidate = self._loaded(registry, name, number, threads)
        except Exception as exc:  # a version that cannot load is a failed swap, not a crash
            log.warning("could not load %s v%s: %s", name, number, exc)
            self._record(name, number, role, str(exc))
            if role == "champion":
                self.problems[name] = (
                    f"{name} v{number} could not be loaded: {type(exc).__name__}: {exc}"
                )
            return str(exc)
        return self.swap(candidate, role)

    def handle(
        self, registry: ModelRegistry, event: PromotionEvent, threads: int | None = None
    ) -> None:
        """A :class:`~couturier.serving.Follower` handler: on each move of ``champion``,
        ``canary`` or ``shadow`` of a served model (or a first champion), load, check, swap."""
        if event.alias not in ("champion", *self.ROLES):
            return
        if event.model not in self._models and event.alias != "champion":
            return
        problem = self.reload(registry, event.model, event.alias, threads)
        if self.on_swap is not None:
            self.on_swap(event.model, event.alias, event.to_version, problem)

    def sync(self, registry: ModelRegistry) -> None:
        """Load what the registry's aliases name now, for every registered model (a version
        already serving in its role is left as it is; one that failed to load is retried)."""
        for name in sorted(set(self.names()) | set(registry.models())):
            if registry.alias_version(name, "champion") is None:
                continue  # registered, never promoted: nothing to serve
            for role in ("champion", *self.ROLES):
                problem = self.reload(registry, name, role)
                if problem is not None and self.on_swap is not None:
                    self.on_swap(name, role, None, problem)

    def versions(self, name: str) -> list[int]:
        return sorted(self._models.get(name, {}))

    def loaded(self, name: str) -> list[LoadedVersion]:
        return list(self._models.get(name, {}).values())

    def names(self) -> list[str]:
        return sorted(self._default)

    def get(self, name: str, version: int | str | None = None) -> LoadedVersion:
        versions = self._models.get(name)
        if not versions:
            raise NotFoundError(
                f"no model {name!r} is loaded; loaded models: {', '.join(self.names()) or 'none'}",
                model=name,
            )
        if version is None:
            return versions[self._default[name]]
        try:
            number = int(version)
        except ValueError:
            raise NotFoundError(
                f"version {version!r} of {name!r} is not a number; loaded versions: "
                f"{', '.join(map(str, sorted(versions)))}",
                model=name,
            ) from None
        if number not in versions:
            raise NotFoundError(
                f"version {number} of {name!r} is not loaded; loaded versions: "
                f"{', '.join(map(str, sorted(versions)))}",
                model=name,
                version=number,
            )
        return versions[number]


def _load(
    registry: ModelRegistry, name: str, version: int | str, threads: int | None
) -> LoadedVersion:
    loaded = registry.load(name, version)
    return LoadedVersion.from_onnx(
        name, loaded.version, serving_onnx(loaded), loaded.spec, threads or _threads()
    )


def serving_onnx(loaded: LoadedModel) -> bytes:
    """The ONNX model a version serves: ``model.onnx``, or the variant its spec's
    ``serving_variant`` names (``model.int8.onnx`` beside it): what the version's own domain
    runs, so a remote tier answers what the in-process graph would."""
    variant = loaded.spec.get("serving_variant")
    if variant in (None, "fp32"):
        return loaded.onnx_model
    artifact = f"model.{variant}.onnx"
    if artifact not in loaded.artifacts:
        raise ValueError(
            f"serving_variant {variant!r} names {artifact}, which is not among the version's "
            f"artifacts ({', '.join(sorted(loaded.artifacts)) or 'none'})"
        )
    return loaded.artifacts[artifact]


def _threads() -> int:
    return max(1, (os.cpu_count() or 1) // 2)
