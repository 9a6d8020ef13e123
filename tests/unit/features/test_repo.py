from __future__ import annotations

from pathlib import Path

import pytest

from couturier.domains.authentication import FEATURES
from couturier.errors import InvalidInputError
from couturier.features import FeatureRepo
from couturier.features._repo import redis_connection_string
from couturier.settings import Settings


def test_redis_urls_become_feast_connection_strings() -> None:
    assert redis_connection_string("redis://127.0.0.1:6379/2") == "127.0.0.1:6379,db=2"
    assert (
        redis_connection_string("rediss://:pw@cache:6380/0")
        == "cache:6380,db=0,password=pw,ssl=true"
    )
    with pytest.raises(InvalidInputError, match="redis://"):
        redis_connection_string("http://cache:6379")


def test_redis_online_store_needs_a_url(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="COUTURIER_REDIS_URL"):
        FeatureRepo(FEATURES, Settings(home=tmp_path), online="redis")


def test_definitions_fingerprint_is_stable_and_names_the_service(tmp_path: Path) -> None:
    a = FeatureRepo(FEATURES, Settings(home=tmp_path))
    b = FeatureRepo(FEATURES, Settings(home=tmp_path / "other"))
    assert a.definition_fingerprint() == b.definition_fingerprint()
    objs = a.feast_objects()
    assert objs["service"].name == "authentication_v1"
    assert {k.split(":")[0] for k in objs} == {"entity", "source", "view", "derived", "service"}


def test_a_compute_function_missing_a_column_is_named(tmp_path: Path) -> None:
    import pandas as pd

    from couturier.features import FeatureViewSpec

    repo = FeatureRepo(FEATURES, Settings(home=tmp_path))
    view = FEATURES.view("seller_stats")
    broken = FeatureViewSpec(view.name, view.entity, view.fields, view.ttl, view.compute)
    with pytest.raises(InvalidInputError, match="listings_7d"):
        repo._write_source(broken, pd.DataFrame({"seller_id": [1]}))
