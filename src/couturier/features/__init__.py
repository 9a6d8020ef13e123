"""Features: a Feast-backed store where training and serving meet.

Domains declare their features with the types in :mod:`couturier.features.types`; this layer
makes them real in Feast (DuckDB offline store, SQLite or Redis online store), builds
point-in-time-correct training sets, materializes incrementally and serves online reads, behind
a circuit breaker (:mod:`couturier.breaker`) whose state ``OnlineReader.store_state`` reports.

>>> from couturier.features import FeatureRepo, build_training_set, materialize, OnlineReader
>>> repo = FeatureRepo(domain.features, settings)          # doctest: +SKIP
>>> repo.write_sources(marketplace); repo.apply()          # doctest: +SKIP
>>> ts = build_training_set(repo, entity_frame)            # doctest: +SKIP
>>> materialize(repo); OnlineReader(repo).get([...])       # doctest: +SKIP
"""

from couturier.features._lazy import LazyReader, open_online_reader
from couturier.features._materialize import (
    Freshness,
    ViewMaterialization,
    freshness,
    materialize,
    watermark,
)
from couturier.features._online import OnlineFeatures, OnlineReader, check_entity, read_entity
from couturier.features._repo import FeatureRepo, SourceReport
from couturier.features._training import (
    TrainingSet,
    build_label_set,
    build_training_set,
    validate_entity_frame,
)
from couturier.features.types import (
    DerivedFeatures,
    EntitySpec,
    FeatureField,
    FeatureSet,
    FeatureViewSpec,
)

__all__ = [
    "DerivedFeatures",
    "EntitySpec",
    "FeatureField",
    "FeatureRepo",
    "FeatureSet",
    "FeatureViewSpec",
    "Freshness",
    "LazyReader",
    "OnlineFeatures",
    "OnlineReader",
    "SourceReport",
    "TrainingSet",
    "ViewMaterialization",
    "build_label_set",
    "build_training_set",
    "check_entity",
    "freshness",
    "materialize",
    "open_online_reader",
    "read_entity",
    "validate_entity_frame",
    "watermark",
]
