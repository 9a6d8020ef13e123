"""``Marketplace.at``: the marketplace as the platform knew it at a moment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from couturier.errors import InvalidInputError
from couturier.marketplace import Marketplace


def test_a_view_holds_only_what_had_arrived(market: Marketplace) -> None:
    when = market.config.start + timedelta(days=30)
    seen = market.at(when)
    for table, column in (
        ("listings", "created_at"),
        ("verdicts", "created_at"),
        ("photos", "created_at"),
        ("interactions", "created_at"),
        ("sales", "created_at"),
    ):
        full = market.read(table, columns=[column])
        part = seen.read(table, columns=[column])
        assert 0 < len(part) < len(full), table
        assert (part[column] <= when).all() and (full[column] <= when).sum() == len(part)
    # sellers cut prices 30 days after listing at the earliest: none known on day 30 yet
    later = market.config.start + timedelta(days=60)
    cuts = market.read("price_changes", ["changed_at", "created_at"])
    known = market.at(later).read("price_changes", ["created_at"])
    assert len(seen.read("price_changes")) == 0
    assert 0 < len(known) == (cuts["created_at"] <= later).sum() < len(cuts)
    listed = set(seen.read("listings", columns=["listing_id"])["listing_id"])
    truth = seen.read("truth", columns=["is_counterfeit"])
    assert len(truth) == len(listed)
    assert set(seen.read("truth")["listing_id"]) == listed
    # chunked reading sees the same rows
    assert sum(len(p) for p in seen.iter_parts("listings", ["listing_id"])) == len(listed)
    # the products and brands are static: all of them
    assert len(seen.read("products")) == len(market.read("products"))


def test_a_verdict_counts_from_when_it_arrived_not_when_it_was_decided(market: Marketplace) -> None:
    v = market.read("verdicts", columns=["decided_at", "created_at"])
    late = v[v["created_at"] > v["decided_at"] + timedelta(hours=1)].iloc[0]
    between = late["decided_at"] + (late["created_at"] - late["decided_at"]) / 2
    seen = market.at(between.to_pydatetime()).read("verdicts", columns=["created_at"])
    assert not (seen["created_at"] == late["created_at"]).any()


def test_a_naive_time_is_refused(market: Marketplace) -> None:
    with pytest.raises(InvalidInputError, match="time zone"):
        market.at(datetime(2026, 2, 1))
    assert market.at(datetime(2026, 2, 1, tzinfo=UTC)).as_of is not None
