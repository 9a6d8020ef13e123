"""The seam between domains and the feature store: what a domain declares.

A domain describes its features with these plain objects; the platform turns them into Feast
entities, feature views, on-demand views and a feature service, writes their sources, builds
training sets, materializes and serves them. Nothing here names a domain.

>>> from datetime import timedelta
>>> seller = EntitySpec("seller", "seller_id")
>>> view = FeatureViewSpec(
...     name="seller_stats", entity=seller, ttl=timedelta(days=2),
...     fields=(FeatureField("listings_30d", "int64", default=0),),
...     compute=lambda market: ...,
... )
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal, Protocol

import pandas as pd

__all__ = [
    "DerivedFeatures",
    "Dtype",
    "EntitySpec",
    "FeatureField",
    "FeatureSet",
    "FeatureViewSpec",
    "SourceData",
]

Dtype = Literal["int64", "float64", "string", "bool"]

#: Every feature source frame carries these two timestamps beside its join key.
EVENT_TS = "event_timestamp"
CREATED_TS = "created_timestamp"


class SourceData(Protocol):
    """What a batch compute function reads: tables by name (the marketplace satisfies it)."""

    def read(self, table: str, columns: list[str] | None = None) -> pd.DataFrame: ...


@dataclass(frozen=True)
class EntitySpec:
    name: str
    join_key: str
    description: str = ""


@dataclass(frozen=True)
class FeatureField:
    """One feature: its type and the value served for an entity the store does not know."""

    name: str
    dtype: Dtype
    default: Any = None
    description: str = ""


@dataclass(frozen=True)
class FeatureViewSpec:
    """A batch feature view: ``compute`` turns source tables into timestamped feature rows.

    ``compute`` returns one row per (entity, event_timestamp) with the join key, the feature
    columns, ``event_timestamp`` (when the values hold) and ``created_timestamp`` (when they
    became known). A training set uses a row only if both are at or before the example's time.
    """

    name: str
    entity: EntitySpec
    fields: tuple[FeatureField, ...]
    ttl: timedelta
    compute: Callable[[SourceData], pd.DataFrame]
    description: str = ""

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.fields]


@dataclass(frozen=True)
class DerivedFeatures:
    """On-demand features: one function, run the same way offline and online.

    ``transform`` gets the input views' features as columns (``{name: [values]}``, one entry
    per row, ``None`` for a missing value) and returns ``{field: [values]}`` for exactly
    ``fields``. Feast runs it in its ``python`` mode over a training set's columns; the online
    reader runs it over a request's rows. It must be self-contained, imports and constants inside:
    Feast stores its source code and runs that, without the defining module's globals.
    """

    name: str
    inputs: tuple[str, ...]
    fields: tuple[FeatureField, ...]
    transform: Callable[[dict[str, list[Any]]], dict[str, list[Any]]]
    description: str = ""


@dataclass(frozen=True)
class FeatureSet:
    """Everything a domain declares about its features, served as one versioned service.

    ``root`` is the entity a training example is about (a listing); ``key_from`` says where
    the other join keys come from: ``{"seller_id": "listing_features"}`` means the source of
    ``listing_features`` carries each root entity's ``seller_id`` (an immutable attribute),
    so a training set needs only the root key and a time. Online, requests carry every key.

    ``labels`` are label views: declared like feature views (of the root entity, with
    ``created_timestamp`` the time a label *arrived*), joined point-in-time by
    :func:`~couturier.features.build_label_set`, so a label counts only from its arrival; they
    are never part of the served feature service and never materialized online.
    """

    service: str
    version: int
    root: EntitySpec
    views: tuple[FeatureViewSpec, ...]
    derived: tuple[DerivedFeatures, ...] = ()
    key_from: Mapping[str, str] = field(default_factory=dict)
    description: str = ""
    labels: tuple[FeatureViewSpec, ...] = ()

    @property
    def service_name(self) -> str:
        return f"{self.service}_v{self.version}"

    def view(self, name: str) -> FeatureViewSpec:
        for v in (*self.views, *self.labels):
            if v.name == name:
                return v
        raise KeyError(name)

    @property
    def entities(self) -> list[EntitySpec]:
        return list({v.entity.name: v.entity for v in self.views}.values())

    @property
    def all_fields(self) -> list[tuple[str, FeatureField]]:
        """(view or derived name, field) for every feature the service serves."""
        out = [(v.name, f) for v in self.views for f in v.fields]
        out += [(d.name, f) for d in self.derived for f in d.fields]
        return out
