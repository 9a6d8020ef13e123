"""Point-in-time correctness: a hand-built world where the answers are known by construction.

One seller, three listings, one late verdict, one backfilled feature row. If any future value
leaks into an earlier row, or a row without features is dropped, these tests fail.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from couturier.domains.authentication import FEATURES
from couturier.errors import InvalidInputError
from couturier.features import (
    EntitySpec,
    FeatureField,
    FeatureRepo,
    FeatureSet,
    FeatureViewSpec,
    build_label_set,
    build_training_set,
)
from couturier.features.types import CREATED_TS, EVENT_TS
from couturier.settings import Settings


def day(n: float) -> pd.Timestamp:
    return pd.Timestamp("2026-03-01", tz="UTC") + pd.Timedelta(days=n)


class Tables:
    """A SourceData made of hand-written frames."""

    def __init__(self, **tables: pd.DataFrame) -> None:
        self.tables = tables

    def read(self, table: str, columns: list[str] | None = None) -> pd.DataFrame:
        df = self.tables[table]
        return df[columns].copy() if columns else df.copy()


def _world() -> Tables:
    listing = {
        "seller_id": 1,
        "product_id": 0,
        "brand_id": 0,
        "category": "bag",
        "asking_price": 800.0,
        "condition": "good",
        "title": "t",
        "description": "d",
        "serial_number": None,
        "n_photos": 2,
    }
    listings = pd.DataFrame(
        [
            {**listing, "listing_id": 10, "listed_at": day(0.5), "created_at": day(0.5)},
            {**listing, "listing_id": 11, "listed_at": day(3.5), "created_at": day(3.5)},
            {
                **listing,
                "listing_id": 12,
                "listed_at": day(6.5),
                "created_at": day(6.5),
                "serial_number": "AB12",
            },
        ]
    )
    verdicts = pd.DataFrame(
        {  # decided on day 1, but reaches the platform only on day 5
            "verdict_id": [10],
            "listing_id": [10],
            "expert_id": [0],
            "verdict": ["counterfeit"],
            "decided_at": [day(1.2)],
            "created_at": [day(5.2)],
        }
    )
    control_points = pd.DataFrame(
        {  # verdict 10's report: two points, and one row naming a point that does not exist
            "check_id": [80, 81, 82],
            "verdict_id": [10, 10, 10],
            "listing_id": [10, 10, 10],
            "expert_id": [0, 0, 0],
            "control_point": ["stitch_density", "logo_typeface", "zip_pull"],
            "result": ["fail", "pass", "fail"],
            "measurement": [14.0, None, None],
            "decided_at": [day(1.2)] * 3,
            "created_at": [day(5.2)] * 3,
        }
    )
    return Tables(
        listings=listings,
        verdicts=verdicts,
        control_points=control_points,
        products=pd.DataFrame({"product_id": [0], "brand_id": [0], "reference_price": [1000.0]}),
        brands=pd.DataFrame({"brand_id": [0], "serial_format": ["AA99"]}),
        sellers=pd.DataFrame(
            {"seller_id": [1], "created_at": [day(-10)], "prior_sales": [3], "rating": [4.5]}
        ),
        interactions=pd.DataFrame(
            {
                "listing_id": [10, 10],
                "kind": ["purchase", "return"],
                "created_at": [day(2.0), day(4.5)],
            }
        ),
    )


@pytest.fixture
def repo(tmp_path: Path) -> FeatureRepo:
    r = FeatureRepo(FEATURES, Settings(home=tmp_path))
    r.write_sources(_world())
    r.apply()
    return r


def _frame(rows: list[tuple[int, pd.Timestamp]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["listing_id", "event_timestamp"])


def test_a_late_verdict_counts_only_after_it_arrived(repo: FeatureRepo) -> None:
    ts = build_training_set(repo, _frame([(11, day(3.5)), (12, day(6.5))])).frame
    # listing 11 (day 3.5): the verdict was decided on day 1 but had not arrived
    assert ts.loc[0, "counterfeit_verdicts_total"] == 0
    assert ts.loc[0, "seller_counterfeit_rate"] == pytest.approx(0.04)
    # listing 12 (day 6.5): it arrived on day 5.2, so the day-6 snapshot counts it
    assert ts.loc[1, "counterfeit_verdicts_total"] == 1
    assert ts.loc[1, "verdicts_total"] == 1


def test_a_label_and_its_report_count_only_from_when_they_arrived(repo: FeatureRepo) -> None:
    known = build_label_set(repo, _frame([(10, day(3.0)), (10, day(6.0)), (11, day(6.0))]))
    assert known["listing_id"].tolist() == [10, 10, 11]
    # day 3: decided on day 1.2, but it arrives on day 5.2: no label, no report yet
    assert pd.isna(known.loc[0, "verdict"]) and pd.isna(known.loc[0, "cp_stitch_density"])
    # day 6: the verdict with its report
    assert known.loc[1, "verdict"] == "counterfeit"
    assert known.loc[1, "cp_stitch_density"] == "fail"
    assert known.loc[1, "cp_stitch_density_value"] == 14.0
    assert known.loc[1, "cp_logo_typeface"] == "pass"
    assert pd.isna(known.loc[1, "cp_monogram_angle"])  # not checked
    assert pd.isna(known.loc[2, "verdict"])  # never judged


def test_a_report_that_arrives_after_its_verdict_counts_from_its_own_arrival(
    tmp_path: Path,
) -> None:
    world = _world()
    world.tables["control_points"]["created_at"] = day(8.0)  # filed three days late
    r = FeatureRepo(FEATURES, Settings(home=tmp_path))
    r.write_sources(world)
    r.apply()
    known = build_label_set(r, _frame([(10, day(6.0)), (10, day(9.0))]))
    assert known.loc[0, "verdict"] == "counterfeit"  # the verdict had arrived
    assert pd.isna(known.loc[0, "cp_stitch_density"])  # its report had not
    assert known.loc[1, "verdict"] == "counterfeit"
    assert known.loc[1, "cp_stitch_density"] == "fail"


def test_label_views_are_joined_for_training_but_never_served(repo: FeatureRepo) -> None:
    served = {p.name for p in repo.feature_service().feature_view_projections}
    assert "authentication_labels" not in served and "listing_features" in served
    assert not repo.store.get_feature_view("authentication_labels").online
    ts = build_training_set(repo, _frame([(10, day(6.0))])).frame
    assert "verdict" not in ts.columns and "cp_stitch_density" not in ts.columns


def test_a_refused_report_row_is_logged_and_the_rest_of_the_report_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    r = FeatureRepo(FEATURES, Settings(home=tmp_path))
    with caplog.at_level("WARNING"):
        r.write_sources(_world())
    assert "check_id 82" in caplog.text and "'zip_pull' is unknown" in caplog.text
    r.apply()
    known = build_label_set(r, _frame([(10, day(6.0))]))
    assert known.loc[0, "cp_stitch_density"] == "fail"  # the other rows of the report count


def test_windows_count_only_what_was_known(repo: FeatureRepo) -> None:
    ts = build_training_set(repo, _frame([(10, day(0.5)), (11, day(3.5)), (12, day(6.5))])).frame
    # snapshots are taken at day starts: at day 3 the seller had listed once (day 0.5)
    assert ts["listings_7d"].tolist() == [0, 1, 2]
    assert ts["sales_30d"].tolist() == [0, 1, 1]
    assert ts["returns_total"].tolist() == [0, 0, 1]  # returned on day 4.5
    # the seller's age grows with time, from the day-start snapshot
    assert ts.loc[1, "account_age_days"] == pytest.approx(13.0)


def test_listing_features_are_those_of_the_listing_itself(repo: FeatureRepo) -> None:
    ts = build_training_set(repo, _frame([(12, day(6.5))])).frame
    assert ts.loc[0, "price_ratio"] == pytest.approx(0.8)
    assert ts.loc[0, "serial_stated"] == 1
    assert ts.loc[0, "serial_malformed"] == 0
    assert ts.loc[0, "seller_id"] == 1 and ts.loc[0, "product_id"] == 0


def test_ttl_expires_stale_snapshots_but_keeps_the_row(repo: FeatureRepo) -> None:
    # the last snapshot is day 7; seller_stats has a 2-day TTL; day 12 is past it
    ts = build_training_set(repo, _frame([(12, day(12.0))])).frame
    assert len(ts) == 1
    assert pd.isna(ts.loc[0, "account_age_days"])
    assert pd.isna(ts.loc[0, "listings_7d"])
    assert ts.loc[0, "price_ratio"] == pytest.approx(0.8)  # listing features: long TTL


def test_rows_without_features_keep_their_row_with_nulls_and_are_flagged(
    repo: FeatureRepo,
) -> None:
    ts = build_training_set(repo, _frame([(999, day(6.5)), (11, day(0.1)), (12, day(6.5))]))
    frame = ts.frame
    assert frame["listing_id"].tolist() == [999, 11, 12]  # input order kept, no row lost
    assert frame["price_ratio"].isna().tolist() == [True, True, False]  # 11 not listed yet
    assert frame["unknown_listing"].tolist() == [True, False, False]
    assert ts.unknown == {"listing": [999]}


def test_lineage_names_service_cutoff_and_a_fingerprint_that_moves(repo: FeatureRepo) -> None:
    a = build_training_set(repo, _frame([(11, day(3.5))]))
    b = build_training_set(repo, _frame([(11, day(3.5))]))
    c = build_training_set(repo, _frame([(11, day(4.5))]))
    assert a.lineage["feature_service"] == "authentication_v1"
    assert a.lineage["feature_service_version"] == 1
    assert a.cutoff == day(3.5).to_pydatetime()
    assert a.fingerprint == b.fingerprint != c.fingerprint


def test_a_backfilled_row_is_invisible_before_it_was_written(tmp_path: Path) -> None:
    """Feast's created-timestamp filter: a value for day 2 written on day 5 is unknown on day 3."""
    thing = EntitySpec("thing", "thing_id")

    def compute(_: Any) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "thing_id": [1, 1],
                "value": [1.0, 2.0],
                EVENT_TS: [day(1), day(2)],
                CREATED_TS: [day(1), day(5)],
            }
        )

    fs = FeatureSet(
        service="things",
        version=3,
        root=thing,
        views=(
            FeatureViewSpec(
                "thing_view",
                thing,
                (FeatureField("value", "float64"),),
                timedelta(days=30),
                compute,
            ),
        ),
    )
    repo = FeatureRepo(fs, Settings(home=tmp_path))
    repo.write_sources(Tables())
    repo.apply()
    frame = pd.DataFrame({"thing_id": [1, 1, 1], "event_timestamp": [day(0.5), day(3), day(6)]})
    ts = build_training_set(repo, frame).frame
    assert ts["value"].isna().tolist() == [True, False, False]
    assert ts["value"].tolist()[1:] == [1.0, 2.0]


