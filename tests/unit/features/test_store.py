"""The feature store on a simulated marketplace: no leaks, parity, idempotent materialization."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from couturier.domains.authentication import FEATURES
from couturier.features import (
    FeatureRepo,
    OnlineReader,
    build_training_set,
    freshness,
    materialize,
    watermark,
)
from couturier.marketplace import Marketplace
from couturier.settings import Settings


def _timestamp(value: object) -> pd.Timestamp:
    """An ``itertuples`` field of a datetime column: pandas-stubs type it as any scalar."""
    assert isinstance(value, pd.Timestamp)
    return value


@pytest.fixture(scope="module")
def repo(market: Marketplace, tmp_path_factory: pytest.TempPathFactory) -> FeatureRepo:
    r = FeatureRepo(FEATURES, Settings(home=tmp_path_factory.mktemp("features")))
    r.write_sources(market)
    r.apply()
    return r


@pytest.fixture(scope="module")
def training(repo: FeatureRepo, market: Marketplace) -> pd.DataFrame:
    entities = market.read("listings", ["listing_id", "created_at"]).rename(
        columns={"created_at": "event_timestamp"}
    )
    return build_training_set(repo, entities).frame


def test_every_listing_gets_a_row(training: pd.DataFrame, market: Marketplace) -> None:
    assert len(training) == market.counts["listings"]
    assert training["price_ratio"].notna().all()


def test_no_future_verdict_leaks_into_any_row(training: pd.DataFrame, market: Marketplace) -> None:
    """Recompute each row's seller verdict count from raw events, independently of the store."""
    listings = market.read("listings", ["listing_id", "seller_id"])
    verdicts = market.read("verdicts", ["listing_id", "verdict", "created_at"]).merge(listings)
    fake = verdicts[verdicts["verdict"] == "counterfeit"]
    rows = training.sample(400, random_state=0)
    for row in rows.itertuples():
        # the newest snapshot at or before the row
        snapshot = _timestamp(row.event_timestamp).floor("D")
        known = fake[(fake["seller_id"] == row.seller_id) & (fake["created_at"] <= snapshot)]
        if pd.isna(row.counterfeit_verdicts_total):
            continue  # the seller had no snapshot yet: nothing known, nothing leaked
        assert row.counterfeit_verdicts_total == len(known), row.listing_id


def test_verdicts_already_decided_but_not_arrived_are_not_counted(
    training: pd.DataFrame, market: Marketplace
) -> None:
    """Counting by decision time would give larger numbers somewhere; by arrival it must not."""
    listings = market.read("listings", ["listing_id", "seller_id"])
    verdicts = market.read("verdicts", ["listing_id", "verdict", "decided_at", "created_at"])
    verdicts = verdicts.merge(listings)
    per_seller = verdicts.groupby("seller_id")
    leaks = 0
    for row in training.dropna(subset=["verdicts_total"]).sample(300, random_state=1).itertuples():
        snapshot = _timestamp(row.event_timestamp).floor("D")
        v = (
            per_seller.get_group(row.seller_id)
            if row.seller_id in per_seller.groups
            else verdicts[:0]
        )
        by_decision = int((v["decided_at"] <= snapshot).sum())
        by_arrival = int((v["created_at"] <= snapshot).sum())
        assert row.verdicts_total == by_arrival
        leaks += by_decision != by_arrival
    assert leaks > 0  # the sample does contain verdicts decided but not yet arrived


def test_materialization_is_idempotent_and_online_matches_offline(
    repo: FeatureRepo, market: Marketplace
) -> None:
    end = datetime(2026, 3, 20, tzinfo=UTC)
    first = materialize(repo, end)
    assert [r.status for r in first] == ["materialized"] * 3
    assert all(watermark(repo, r.view) == end for r in first)
    again = materialize(repo, end)
    assert [r.status for r in again] == ["up to date"] * 3

    reader = OnlineReader(repo)
    listings = market.read("listings", ["listing_id", "seller_id", "product_id", "listed_at"])
    sample = listings[listings["listed_at"] < end].sample(40, random_state=2)
    rows = [
        {str(k): int(v) for k, v in r.items() if k != "listed_at"}
        for r in sample.to_dict("records")
    ]
    online = reader.get(rows).frame()
    offline = build_training_set(
        repo, sample[["listing_id"]].assign(event_timestamp=pd.Timestamp(end))
    ).frame
    for _, f in FEATURES.all_fields:
        a, b = online[f.name], offline[f.name]
        if f.dtype == "string":
            assert a.tolist() == b.tolist(), f.name
        else:
            np.testing.assert_allclose(
                pd.to_numeric(a).astype(float),
                pd.to_numeric(b).astype(float),
                rtol=1e-9,
                err_msg=f.name,
            )


