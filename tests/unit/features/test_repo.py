from __future__ import annotations

from pathlib import Path

import pytest
from feast.infra.online_stores.redis import RedisOnlineStore

from couturier.domains.authentication import FEATURES
from couturier.errors import InvalidInputError
from couturier.features import FeatureRepo
from couturier.features._repo import redis_connection_string
from couturier.settings import Settings


def test_redis_urls_become_feast_connection_strings() -> None:
    ms = {"timeout_ms": 100.0, "connect_timeout_ms": 50.0}
    timeouts = "socket_timeout=0.1,socket_connect_timeout=0.05,retry=null"
    assert redis_connection_string("redis://127.0.0.1:6379/2", **ms) == (
        f"127.0.0.1:6379,db=2,{timeouts}"
    )
    assert redis_connection_string("rediss://:pw@cache:6380/0", **ms) == (
        f"cache:6380,db=0,password=pw,ssl=true,{timeouts}"
    )
    with pytest.raises(InvalidInputError, match="redis://"):
        redis_connection_string("http://cache:6379", **ms)


@pytest.mark.parametrize("field", ["timeout_ms", "connect_timeout_ms"])
def test_non_positive_socket_timeouts_are_refused(field: str) -> None:
    ms = {"timeout_ms": 100.0, "connect_timeout_ms": 100.0, field: 0.0}
    with pytest.raises(InvalidInputError) as info:
        redis_connection_string("redis://cache:6379/0", **ms)
    assert info.value.field == field
    assert f"COUTURIER_ONLINE_{field.upper()}" in info.value.message


def test_feasts_redis_client_gets_the_timeouts_and_no_retries(tmp_path: Path) -> None:
    """Feast builds the client from the connection string: what reaches redis-py is what a
    read against a dead or hung Redis costs (with redis-py's default retry, 3 to 12 s)."""
    settings = Settings(home=tmp_path, online_timeout_ms=80, online_connect_timeout_ms=30)
    repo = FeatureRepo(FEATURES, settings, online="redis", redis_url="redis://127.0.0.1:1/0")
    store = repo.store._get_provider().online_store
    assert isinstance(store, RedisOnlineStore)
    client = store._get_client(repo.config.online_store)  # Feast's own client factory
    connection = client.connection_pool.make_connection()
    assert connection.socket_timeout == pytest.approx(0.08)
    assert connection.socket_connect_timeout == pytest.approx(0.03)
    assert connection.retry.get_retries() == 0


def test_the_online_store_setting_picks_redis_in_the_local_profile(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, online_store="redis", redis_url="redis://cache:6379/1")
    repo = FeatureRepo(FEATURES, settings)
    assert repo.online_kind == "redis"
    assert repo.config.online_store.connection_string.startswith("cache:6379,db=1,")
    assert FeatureRepo(FEATURES, Settings(home=tmp_path)).online_kind == "sqlite"


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
