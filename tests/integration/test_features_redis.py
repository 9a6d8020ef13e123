"""The feature store with its production online store: a real redis-server.

The outage tests start a private ``redis-server`` of their own (``RedisServer``: a free
loopback port, no persistence), then kill it (SIGKILL) or hang it (SIGSTOP) and bring it back on
the same port, while a reader with its own socket timeouts and circuit breaker keeps reading.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import redis

from couturier.domains.authentication import FEATURES
from couturier.errors import DependencyUnavailableError
from couturier.features import FeatureRepo, OnlineReader, build_training_set, materialize
from couturier.marketplace import Marketplace
from couturier.settings import Settings
from tests.support.servers import RedisServer
from tests.support.wait import wait_for

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
        {str(k): int(v) for k, v in r.items() if k != "listed_at"}
        for r in sample.to_dict("records")
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


# ---- outages of a private redis-server --------------------------------------------------------
DEADLINE_S = 20.0


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    server = RedisServer.start()
    try:
        yield server
    finally:
        if server.process is not None and server.process.poll() is None:
            os.kill(server.process.pid, signal.SIGCONT)  # a hung one must hear the stop
        server.close()


def _outage_repo(tmp_path: Path, server: RedisServer, **settings: Any) -> FeatureRepo:
    return FeatureRepo(
        FEATURES, Settings(home=tmp_path, **settings), online="redis", redis_url=server.url
    )


def _timed_read(reader: OnlineReader, rows: list[dict[str, int]]) -> tuple[float, Any]:
    """(seconds, the answer or the DependencyUnavailableError) of one read."""
    t = time.perf_counter()
    try:
        result: Any = reader.get(rows)
    except DependencyUnavailableError as exc:
        result = exc
    return time.perf_counter() - t, result


def _refused(result: Any) -> bool:
    """Refused by the open breaker (the store was not called), not a failed read."""
    return isinstance(result, DependencyUnavailableError) and result.__cause__ is None


def test_a_killed_redis_is_not_called_once_the_breaker_opens_and_values_return_after_restart(
    private_redis: RedisServer, market: Marketplace, tmp_path: Path
) -> None:
    timeout_s, reset_s = 1.0, 0.5  # socket timeouts far above what a refused read costs
    repo = _outage_repo(
        tmp_path,
        private_redis,
        online_timeout_ms=timeout_s * 1000,
        online_connect_timeout_ms=timeout_s * 1000,
        online_breaker_failures=3,
        online_breaker_reset_s=reset_s,
    )
    repo.write_sources(market)
    repo.apply()
    end = datetime(2026, 3, 1, tzinfo=UTC)
    materialize(repo, end)
    listings = market.read("listings", ["listing_id", "seller_id", "product_id", "listed_at"])
    sample = listings[listings["listed_at"] < end].sample(10, random_state=8)
    rows = [
        {str(k): int(v) for k, v in r.items() if k != "listed_at"}
        for r in sample.to_dict("records")
    ]
    reader = OnlineReader(repo)
    before = reader.get(rows)
    assert not any(any(flags) for flags in before.defaulted.values())

    redis.Redis(port=private_redis.port).save()  # the data survives the crash, as on disk
    private_redis.kill()
    failed: list[tuple[float, Any]] = []

    def read_until_open() -> bool:
        failed.append(_timed_read(reader, rows))
        return reader.store_state == "open"

    wait_for(read_until_open, "the breaker opens on a killed redis", DEADLINE_S)
    assert all(isinstance(r, DependencyUnavailableError) for _, r in failed)
    assert not any(_refused(r) for _, r in failed)  # each of those reached the store
    opened = time.monotonic()
    during = [_timed_read(reader, rows) for _ in range(20)]
    probes = [r for _, r in during if not _refused(r)]
    # refused without calling the store, but for one probe per reset interval that passed
    # (a busy machine may let one through): never a read per request
    assert len(probes) <= (time.monotonic() - opened) / reset_s + 1, probes
    assert all(isinstance(r, DependencyUnavailableError) for _, r in during)
    assert any("circuit breaker is open" in r.message for _, r in during if _refused(r))

    private_redis.run()  # the same port, the data from the snapshot
    restarted = time.monotonic()
    after: list[tuple[float, Any]] = []

    def answered() -> bool:
        after.append(_timed_read(reader, rows))
        return not isinstance(after[-1][1], DependencyUnavailableError)

    wait_for(answered, "reads answer again after the restart", DEADLINE_S)
    back = time.monotonic() - restarted
    failed_probes = [r for _, r in after[:-1] if not _refused(r)]
    assert not failed_probes, "the first probe after the restart should have answered"
    assert back < 5.0, f"values came back {back:.2f} s after restart"  # the bound
    assert reader.store_state == "closed"
    got = after[-1][1]
    assert got.rows == before.rows  # the same values as before the outage
    assert not any(any(flags) for flags in got.defaulted.values())


def test_a_hung_redis_costs_one_socket_timeout_per_read_until_the_breaker_opens(
    private_redis: RedisServer, tmp_path: Path
) -> None:
    """SIGSTOP: the server accepts connections (the kernel does) but never answers."""
    timeout_s = 0.2
    repo = _outage_repo(
        tmp_path,
        private_redis,
        online_timeout_ms=timeout_s * 1000,
        online_breaker_failures=3,
        online_breaker_reset_s=60.0,  # no probe during this test
    )
    repo.apply()
    reader = OnlineReader(repo)
    row = [{"listing_id": 1, "seller_id": 2, "product_id": 3}]
    reader.get(row)  # a pooled connection to the live server
    assert private_redis.process is not None
    os.kill(private_redis.process.pid, signal.SIGSTOP)
    hung = [_timed_read(reader, row) for _ in range(3)]
    for seconds, result in hung:
        assert isinstance(result.__cause__, redis.exceptions.TimeoutError), result
        # ended by the socket timeout: not hanging, not redis-py's retries with backoff
        assert timeout_s * 0.9 <= seconds < timeout_s + 1.5, seconds
    assert reader.store_state == "open"
    refused = [_timed_read(reader, row) for _ in range(20)]
    assert all(_refused(r) for _, r in refused)  # the hung store is not called again
