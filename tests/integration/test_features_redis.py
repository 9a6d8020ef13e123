"""The feature store with its production online store: a real redis-server."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
import redis

from couturier.domains.authentication import FEATURES
from couturier.errors import DependencyUnavailableError
from couturier.features import FeatureRepo, OnlineReader, build_training_set, materialize
from couturier.marketplace import Marketplace
from couturier.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture
def redis_repo(market: Marketplace, tmp_path: Path, redis_url: str) -> FeatureRepo:
    url = redis_url.rsplit("/", 1)[0] + "/3"  # a database of its own
    redis.Redis.from_url(url).flushdb()
    repo = FeatureRepo(FEATURES, Settings(home=tmp_path), online="redis", redis_url=url)
    repo.write_sources(market)
    repo.apply()
    return repo


def test_redis_online_values_equal_the_offline_ones(
    redis_repo: FeatureRepo, market: Marketplace
) -> None:
    end = datetime(2026, 3, 1, tzinfo=UTC)
    assert {r.status for r in materialize(redis_repo, end)} == {"materialized"}
    assert {r.status for r in materialize(redis_repo, end)} == {"up to date"}
    listings = market.read("listings", ["listing_id", "seller_id", "product_id", "listed_at"])
    sample = listings[listings["listed_at"] < end].sample(25, random_state=5)
    rows = [
        {k: int(v) for k, v in r.items() if k != "listed_at"} for r in sample.to_dict("records")
    ]
    online = OnlineReader(redis_repo).get(rows)
    assert not any(any(v) for v in online.defaulted.values())
    offline = build_training_set(
        redis_repo, sample[["listing_id"]].assign(event_timestamp=pd.Timestamp(end))
    ).frame
    got = online.frame()
    for _, f in FEATURES.all_fields:
        if f.dtype == "string":
            assert got[f.name].tolist() == offline[f.name].tolist(), f.name
        else:
            pd.testing.assert_series_equal(
                pd.to_numeric(got[f.name]).astype(float),
                pd.to_numeric(offline[f.name]).astype(float),
                check_names=False,
                rtol=1e-9,
            )


def test_a_down_online_store_is_a_503_class_error(market: Marketplace, tmp_path: Path) -> None:
    repo = FeatureRepo(
        FEATURES, Settings(home=tmp_path), online="redis", redis_url="redis://127.0.0.1:1/0"
    )
    repo.write_sources(market)
    repo.apply()
    with pytest.raises(DependencyUnavailableError) as info:
        OnlineReader(repo).get([{"listing_id": 1, "seller_id": 1, "product_id": 1}])
    assert info.value.http_status == 503