def test_rows_that_share_an_entity_read_it_once_and_each_get_its_values(
    repo: FeatureRepo, market: Marketplace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ranker's candidates share one buyer: each distinct entity is read once per view, and
    every row still gets its own entities' values, in order, unknown ones included."""
    materialize(repo, datetime(2026, 3, 20, tzinfo=UTC))
    reader = OnlineReader(repo)
    listings = market.read("listings", ["listing_id", "seller_id", "product_id"]).head(6)
    rows = [{str(k): int(v) for k, v in r.items()} for r in listings.to_dict("records")]
    shared = [{**r, "seller_id": rows[0]["seller_id"]} for r in rows]  # one seller, six rows
    shared.insert(3, {**shared[1], "listing_id": 10**9})  # an unknown listing in the middle
    calls: list[int] = []
    original = reader._store.online_read

    def counting(config: Any, view: Any, keys: list[Any], names: Any) -> Any:
        calls.append(len(keys))
        return original(config, view, keys, names)

    monkeypatch.setattr(reader._store, "online_read", counting)
    together = reader.get(shared)
    monkeypatch.undo()
    products = {r["product_id"] for r in shared}
    assert sorted(calls) == sorted([1, len(products), 7])  # the one seller read once
    one_by_one = [reader.get([row]).rows[0] for row in shared]
    assert together.rows == one_by_one
    assert together.missing == {"listing": [10**9]}
    assert together.defaulted["listing"] == [False, False, False, True, False, False, False]


def test_unknown_entities_get_declared_defaults_and_a_flag(repo: FeatureRepo) -> None:
    materialize(repo, datetime(2026, 3, 20, tzinfo=UTC))
    result = OnlineReader(repo).get([{"listing_id": 10**9, "seller_id": 10**9, "product_id": 0}])
    row = result.rows[0]
    assert result.defaulted == {"listing": [True], "seller": [True], "product": [False]}
    assert result.missing == {"listing": [10**9], "seller": [10**9]}
    assert row["listings_30d"] == 0 and row["n_photos"] == 0  # declared defaults
    assert row["rating"] is None  # no default declared
    assert row["seller_counterfeit_rate"] == pytest.approx(0.04)  # derived from defaults
    assert row["product_listings_30d"] > 0


def test_a_run_that_fails_midway_resumes_where_it_stopped(
    market: Marketplace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = FeatureRepo(FEATURES, Settings(home=tmp_path))
    repo.write_sources(market)
    repo.apply()
    end = datetime(2026, 2, 1, tzinfo=UTC)
    real = repo.store.materialize

    def flaky(*args: object, **kwargs: object) -> None:
        if kwargs.get("feature_views") == ["seller_stats"]:
            raise ConnectionError("online store went away")
        real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(repo.store, "materialize", flaky)
    with pytest.raises(ConnectionError):
        materialize(repo, end)
    assert watermark(repo, "listing_features") == end
    assert watermark(repo, "seller_stats") is None  # did not move: the write failed
    monkeypatch.setattr(repo.store, "materialize", real)
    resumed = {r.view: r.status for r in materialize(repo, end)}
    assert resumed == {
        "listing_features": "up to date",
        "seller_stats": "materialized",
        "product_stats": "materialized",
    }


def test_reads_keep_serving_last_good_values_while_materializing(
    market: Marketplace, tmp_path: Path
) -> None:
    repo = FeatureRepo(FEATURES, Settings(home=tmp_path))
    repo.write_sources(market)
    repo.apply()
    materialize(repo, datetime(2026, 2, 1, tzinfo=UTC))
    reader = OnlineReader(repo)
    listings = market.read("listings", ["listing_id", "seller_id", "product_id", "listed_at"])
    early = listings[listings["listed_at"] < pd.Timestamp("2026-01-25", tz="UTC")].head(20)
    rows = [
        {str(k): int(v) for k, v in r.items() if k != "listed_at"} for r in early.to_dict("records")
    ]
    stop = threading.Event()
    failures: list[str] = []
    reads = 0

    def read_loop() -> None:
        nonlocal reads
        while not stop.is_set():
            try:
                result = reader.get(rows)
            except Exception as exc:
                failures.append(repr(exc))
                return
            reads += 1
            if any(any(flags) for flags in result.defaulted.values()):
                failures.append("a known entity was served defaults mid-materialization")
                return

    thread = threading.Thread(target=read_loop)
    thread.start()
    try:
        materialize(repo, datetime(2026, 4, 30, tzinfo=UTC))
    finally:
        stop.set()
        thread.join()
    assert not failures
    assert reads > 0


def test_freshness_reports_age_against_ttl(repo: FeatureRepo) -> None:
    materialize(repo, datetime(2026, 3, 20, tzinfo=UTC))
    at = datetime(2026, 3, 20, 12, tzinfo=UTC)
    rows = {r.view: r for r in freshness(repo, now=at)}
    assert set(rows) == {"listing_features", "seller_stats", "product_stats"}
    seller = rows["seller_stats"]
    assert seller.newest_value_at is not None
    assert seller.newest_value_at <= datetime(2026, 3, 20, tzinfo=UTC)
    assert seller.age_seconds == pytest.approx((at - seller.newest_value_at).total_seconds())
    assert not seller.stale
    later = {r.view: r for r in freshness(repo, now=at + timedelta(days=10))}
    assert later["seller_stats"].stale  # 2-day TTL
    assert not later["listing_features"].stale
