"""Training sets "as known at the time": point-in-time joins that never leak the future.

A row of the entity frame (root key, time T) gets, from each view, the newest feature row whose
``event_timestamp`` *and* ``created_timestamp`` are at or before T and younger than the view's
TTL; Feast's DuckDB offline store does the join (``filter_by_created_timestamp=True``). Rows
without any feature value keep their row, with nulls. The result carries its lineage: feature
service and version, time cutoff, and a fingerprint of the definitions, the sources and the
entity frame, which the registry records with every model trained on it.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

from couturier.errors import InvalidInputError
from couturier.features._repo import FeatureRepo

__all__ = ["TrainingSet", "build_label_set", "build_training_set", "validate_entity_frame"]

ROW = "__row"


@dataclass(frozen=True)
class TrainingSet:
    """A point-in-time-correct training frame and what the registry needs for lineage."""

    frame: pd.DataFrame
    feature_service: str
    feature_service_version: int
    cutoff: datetime
    fingerprint: str
    unknown: dict[str, list[int]] = field(default_factory=dict)

    @property
    def lineage(self) -> dict[str, Any]:
        return {
            "feature_service": self.feature_service,
            "feature_service_version": self.feature_service_version,
            "time_cutoff": self.cutoff.isoformat(),
            "training_set_fingerprint": self.fingerprint,
            "rows": len(self.frame),
            "unknown_entities": {k: len(v) for k, v in self.unknown.items()},
        }


def validate_entity_frame(
    frame: pd.DataFrame, key: str, timestamp: str = "event_timestamp"
) -> pd.DataFrame:
    """Refuse a frame a point-in-time join cannot trust; return it with UTC timestamps."""
    if not isinstance(frame, pd.DataFrame):
        raise InvalidInputError(
            f"the entity frame is a {type(frame).__name__}; pass a pandas DataFrame with "
            f"columns {key!r} and {timestamp!r}",
            field="entity_df",
        )
    for col in (key, timestamp):
        if col not in frame.columns:
            raise InvalidInputError(
                f"the entity frame has no column {col!r} "
                f"(it has {', '.join(map(str, frame.columns))}); a training set needs "
                f"{key!r} and {timestamp!r}, the time each example is as of",
                field=col,
            )
    ts = frame[timestamp]
    if isinstance(ts.dtype, pd.DatetimeTZDtype):
        utc = ts.dt.tz_convert("UTC")
    elif pd.api.types.is_datetime64_dtype(ts.dtype):
        raise InvalidInputError(
            f"column {timestamp!r} holds naive timestamps; a point-in-time join needs a time zone: "
            f"use df[{timestamp!r}] = df[{timestamp!r}].dt.tz_localize('UTC') if they are UTC",
            field=timestamp,
        )
    else:
        zones = {str(getattr(v, "tzinfo", None)) for v in ts.dropna()}
        if not all(isinstance(v, pd.Timestamp | datetime) for v in ts.dropna()):
            raise InvalidInputError(
                f"column {timestamp!r} has dtype {ts.dtype} and values that are not timestamps; "
                "convert it with pd.to_datetime(..., utc=True)",
                field=timestamp,
            )
        if "None" in zones:
            raise InvalidInputError(
                f"column {timestamp!r} mixes time-zone-aware and naive timestamps; "
                "make every value aware, e.g. pd.to_datetime(df[col], utc=True)",
                field=timestamp,
            )
        utc = pd.to_datetime(ts, utc=True)  # mixed zones, all aware: convert each to UTC
    if utc.isna().any():
        raise InvalidInputError(
            f"column {timestamp!r} has {int(utc.isna().sum())} missing timestamps; "
            "every example needs the time it is as of",
            field=timestamp,
        )
    if not pd.api.types.is_integer_dtype(frame[key].dtype):
        raise InvalidInputError(
            f"column {key!r} has dtype {frame[key].dtype}; ids are integers", field=key
        )
    out = frame.copy()
    out[timestamp] = utc.dt.as_unit("us")
    return out


def build_training_set(
    repo: FeatureRepo, entities: pd.DataFrame, *, timestamp: str = "event_timestamp"
) -> TrainingSet:
    """Join every feature of the domain's service onto ``entities`` as known at each row's time."""
    fs = repo.features
    key = fs.root.join_key
    frame = validate_entity_frame(entities, key, timestamp)
    frame[ROW] = range(len(frame))
    unknown: dict[str, list[int]] = {}
    # the other join keys: immutable attributes of the root entity, read from the view source
    by_view: dict[str, list[str]] = {}
    for k, view in fs.key_from.items():
        if k not in frame.columns:
            by_view.setdefault(view, []).append(k)
    root_view = _root_view(repo)
    by_view.setdefault(root_view, [])  # its source also says which root ids exist
    known: set[int] = set()
    for view, keys in by_view.items():
        lookup = pd.read_parquet(repo.source_path(view), columns=[key, *keys])
        if view == root_view:
            known = set(lookup[key])
        if keys:
            lookup = lookup.drop_duplicates(key, keep="last")
            frame = frame.merge(lookup, on=key, how="left")
    missing = sorted(set(frame[key]) - known)
    if missing:
        unknown[fs.root.name] = [int(x) for x in missing]
    for k in fs.key_from:
        frame[k] = frame[k].astype("Int64")
    query = frame.rename(columns={timestamp: "event_timestamp"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        job = repo.store.get_historical_features(
            entity_df=query, features=repo.feature_service(), filter_by_created_timestamp=True
        )
        result = job.to_df()
    result = result.sort_values(ROW).drop(columns=[ROW]).reset_index(drop=True)
    result = result.rename(columns={"event_timestamp": timestamp})
    result[f"unknown_{fs.root.name}"] = result[key].isin(missing)
    h = hashlib.sha256(repo.source_fingerprint().encode())
    h.update(pd.util.hash_pandas_object(frame[[key, timestamp]], index=False).to_numpy().tobytes())
    return TrainingSet(
        frame=result,
        feature_service=fs.service_name,
        feature_service_version=fs.version,
        cutoff=frame[timestamp].max().to_pydatetime(),
        fingerprint=h.hexdigest(),
        unknown=unknown,
    )


def build_label_set(
    repo: FeatureRepo, entities: pd.DataFrame, *, timestamp: str = "event_timestamp"
) -> pd.DataFrame:
    """``entities`` (root key, time T) with every label view's fields as known at T.

    A row gets each label view's newest row whose event time *and* arrival time
    (``created_timestamp``) are at or before T, within the view's TTL, else nulls: a label
    counts only from when it arrived. Ask as of the training cutoff for what a model may learn
    from, and as of today for what judges it.
    """
    fs = repo.features
    if not fs.labels:
        raise InvalidInputError(
            f"feature set {fs.service!r} declares no label views; add them to its "
            "FeatureSet(labels=...)",
            field="labels",
        )
    key = fs.root.join_key
    for view in fs.labels:
        if view.entity.name != fs.root.name:
            raise InvalidInputError(
                f"label view {view.name!r} is of entity {view.entity.name!r}; label views are "
                f"of the root entity {fs.root.name!r}",
                field=view.name,
            )
    frame = validate_entity_frame(entities, key, timestamp)
    frame[ROW] = range(len(frame))
    query = frame[[key, timestamp, ROW]].rename(columns={timestamp: "event_timestamp"})
    refs = [f"{v.name}:{f.name}" for v in fs.labels for f in v.fields]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        job = repo.store.get_historical_features(
            entity_df=query, features=refs, filter_by_created_timestamp=True
        )
        result = job.to_df()
    result = result.sort_values(ROW).drop(columns=[ROW]).reset_index(drop=True)
    return result.rename(columns={"event_timestamp": timestamp})


def _root_view(repo: FeatureRepo) -> str:
    for v in repo.features.views:
        if v.entity.name == repo.features.root.name:
            return v.name
    raise InvalidInputError(
        f"feature set {repo.features.service!r} has no view of its root entity "
        f"{repo.features.root.name!r}",
        field="root",
    )
