"""The simulator's promises: determinism, schemas, prevalence, delays, photos, the oracle."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from PIL import Image
from sklearn.metrics import roc_auc_score

from couturier.errors import ConflictError, InvalidInputError, NotFoundError
from couturier.marketplace import (
    TABLES,
    Marketplace,
    SimulationConfig,
    _generate,
    simulate,
    validate,
)
from couturier.marketplace._summary import summarize

CHUNKED = ("listings", "truth", "photos", "verdicts", "interactions", "sales", "price_changes")


def _tables(m: Marketplace) -> dict[str, pa.Table]:
    return {t: m.read_arrow(t) for t in TABLES}


def test_same_seed_same_bytes_whatever_the_chunking_or_workers(tmp_path: Path) -> None:
    a = simulate(
        SimulationConfig.of(listings=240, chunk_size=240, seed=3), tmp_path / "a", workers=1
    )
    b = simulate(
        SimulationConfig.of(listings=240, chunk_size=70, seed=3), tmp_path / "b", workers=2
    )
    ta, tb = _tables(a), _tables(b)
    assert set(CHUNKED) <= set(TABLES)
    for name in TABLES:
        assert ta[name].num_rows > 0, name
        assert ta[name].equals(tb[name]), name
    assert len(b.parts("listings")) == 4
    assert len(b.parts("sales")) == len(b.parts("price_changes")) == 4


def test_another_seed_gives_another_world(tmp_path: Path) -> None:
    a = simulate(SimulationConfig.of(listings=100, seed=1), tmp_path / "a", workers=1)
    b = simulate(SimulationConfig.of(listings=100, seed=2), tmp_path / "b", workers=1)
    assert not a.read_arrow("listings").equals(b.read_arrow("listings"))


def test_every_table_follows_its_declared_schema(market: Marketplace) -> None:
    for name in TABLES:
        frame = market.read(name)
        validate(name, frame)  # raises if broken
        assert len(frame) > 0, name


def test_a_broken_table_is_refused_naming_table_and_column(market: Marketplace) -> None:
    listings = market.read("listings").head(20).copy()
    listings.loc[3, "condition"] = "mint-ish"
    with pytest.raises(InvalidInputError, match=r"listings.*condition"):
        validate("listings", listings)
    listings = market.read("listings").head(20).copy()
    listings.loc[0, "asking_price"] = -10.0
    with pytest.raises(InvalidInputError, match="asking_price"):
        validate("listings", listings)


def test_ids_join_up(market: Marketplace) -> None:
    listings = market.read("listings")
    assert set(listings["seller_id"]) <= set(market.read("sellers")["seller_id"])
    assert set(listings["product_id"]) <= set(market.read("products")["product_id"])
    photos = market.read("photos", ["listing_id"])
    assert photos.groupby("listing_id").size().reindex(listings["listing_id"]).tolist() == (
        listings["n_photos"].tolist()
    )
    inter = market.read("interactions", ["buyer_id", "kind", "listing_id"])
    assert set(inter["buyer_id"]) <= set(market.read("buyers")["buyer_id"])
    assert inter[inter["kind"] == "purchase"].groupby("listing_id").size().max() == 1


def test_counterfeits_come_back_more_often(market: Marketplace) -> None:
    inter = market.read("interactions", ["listing_id", "kind", "occurred_at"])
    truth = market.read("truth", ["listing_id", "is_counterfeit"])
    bought = inter[inter["kind"] == "purchase"].merge(truth)
    returned = set(inter.loc[inter["kind"] == "return", "listing_id"])
    bought["returned"] = bought["listing_id"].isin(returned)
    rate = bought.groupby("is_counterfeit")["returned"].mean()
    assert rate[True] > 3 * rate[False]
    assert rate[False] < 0.1
    first = inter.pivot_table(
        index="listing_id", columns="kind", values="occurred_at", aggfunc="min"
    )
    back = first.dropna(subset=["return"])
    assert (back["return"] > back["purchase"]).all()


def test_listings_span_the_period_in_time_order(market: Marketplace) -> None:
    listed = market.read("listings", ["listed_at"])["listed_at"]
    assert listed.is_monotonic_increasing
    start = pd.Timestamp(market.config.start)
    span_days = (listed.max() - start).total_seconds() / 86400
    assert 0.97 * market.config.days < span_days <= market.config.days


def test_sellers_exist_before_their_listings(market: Marketplace) -> None:
    listings = market.read("listings", ["seller_id", "listed_at"])
    sellers = market.read("sellers", ["seller_id", "created_at"])
    joined = listings.merge(sellers, on="seller_id")
    assert (joined["created_at"] <= joined["listed_at"]).all()


def test_prevalence_and_label_delays_within_tolerance(market: Marketplace) -> None:
    truth = market.read("truth", ["is_counterfeit"])
    n = len(truth)
    tolerance = 4 * np.sqrt(0.04 * 0.96 / n)
    assert abs(truth["is_counterfeit"].mean() - 0.04) < tolerance
    v = market.read("verdicts").merge(market.read("listings", ["listing_id", "listed_at"]))
    delay = (v["decided_at"] - v["listed_at"]).dt.total_seconds() / 86400
    assert delay.min() > 0  # a verdict never precedes its listing
    assert abs(delay.median() - 4.0) < 0.4  # the configured median delay
    assert (v["created_at"] >= v["decided_at"]).all()  # arrival after decision


def test_verdicts_err_at_the_configured_rates(tmp_path: Path) -> None:
    # exaggerated rates so a few hundred listings measure them
    cfg = SimulationConfig.of(
        listings=600, prevalence=0.5, expert_miss_rate=0.2, expert_false_alarm_rate=0.1
    )
    m = simulate(cfg, tmp_path / "noisy", workers=1)
    v = m.read("verdicts").merge(m.read("truth", ["listing_id", "is_counterfeit"]))
    fake = v[v["is_counterfeit"]]
    real = v[~v["is_counterfeit"]]
    assert 0.12 < (fake["verdict"] == "authentic").mean() < 0.28
    assert 0.05 < (real["verdict"] == "counterfeit").mean() < 0.16


def test_verdict_coverage_leaves_listings_unlabelled(tmp_path: Path) -> None:
    m = simulate(SimulationConfig.of(listings=300, verdict_coverage=0.5), tmp_path / "c", workers=1)
    assert 100 < m.counts["verdicts"] < 200


def test_photos_are_decodable_images_of_the_configured_size(tmp_path: Path) -> None:
    m = simulate(SimulationConfig.of(listings=30, image_size=64), tmp_path / "p", workers=1)
    photos = m.read("photos")
    assert (photos.groupby("listing_id")["position"].min() == 0).all()
    assert set(photos.loc[photos["position"] == 0, "view"]) == {"front"}
    for blob in photos["image"].head(12):
        img = Image.open(io.BytesIO(blob))
        assert img.format == "JPEG"
        assert img.size == (64, 64)
        assert img.mode == "RGB"
        assert np.asarray(img).std() > 5  # not a blank frame


def test_serials_follow_the_house_format_unless_flawed(market: Marketplace) -> None:
    listings = market.read("listings", ["listing_id", "brand_id", "serial_number"])
    brands = market.read("brands", ["brand_id", "serial_format"])
    df = listings.merge(brands).merge(market.read("truth", ["listing_id", "is_counterfeit"]))
    df = df[df["serial_number"].notna()]

    def matches(row: pd.Series) -> bool:
        pattern = row["serial_format"].replace("A", "[A-Z]").replace("9", "[0-9]")
        return re.fullmatch(pattern, row["serial_number"]) is not None

    ok = df.apply(matches, axis=1)
    assert ok[~df["is_counterfeit"]].mean() > 0.97  # seller typos are rare
    assert ok[df["is_counterfeit"]].mean() < 0.9  # factories get serials wrong


def test_the_oracle_is_informative_calibrated_and_not_perfect(market: Marketplace) -> None:
    t = market.read("truth", ["is_counterfeit", "oracle_p_counterfeit", "factory_id"])
    auc = roc_auc_score(t["is_counterfeit"], t["oracle_p_counterfeit"])
    assert 0.85 < auc < 0.995  # well above chance, below 1: superfakes exist
    # calibrated: its mean probability matches the observed rate, overall and in bins
    assert abs(t["oracle_p_counterfeit"].mean() - t["is_counterfeit"].mean()) < 0.01
    high = t[t["oracle_p_counterfeit"] > 0.5]
    assert abs(high["is_counterfeit"].mean() - high["oracle_p_counterfeit"].mean()) < 0.12
    # superfakes are the hard ones
    fakes = t[t["is_counterfeit"]]
    crude = fakes.loc[fakes["factory_id"] == 0, "oracle_p_counterfeit"].median()
    superfake = fakes.loc[fakes["factory_id"] == 4, "oracle_p_counterfeit"].median()
    assert crude > 0.9 > superfake


def test_the_oracle_with_measurement_noise_is_the_gaussian_likelihood_ratio() -> None:
    from scipy.stats import norm

    from couturier.marketplace._flaws import DEFAULT_FACTORIES
    from couturier.marketplace._oracle import oracle_logit

    crude = DEFAULT_FACTORIES[:1]
    y = np.array([2.0, -1.0, 3.0, 0.5, -2.0, 1.0])  # measured deviations, sigma units
    visible = np.array([1, 1, 0, 1, 1, 1], dtype=bool)
    noise = np.array([0.5, 0.0, 9.0, 2.0, 0.25, 1.0])
    # y ~ N(a * delta, 1 + noise) if made by the factory, N(0, 1 + noise) if authentic
    sd = np.sqrt(1.0 + noise)
    mean = 0.8 * crude[0].delta_array
    expected = (norm.logpdf(y, mean, sd) - norm.logpdf(y, 0.0, sd))[visible].sum()
    common = (0.5, 0.0, y, visible, False, False, crude, np.ones(1), 0.8)
    assert oracle_logit(*common, noise_var=noise) == pytest.approx(expected)
    # no noise is the exact oracle; a measurement that is all noise says nothing
    assert oracle_logit(*common, noise_var=np.zeros(6)) == pytest.approx(oracle_logit(*common))
    assert oracle_logit(*common, noise_var=np.full(6, 1e9)) == pytest.approx(0.0, abs=1e-6)


def test_difficulty_photos_carry_most_of_the_signal(market: Marketplace) -> None:
    s = summarize(market)
    assert s.tabular_baseline_pr_auc < 0.5
    assert s.oracle_pr_auc > s.tabular_baseline_pr_auc + 0.25
    assert 0.7 < s.oracle_pr_auc <= 1.0


def test_an_existing_run_is_never_overwritten_silently(tmp_path: Path) -> None:
    first = simulate(SimulationConfig.of(listings=20, seed=1), tmp_path / "run", workers=1)
    before = first.read_arrow("listings")
    with pytest.raises(ConflictError, match="--overwrite"):
        simulate(SimulationConfig.of(listings=20, seed=2), tmp_path / "run", workers=1)
    assert Marketplace(tmp_path / "run").read_arrow("listings").equals(before)
    replaced = simulate(
        SimulationConfig.of(listings=20, seed=2), tmp_path / "run", workers=1, overwrite=True
    )
    assert not replaced.read_arrow("listings").equals(before)


def test_a_run_that_fails_midway_leaves_the_previous_one_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = simulate(SimulationConfig.of(listings=40, seed=1), tmp_path / "run", workers=1)
    before = first.read_arrow("photos")
    real = _generate.generate_chunk
    calls = {"n": 0}

    def flaky(world, lo, hi):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk full")
        return real(world, lo, hi)

    monkeypatch.setattr("couturier.marketplace._simulator.generate_chunk", flaky)
    cfg = SimulationConfig.of(listings=40, seed=9, chunk_size=10)
    with pytest.raises(OSError, match="disk full"):
        simulate(cfg, tmp_path / "run", workers=1, overwrite=True)
    assert Marketplace(tmp_path / "run").read_arrow("photos").equals(before)


def test_reading_what_does_not_exist_says_what_does(tmp_path: Path, market: Marketplace) -> None:
    with pytest.raises(NotFoundError, match="couturier simulate"):
        Marketplace(tmp_path / "nothing")
    with pytest.raises(NotFoundError, match="listings"):
        market.read("listingz")
    with pytest.raises(InvalidInputError, match="asking_price"):
        market.read("listings", ["asking_prize"])


def test_chunks_stream_with_bounded_memory(market: Marketplace) -> None:
    sizes = [len(p) for p in market.iter_parts("listings", ["listing_id"])]
    assert sizes == [1000] * 4