@pytest.mark.parametrize(
    ("frame", "match"),
    [
        (pd.DataFrame({"listing_id": [1]}), "no column 'event_timestamp'"),
        (pd.DataFrame({"event_timestamp": [day(1)]}), "no column 'listing_id'"),
        (
            pd.DataFrame({"listing_id": [1], "event_timestamp": [pd.Timestamp("2026-03-01")]}),
            "naive timestamps.*tz_localize",
        ),
        (
            pd.DataFrame(
                {"listing_id": [1, 2], "event_timestamp": [pd.Timestamp("2026-03-01"), day(1)]},
                dtype=object,
            ).astype({"listing_id": "int64"}),
            "mixes time-zone-aware and naive",
        ),
        (pd.DataFrame({"listing_id": [1], "event_timestamp": ["yesterday"]}), "not timestamps"),
        (
            pd.DataFrame({"listing_id": ["a"], "event_timestamp": [day(1)]}),
            "ids are integers",
        ),
    ],
)
def test_bad_entity_frames_are_refused_with_the_column_and_the_fix(
    repo: FeatureRepo, frame: pd.DataFrame, match: str
) -> None:
    with pytest.raises(InvalidInputError, match=match):
        build_training_set(repo, frame)


def test_mixed_but_aware_time_zones_are_converted_to_utc(repo: FeatureRepo) -> None:
    paris = (day(6.5) + pd.Timedelta(hours=1)).tz_convert("Europe/Paris")
    frame = pd.DataFrame(
        {"listing_id": [12, 12], "event_timestamp": [day(6.5), paris]}, dtype=object
    ).astype({"listing_id": "int64"})
    ts = build_training_set(repo, frame).frame
    assert str(ts["event_timestamp"].dt.tz) == "UTC"
    assert ts["price_ratio"].tolist() == pytest.approx([0.8, 0.8])
