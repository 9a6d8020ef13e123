"""The marketplace side of discovery, part by part: features, candidates, train/serve parity."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from couturier.domains.discovery._candidates import Candidates
from couturier.domains.discovery._features import (
    FEATURES,
    MAX_BUYER_ID,
    buyer_brand_key,
    derived_features,
)
from couturier.domains.discovery._recs_training import (
    RANKER_FEATURES,
    RecsConfig,
    available_listings,
    fit_candidates,
    ranker_matrix,
    serving_matrix,
    window_labels,
)
from couturier.errors import InvalidInputError
from couturier.marketplace import Marketplace


@pytest.fixture(scope="module")
def at(market: Marketplace) -> pd.Timestamp:
    listed = market.read("listings", ["created_at"])["created_at"]
    return pd.Timestamp(listed.quantile(0.8))


def test_feature_rows_count_only_interactions_that_had_arrived(market: Marketplace) -> None:
    view = FEATURES.view("listing_activity")
    rows = view.compute(market)
    inter = market.read("interactions", ["listing_id", "kind", "created_at"])
    lid = int(inter["listing_id"].value_counts().index[0])
    mine = rows[rows["listing_id"] == lid].sort_values("event_timestamp")
    arrived = inter[inter["listing_id"] == lid]
    for _, row in mine.iterrows():
        so_far = arrived[arrived["created_at"] <= row["event_timestamp"]]
        assert row["listing_views"] == int((so_far["kind"] == "view").sum())
        assert row["listing_likes"] == int((so_far["kind"] == "like").sum())
    # one row at listing time with nothing counted, the last one with everything
    assert mine.iloc[0]["listing_views"] == 0
    assert mine.iloc[-1]["listing_views"] == int((arrived["kind"] == "view").sum())


def test_a_sold_listing_is_flagged_from_its_purchase_on_and_unflagged_by_a_return(
    market: Marketplace,
) -> None:
    rows = FEATURES.view("listing_activity").compute(market)
    inter = market.read("interactions", ["listing_id", "kind", "created_at"])
    returned = inter[inter["kind"] == "return"]["listing_id"]
    assert len(returned), "the session market has returns"
    lid = int(returned.iloc[0])
    last = rows[rows["listing_id"] == lid].sort_values("event_timestamp").iloc[-1]
    assert last["sold"] == 0  # bought, then returned: on sale again
    bought = set(inter[inter["kind"] == "purchase"]["listing_id"]) - set(returned)
    lid = int(sorted(bought)[0])
    assert rows[rows["listing_id"] == lid].sort_values("event_timestamp").iloc[-1]["sold"] == 1


def test_buyer_brand_keys_are_unique_per_pair() -> None:
    keys = buyer_brand_key(np.array([0, 0, 1, 7]), np.array([0, 3, 0, 3]))
    assert len(set(keys.tolist())) == 4
    assert int(buyer_brand_key(2, 5)) == 2 * 1024 + 5
    assert int(buyer_brand_key(MAX_BUYER_ID, 1023)) > 0  # the largest still fits


def test_a_buyer_id_whose_pair_key_would_wrap_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="64 bits"):
        buyer_brand_key(2**54 + 1, 0)  # would wrap onto buyer 1's keys


def test_derived_features_match_by_hand_and_survive_missing_values() -> None:
    out = derived_features(
        {
            "asking_price": [500.0, None],
            "budget": [1000.0, 1000.0],
            "brand_id": [3, 3],
            "favourite_brand": [3, 4],
            "category": ["bag", "shoes"],
            "favourite_category": ["shoes", "shoes"],
        }
    )
    assert out["price_to_budget"][0] == pytest.approx(np.log(0.5))
    assert out["price_to_budget"][1] is None
    assert out["favourite_brand_match"] == [1.0, 0.0]
    assert out["favourite_category_match"] == [0.0, 1.0]


def test_declared_defaults_never_match_each_other() -> None:
    """A store that is down serves brand -1 and category "unknown" on both sides: that is
    not knowing, not a match."""
    out = derived_features(
        {
            "asking_price": [None],
            "budget": [None],
            "brand_id": [-1],
            "favourite_brand": [-1],
            "category": ["unknown"],
            "favourite_category": ["unknown"],
        }
    )
    assert out == {
        "price_to_budget": [None],
        "favourite_brand_match": [None],
        "favourite_category_match": [None],
    }


def test_available_listings_exclude_the_sold_and_the_not_yet_listed(
    market: Marketplace, at: pd.Timestamp
) -> None:
    available = available_listings(market, at)
    listings = market.read("listings", ["listing_id", "created_at"])
    later = set(listings[listings["created_at"] > at]["listing_id"])
    assert not later & set(available["listing_id"])
    inter = market.read("interactions", ["listing_id", "kind", "created_at"])
    inter = inter[inter["created_at"] <= at]
    sold = set(inter[inter["kind"] == "purchase"]["listing_id"]) - set(
        inter[inter["kind"] == "return"]["listing_id"]
    )
    assert sold and not sold & set(available["listing_id"])


def test_candidates_come_from_the_buyers_top_products_newest_first(
    market: Marketplace, at: pd.Timestamp
) -> None:
    cands = fit_candidates(market, at, RecsConfig())
    buyer = int(cands.buyer_ids[0])
    frame = cands.for_buyer(buyer, limit=60)
    assert len(frame) and frame["listing_id"].is_unique
    top = cands.top_products[0]
    assert set(frame["product_id"]) <= set(top.tolist())
    ranks = frame["product_rank"].to_numpy()
    assert (np.diff(ranks) >= 0).all()  # best product first
    for _, group in frame.groupby("product_id"):
        assert (np.diff(group["listed_at_s"].to_numpy()) <= 0).all()  # newest first
        assert len(group) <= cands.per_product
    assert set(frame["listing_id"]) <= set(cands.listings["listing_id"])


def test_candidates_round_trip_through_artifacts(market: Marketplace, at: pd.Timestamp) -> None:
    cands = fit_candidates(market, at, RecsConfig())
    again = Candidates.from_artifacts(cands.to_artifacts())
    buyer = int(cands.buyer_ids[3])
    pd.testing.assert_frame_equal(cands.for_buyer(buyer), again.for_buyer(buyer))
    assert not again.knows(10**12)
    assert again.reference_s == cands.reference_s


def test_a_new_buyer_gets_popular_listings_of_their_segment(
    market: Marketplace, at: pd.Timestamp
) -> None:
    cands = fit_candidates(market, at, RecsConfig())
    shoes = cands.popular("shoes", limit=20)
    assert len(shoes) and set(shoes["category"]) == {"shoes"}
    assert (np.diff(shoes["popularity"].to_numpy()) <= 0).all()
    anything = cands.popular("no such category", limit=20)
    assert len(anything) == 20  # an unknown segment falls back to everyone's favourites


def test_window_labels_grade_the_best_interaction(market: Marketplace, at: pd.Timestamp) -> None:
    available = available_listings(market, at)
    labels = window_labels(market, at, 3.0, available)
    assert set(labels["label"]) <= {1, 2, 3}
    assert labels.duplicated(["buyer_id", "listing_id"]).sum() == 0
    assert set(labels["listing_id"]) <= set(available["listing_id"])


def test_serving_builds_the_same_ranker_inputs_as_training() -> None:
    rng = np.random.default_rng(0)
    n = 12
    frame = pd.DataFrame({name: rng.normal(size=n) for name in RANKER_FEATURES})
    frame["listed_at_s"] = 1_700_000_000 - rng.integers(0, 30 * 86_400, n)
    frame.loc[3, "affinity"] = None  # the store had no value: NaN on both paths
    reference = 1_700_000_000.0
    frame["listing_age_days"] = (reference - frame["listed_at_s"]) / 86_400.0
    store_columns = [c for c in RANKER_FEATURES if c != "listing_age_days"] + ["listed_at_s"]
    rows = [
        {str(k): (None if pd.isna(v) else v) for k, v in r.items()}
        for r in frame[store_columns].to_dict("records")
    ]
    np.testing.assert_array_equal(serving_matrix(frame, rows, reference), ranker_matrix(frame))


def test_a_first_ranker_that_does_not_beat_its_baselines_is_withheld() -> None:
    from couturier.domains.discovery._recipe import below_baselines
    from couturier.evaluation import Evaluation

    def ev(ranker: float, candidates: float, popularity: float) -> Evaluation:
        return Evaluation(
            overall={
                "ndcg_at_10": ranker,
                "candidates_ndcg_at_10": candidates,
                "popularity_ndcg_at_10": popularity,
            }
        )

    assert below_baselines(ev(0.07, 0.03, 0.01)) is None
    reason = below_baselines(ev(0.0042, 0.0032, 0.0049))
    assert reason is not None and "popularity (0.0049)" in reason
    assert below_baselines(ev(0.03, 0.03, 0.01)) is not None  # a tie is not a win
