"""The online read path for serving: every feature a request needs, for all its entities.

One call reads each feature view through the configured Feast online store's own
``online_read`` (SQLite or Redis: Feast's key encoding and value format, no copy of them),
fills the declared defaults for entities the store does not know and flags them, then runs the
domain's on-demand transform, the same function Feast runs for training sets.

Why not ``FeatureStore.get_online_features``: it resolves the service, builds protobuf
responses and converts them for every call; measured on this machine it costs ~5 ms per listing
with SQLite, where the store reads themselves take a fraction of that
(``docs/decisions/0003-online-read-path.md``). The parity test checks both paths agree.

A store that is down costs a domain its features, not its capacity: every read goes through a
circuit breaker (:mod:`couturier.breaker`) that, after ``COUTURIER_ONLINE_BREAKER_FAILURES``
consecutive failed reads, refuses reads at once
(:class:`~couturier.errors.DependencyUnavailableError`, the caller serves
:meth:`OnlineReader.defaults`) and lets one probe read through every
``COUTURIER_ONLINE_BREAKER_RESET_S``; Redis reads also have socket timeouts and no client-side
retries (``_repo.redis_connection_string``). Why: ``docs/decisions/
0008-online-store-timeouts-and-breaker.md``.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

from couturier.breaker import Breaker, BreakerOpenError, BreakerState, describe
from couturier.errors import DependencyUnavailableError, InvalidInputError, NotFoundError
from couturier.features._repo import FeatureRepo
from couturier.features.types import FeatureSet, FeatureViewSpec

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from feast.infra.online_stores.redis import RedisOnlineStore
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

__all__ = ["OnlineFeatures", "OnlineReader", "check_entity", "read_entity"]


@dataclass(frozen=True)
class OnlineFeatures:
    """Features for each requested row, with what was served from defaults."""

    rows: list[dict[str, Any]]
    defaulted: dict[str, list[bool]]  # entity name -> per row: served declared defaults
    event_times: dict[str, list[datetime | None]]  # view -> per row: the value's event time
    feature_service: str
    missing: dict[str, list[int]] = field(default_factory=dict)  # entity -> unknown ids

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows)


class OnlineReader:
    """Reads a domain's feature service from the online store.

    Safe to share between threads. Reads go through a circuit breaker: while the store is
    down, :meth:`get` raises :class:`~couturier.errors.DependencyUnavailableError` at once
    and :attr:`store_state` says ``open``.

    >>> reader = OnlineReader(repo)                                          # doctest: +SKIP
    >>> reader.get([{"listing_id": 7, "seller_id": 3, "product_id": 12}])     # doctest: +SKIP
    >>> reader.store_state                                                   # doctest: +SKIP
    'closed'
    """

    def __init__(self, repo: FeatureRepo) -> None:
        self.repo = repo
        self.features = repo.features
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._store = repo.store._get_provider().online_store
                self._views = {
                    v.name: repo.store.get_feature_view(v.name) for v in self.features.views
                }
        except Exception as exc:  # Feast's FeatureViewNotFoundException and kin
            raise NotFoundError(
                f"{self.features.service_name} is not registered in this feature store; "
                "run `couturier features apply` first",
                service=self.features.service_name,
            ) from exc
        self._keys = {v.entity.join_key for v in self.features.views}
        settings = repo.settings
        self._breaker = Breaker(
            f"online store ({repo.online_kind}) of {self.features.service_name}",
            failures=settings.online_breaker_failures,
            reset_s=settings.online_breaker_reset_s,
        )

    @property
    def store_state(self) -> BreakerState:
        """The store's circuit breaker: ``closed`` (reads go to the store), ``open`` (the store
        failed; reads are refused at once until a probe read answers) or ``half-open`` (a
        probe read is in flight)."""
        return self._breaker.state

    def defaults(self, rows: Sequence[Mapping[str, Any]]) -> OnlineFeatures:
        """Every row served from the declared defaults, as when the store is down: what a
        caller degrades to (every entity flagged as defaulted), with the derived features."""
        self._check(rows)
        return self._assemble(
            rows, {spec.name: [(None, None)] * len(rows) for spec in self.features.views}
        )

    def get(self, rows: Sequence[Mapping[str, Any]]) -> OnlineFeatures:
        """Every feature of the service for each row; a row names each entity's join key."""
        self._check(rows)
        kind = self.repo.online_kind
        try:
            results = self._breaker.call(lambda: self._read_quietly(rows))
        except BreakerOpenError:
            breaker = self._breaker
            raise DependencyUnavailableError(
                f"online store ({kind}) not read: its circuit breaker is {breaker.state} after "
                f"{breaker.failures} consecutive failed reads (last: "
                f"{describe(breaker.last_failure)}); one probe read every {breaker.reset_s:g} s "
                "(COUTURIER_ONLINE_BREAKER_RESET_S) closes it once the store answers; serve "
                "the declared defaults meanwhile",
                store=kind,
                breaker=breaker.state,
            ) from None
        except Exception as exc:  # a store outage is the caller's to degrade on
            raise DependencyUnavailableError(
                f"online store ({kind}) read failed: {describe(exc)}",
                store=kind,
                breaker=self._breaker.state,
            ) from exc
        return self._assemble(rows, results)

    def _read_quietly(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return self._read(rows)

    def _check(self, rows: Sequence[Mapping[str, Any]]) -> None:
        for i, row in enumerate(rows):
            for k in self._keys:
                if k not in row:
                    raise InvalidInputError(
                        f"row {i} has no {k!r}; each row needs {', '.join(sorted(self._keys))}",
                        field=k,
                    )
                if not isinstance(row[k], int) or isinstance(row[k], bool):
                    raise InvalidInputError(
                        f"row {i}: {k}={row[k]!r} is not an integer id", field=k
                    )

    def _assemble(
        self, rows: Sequence[Mapping[str, Any]], results: dict[str, list[Any]]
    ) -> OnlineFeatures:
        out: list[dict[str, Any]] = [dict(r) for r in rows]
        defaulted: dict[str, list[bool]] = {}
        event_times: dict[str, list[datetime | None]] = {}
        missing: dict[str, list[int]] = {}
        for spec in self.features.views:
            ids = [int(r[spec.entity.join_key]) for r in rows]
            result = results[spec.name]
            flags = defaulted.setdefault(spec.entity.name, [False] * len(rows))
            times = event_times.setdefault(spec.name, [None] * len(rows))
            for n, (ts, values) in enumerate(result):
                target = out[n]
                if values is None:
                    flags[n] = True
                    missing.setdefault(spec.entity.name, []).append(ids[n])
                    for f in spec.fields:
                        target[f.name] = f.default
                    continue
                times[n] = ts
                for f in spec.fields:
                    v = values.get(f.name)
                    target[f.name] = _python(v) if v is not None else f.default
        for d in self.features.derived:
            names = out[0].keys() if out else []
            columns = {name: [row.get(name) for row in out] for name in names}
            for col, values in d.transform(columns).items():
                for n, value in enumerate(values):
                    out[n][col] = value
        return OnlineFeatures(
            rows=out,
            defaulted=defaulted,
            event_times=event_times,
            feature_service=self.features.service_name,
            missing=missing,
        )

    @staticmethod
    def _entity_keys(key: str, ids: Sequence[int]) -> list[EntityKey]:
        return [EntityKey(join_keys=[key], entity_values=[Value(int64_val=i)]) for i in ids]

    def _read(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
        """Each view's ``(event time, values)`` per row, through the Feast store's own code.

        Each distinct entity is read once per view, however many rows name it (a ranker's 60
        candidates share one buyer). Redis: every view's HMGETs in one pipeline (one round
        trip), using the store's own key and field encoding and value decoding. Other stores:
        their ``online_read`` per view.
        """
        picks: dict[str, tuple[list[int], list[int]]] = {}  # view -> (distinct ids, row -> id)
        for s in self.features.views:
            first: dict[int, int] = {}
            at = [first.setdefault(int(r[s.entity.join_key]), len(first)) for r in rows]
            picks[s.name] = (list(first), at)
        got = self._read_distinct(picks)
        return {name: [got[name][i] for i in at] for name, (_, at) in picks.items()}

    def _read_distinct(
        self, picks: Mapping[str, tuple[list[int], list[int]]]
    ) -> dict[str, list[Any]]:
        store: Any = self._store
        config = self.repo.config
        specs = self.features.views
        if not isinstance(store, RedisOnlineStore):
            return {
                s.name: store.online_read(
                    config,
                    self._views[s.name],
                    self._entity_keys(s.entity.join_key, picks[s.name][0]),
                    s.feature_names,
                )
                for s in specs
            }
        commands: list[tuple[bytes, list[Any]]] = []
        plan = []
        for s in specs:
            names, fields = store._generate_hset_keys_for_features(
                self._views[s.name], list(s.feature_names)
            )
            keys = store._generate_redis_keys_for_entities(
                config, self._entity_keys(s.entity.join_key, picks[s.name][0])
            )
            plan.append((s.name, names, len(commands), len(keys)))
            commands.extend((k, fields) for k in keys)
        replies = store._read_hash_fields(config, commands)
        return {
            name: store._convert_redis_values_to_protobuf(replies[at : at + n], name, names)
            for name, names, at, n in plan
        }


def _python(value: Value) -> Any:
    kind = value.WhichOneof("val")
    if kind is None or kind == "null_val":
        return None
    return getattr(value, kind)


def check_entity(features: FeatureSet, entity: str) -> list[FeatureViewSpec]:
    """The views of ``entity``; refuse an entity the feature set does not have."""
    specs = [v for v in features.views if v.entity.name == entity]
    if not specs:
        names = sorted({v.entity.name for v in features.views})
        raise InvalidInputError(
            f"no entity {entity!r} in {features.service_name}; entities: {', '.join(names)}",
            field="entity",
        )
    return specs


def read_entity(reader: OnlineReader, entity: str, entity_id: int) -> dict[str, Any]:
    """The stored features of one entity, view by view (for inspection, not serving)."""
    specs = check_entity(reader.features, entity)
    out: dict[str, Any] = {"entity": entity, "id": entity_id, "views": {}}
    for spec in specs:
        keys = reader._entity_keys(spec.entity.join_key, [entity_id])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ((ts, values),) = reader._store.online_read(
                reader.repo.config, reader._views[spec.name], keys, spec.feature_names
            )
        out["views"][spec.name] = {
            "found": values is not None,
            "event_time": ts.isoformat() if ts else None,
            "features": {
                f.name: (_python(values[f.name]) if values and f.name in values else f.default)
                for f in spec.fields
            },
        }
    return out
