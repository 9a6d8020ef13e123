"""The feature repository: a domain's :class:`FeatureSet` made real in Feast.

Local profile: Parquet sources under ``$COUTURIER_HOME/features/<service>/sources``, Feast's
``duckdb`` offline store over them (its ``file`` store silently drops rows in point-in-time
joins), a SQLite online store and a file registry. Production profile: the same offline store
(sources may live on S3: DuckDB reads ``s3://`` paths), a Redis online store from
``COUTURIER_REDIS_URL`` (socket timeouts from ``COUTURIER_ONLINE_TIMEOUT_MS`` and
``COUTURIER_ONLINE_CONNECT_TIMEOUT_MS``, no client-side retries), and a SQL registry on
``COUTURIER_POSTGRES_DSN``.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from couturier.errors import InvalidInputError, NotFoundError
from couturier.features.types import (
    CREATED_TS,
    EVENT_TS,
    Dtype,
    FeatureSet,
    FeatureViewSpec,
    SourceData,
)
from couturier.schema import schema_lock
from couturier.settings import Settings

__all__ = ["FeatureRepo", "SourceReport"]

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import feast
    from feast import types as ft
    from feast.infra.offline_stores.duckdb import DuckDBOfflineStoreConfig
    from feast.infra.online_stores.redis import RedisOnlineStoreConfig
    from feast.infra.online_stores.sqlite import SqliteOnlineStoreConfig
    from feast.infra.registry.sql import SqlRegistryConfig
    from feast.repo_config import RegistryConfig, RepoConfig

_FEAST_TYPES: dict[Dtype, Any] = {
    "int64": ft.Int64,
    "float64": ft.Float64,
    "string": ft.String,
    "bool": ft.Bool,
}
_PANDAS_TYPES: dict[Dtype, str] = {
    "int64": "Int64",
    "float64": "float64",
    "string": "string",
    "bool": "boolean",
}


@dataclass(frozen=True)
class SourceReport:
    view: str
    rows: int
    path: str
    sha256: str
    min_event: str | None
    max_event: str | None


def redis_connection_string(url: str, *, timeout_ms: float, connect_timeout_ms: float) -> str:
    """``redis://[:password@]host:port/db`` -> Feast's ``host:port,db=N[,password=...],...``.

    Feast hands every ``name=value`` of its connection string, JSON-decoded, to ``redis.Redis``
    (``RedisOnlineStore._get_client``), so the client's socket timeouts are set here:
    ``socket_timeout`` (a read or write on an open connection) and ``socket_connect_timeout``.
    ``retry=null`` turns off redis-py's default retry (3 retries, exponential backoff from 1 s
    to 10 s with jitter), which alone made a read against a killed Redis cost 3 to 12 s
    whatever the timeouts (``docs/decisions/0008-online-store-timeouts-and-breaker.md``): a
    failed read fails once, and the reader's circuit breaker decides when to try again.

    >>> redis_connection_string("redis://cache:6379/2", timeout_ms=100, connect_timeout_ms=50)
    'cache:6379,db=2,socket_timeout=0.1,socket_connect_timeout=0.05,retry=null'
    """
    parsed = urlparse(url)
    if parsed.scheme not in ("redis", "rediss"):
        raise InvalidInputError(
            f"COUTURIER_REDIS_URL={url!r} is not a redis:// URL; e.g. redis://127.0.0.1:6379/0",
            field="redis_url",
        )
    for name, value in (("timeout_ms", timeout_ms), ("connect_timeout_ms", connect_timeout_ms)):
        if not value > 0:
            variable = f"COUTURIER_ONLINE_{name.upper()}"
            raise InvalidInputError(
                f"{name}={value!r}: the online store's socket timeouts must be positive "
                f"milliseconds; set {variable}, e.g. {variable}=100",
                field=name,
            )
    parts = [f"{parsed.hostname or '127.0.0.1'}:{parsed.port or 6379}"]
    db = (parsed.path or "/0").lstrip("/") or "0"
    parts.append(f"db={db}")
    if parsed.password:
        parts.append(f"password={parsed.password}")
    if parsed.scheme == "rediss":
        parts.append("ssl=true")
    parts.append(f"socket_timeout={timeout_ms / 1000:g}")
    parts.append(f"socket_connect_timeout={connect_timeout_ms / 1000:g}")
    parts.append("retry=null")
    return ",".join(parts)


class FeatureRepo:
    """One domain's features in Feast: sources, definitions, stores.

    >>> from couturier.domains.authentication import FEATURES  # doctest: +SKIP
    >>> repo = FeatureRepo(FEATURES, Settings())                  # doctest: +SKIP
    >>> repo.write_sources(marketplace); repo.apply()             # doctest: +SKIP
    """

    def __init__(
        self,
        features: FeatureSet,
        settings: Settings,
        *,
        online: str | None = None,
        redis_url: str | None = None,
    ) -> None:
        self.features = features
        self.settings = settings
        self.root = settings.paths.features / features.service
        self.sources = self.root / "sources"
        self.root.mkdir(parents=True, exist_ok=True)
        kind = (
            online
            or settings.online_store
            or ("redis" if settings.profile == "production" else "sqlite")
        )
        self.online_kind = kind
        self.config = self._config(kind, redis_url or settings.redis_url)
        # Feast's SQL registry creates its tables when it starts: under the schema lock, so
        # replicas that start together on a fresh PostgreSQL never race on that DDL
        registry_url = str(self.config.registry.path)
        with warnings.catch_warnings(), schema_lock(registry_url):
            warnings.simplefilter("ignore")
            self.store = feast.FeatureStore(config=self.config)
            _ = self.store.registry  # Feast builds its registry (and tables) on first access
        self.project = self.config.project

    # ---- configuration ------------------------------------------------------------------
    def _config(self, online: str, redis_url: str | None) -> RepoConfig:
        if online == "redis":
            if not redis_url:
                raise InvalidInputError(
                    "the redis online store needs COUTURIER_REDIS_URL, "
                    "e.g. redis://127.0.0.1:6379/0",
                    field="redis_url",
                )
            online_cfg: Any = RedisOnlineStoreConfig(
                connection_string=redis_connection_string(
                    redis_url,
                    timeout_ms=self.settings.online_timeout_ms,
                    connect_timeout_ms=self.settings.online_connect_timeout_ms,
                )
            )
        elif online == "sqlite":
            online_cfg = SqliteOnlineStoreConfig(path=str(self.root / "online.db"))
        else:
            raise InvalidInputError(
                f"online store {online!r} is not supported; use sqlite or redis", field="online"
            )
        if self.settings.profile == "production" and self.settings.postgres_dsn:
            dsn = self.settings.postgres_dsn.replace("postgresql://", "postgresql+psycopg://", 1)
            registry: RegistryConfig = SqlRegistryConfig(
                registry_type="sql", path=dsn, cache_ttl_seconds=60
            )
        else:
            registry = RegistryConfig(path=str(self.root / "registry.db"), cache_ttl_seconds=0)
        return RepoConfig(
            project=f"couturier_{self.features.service}",
            registry=registry,
            provider="local",
            offline_store=DuckDBOfflineStoreConfig(),
            online_store=online_cfg,
            entity_key_serialization_version=3,
            repo_path=str(self.root),
        )

    # ---- sources (the batch feature job) -------------------------------------------------
    def source_path(self, view: str) -> Path:
        return self.sources / f"{view}.parquet"

    def write_sources(self, data: SourceData) -> list[SourceReport]:
        """Run every view's (and label view's) batch computation; write its source atomically."""
        self.sources.mkdir(parents=True, exist_ok=True)
        return [self._write_source(view, view.compute(data)) for view in self._all_views]

    @property
    def _all_views(self) -> tuple[FeatureViewSpec, ...]:
        return (*self.features.views, *self.features.labels)

    def _write_source(self, view: FeatureViewSpec, frame: pd.DataFrame) -> SourceReport:
        key = view.entity.join_key
        carried = [k for k, v in self.features.key_from.items() if v == view.name]
        expected = [key, *carried, *[f.name for f in view.fields], EVENT_TS, CREATED_TS]
        missing = [c for c in expected if c not in frame.columns]
        if missing:
            raise InvalidInputError(
                f"view {view.name!r}: its compute function returned no column {missing[0]!r}; "
                f"it must return {', '.join(expected)}",
                field=missing[0],
            )
        out = frame[expected].copy()
        for f in view.fields:
            out[f.name] = out[f.name].astype(_PANDAS_TYPES[f.dtype])  # type: ignore[call-overload]
        for ts in (EVENT_TS, CREATED_TS):
            if not isinstance(out[ts].dtype, pd.DatetimeTZDtype):
                raise InvalidInputError(
                    f"view {view.name!r}: column {ts!r} must be time-zone aware (UTC)", field=ts
                )
            out[ts] = out[ts].dt.tz_convert("UTC").dt.as_unit("us")
        out = out.sort_values([EVENT_TS, key], kind="stable").reset_index(drop=True)
        path = self.source_path(view.name)
        tmp = path.with_suffix(".parquet.tmp")
        pq.write_table(pa.Table.from_pandas(out, preserve_index=False), tmp)
        tmp.replace(path)  # readers see the old file or the new one, never half of one
        return SourceReport(
            view=view.name,
            rows=len(out),
            path=str(path),
            sha256=_file_sha256(path),
            min_event=str(out[EVENT_TS].min()) if len(out) else None,
            max_event=str(out[EVENT_TS].max()) if len(out) else None,
        )

    def source_fingerprint(self) -> str:
        """Hash of every source file and of the definitions: what a training set was built from."""
        h = hashlib.sha256(self.definition_fingerprint().encode())
        for view in self._all_views:
            path = self.source_path(view.name)
            if not path.exists():
                raise NotFoundError(
                    f"no source for view {view.name!r}; run `couturier features apply` first",
                    view=view.name,
                )
            h.update(_file_sha256(path).encode())
        return h.hexdigest()

    def definition_fingerprint(self) -> str:
        f = self.features
        spec = {
            "service": f.service_name,
            "views": [
                {
                    "name": v.name,
                    "ttl": v.ttl.total_seconds(),
                    "entity": v.entity.join_key,
                    "fields": [(x.name, x.dtype, repr(x.default)) for x in v.fields],
                    "compute": _source_of(v.compute),
                }
                for v in self._all_views
            ],
            "derived": [
                {
                    "name": d.name,
                    "inputs": list(d.inputs),
                    "fields": [(x.name, x.dtype) for x in d.fields],
                    "transform": _source_of(d.transform),
                }
                for d in f.derived
            ],
        }
        if f.labels:  # only then: the fingerprints of label-free sets stay as they were
            spec["labels"] = [v.name for v in f.labels]
        return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()

    # ---- Feast definitions ------------------------------------------------------------
    def feast_objects(self) -> dict[str, Any]:
        """The Feast entities, sources, views, on-demand views and the feature service."""
        objs: dict[str, Any] = {}
        entities = {
            e.name: feast.Entity(
                name=e.name,
                join_keys=[e.join_key],
                value_type=feast.ValueType.INT64,
                description=e.description,
            )
            for e in self.features.entities
        }
        objs.update({f"entity:{k}": v for k, v in entities.items()})
        views: dict[str, Any] = {}
        for v in self._all_views:
            source = feast.FileSource(
                name=f"{v.name}_source",
                path=str(self.source_path(v.name)),
                timestamp_field=EVENT_TS,
                created_timestamp_column=CREATED_TS,
            )
            schema = [feast.Field(name=v.entity.join_key, dtype=ft.Int64)]
            schema += [
                feast.Field(name=f.name, dtype=_FEAST_TYPES[f.dtype], description=f.description)
                for f in v.fields
            ]
            views[v.name] = feast.FeatureView(
                name=v.name,
                entities=[entities[v.entity.name]],
                ttl=v.ttl,
                schema=schema,
                source=source,
                online=v not in self.features.labels,
                description=v.description,
            )
            objs[f"source:{v.name}"] = source
        objs.update({f"view:{k}": fv for k, fv in views.items()})
        derived = []
        for d in self.features.derived:
            odfv = feast.OnDemandFeatureView(
                name=d.name,
                sources=[views[name] for name in d.inputs],
                schema=[feast.Field(name=f.name, dtype=_FEAST_TYPES[f.dtype]) for f in d.fields],
                udf=d.transform,  # type: ignore[arg-type]
                udf_string=_source_of(d.transform),
                mode="python",
                description=d.description,
            )
            derived.append(odfv)
            objs[f"derived:{d.name}"] = odfv
        objs["service"] = feast.FeatureService(
            name=self.features.service_name,
            features=[*(views[v.name] for v in self.features.views), *derived],
            description=self.features.description,
            tags={"definition_sha256": self.definition_fingerprint()},
        )
        return objs

    def apply(self) -> None:
        """Register the definitions with Feast (idempotent)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.store.apply(list(self.feast_objects().values()))

    def close(self) -> None:
        """Release the registry's database connections (the SQL registry pools them)."""
        registry = self.store.registry
        for attr in ("engine", "read_engine", "write_engine"):
            engine = getattr(registry, attr, None)
            if engine is not None and hasattr(engine, "dispose"):
                engine.dispose()

    def __enter__(self) -> FeatureRepo:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def feature_service(self) -> Any:
        try:
            return self.store.get_feature_service(self.features.service_name)
        except Exception as exc:  # Feast raises its own FeatureServiceNotFoundException
            raise NotFoundError(
                f"feature service {self.features.service_name!r} is not registered; "
                "run `couturier features apply` first",
                service=self.features.service_name,
            ) from exc


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _source_of(fn: Any) -> str:
    try:
        return inspect.getsource(fn)
    except (OSError, TypeError):
        return repr(fn)
