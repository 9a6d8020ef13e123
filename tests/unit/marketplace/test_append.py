"""``Marketplace.append`` (events that arrive after the simulation) and ``Marketplace.lookup``."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest

from couturier.errors import InvalidInputError, NotFoundError
from couturier.marketplace import Marketplace


@pytest.fixture
def copy(market: Marketplace, tmp_path: Path) -> Marketplace:
    """A writable copy of the session's marketplace (its tables, not its photos)."""
    target = tmp_path / "run"
    shutil.copytree(market.path, target, ignore=shutil.ignore_patterns("photos"))
    return Marketplace(target)


def _verdict(market: Marketplace, verdict_id: int, listing: int, days: float) -> pd.DataFrame:
    when = pd.Timestamp(market.config.start + timedelta(days=days))
    return pd.DataFrame(
        {
            "verdict_id": [verdict_id],
            "listing_id": [listing],
            "expert_id": [10_001],
            "verdict": ["counterfeit"],
            "decided_at": [when],
            "created_at": [when],
        }
    )


def test_appended_rows_are_read_with_the_others_from_their_arrival(copy: Marketplace) -> None:
    before = len(copy.read("verdicts"))
    part = copy.append("verdicts", _verdict(copy, 2**40, 5, days=30))
    assert part.parent == copy.path / "verdicts" and part.name.startswith("part-z")
    assert copy.parts("verdicts")[-1] == part  # after the simulator's parts
    assert not list((copy.path / "verdicts").glob(".*"))  # no temporary file left behind
    everything = copy.read("verdicts")
    assert len(everything) == before + 1 and 2**40 in set(everything["verdict_id"])
    at = copy.config.start + timedelta(days=30)
    assert 2**40 in set(copy.at(at).read("verdicts")["verdict_id"])
    assert 2**40 not in set(copy.at(at - timedelta(seconds=1)).read("verdicts")["verdict_id"])


def test_bad_rows_are_refused_and_nothing_is_written(copy: Marketplace) -> None:
    parts = copy.parts("verdicts")
    rows = _verdict(copy, 2**40, 5, days=30)
    with pytest.raises(InvalidInputError, match="in that order"):
        copy.append("verdicts", rows[list(reversed(rows.columns))])
    with pytest.raises(InvalidInputError, match="written by the simulator only"):
        copy.append("truth", rows)
    with pytest.raises(NotFoundError, match="no table"):
        copy.append("nonsense", rows)
    with pytest.raises((TypeError, ValueError)):  # pyarrow: a string where an id goes
        copy.append("verdicts", rows.assign(listing_id="five"))
    assert copy.parts("verdicts") == parts


def test_lookup_finds_a_few_rows_as_of_the_views_time(copy: Marketplace) -> None:
    listings = copy.read("listings", ["listing_id", "created_at"])
    some = listings.sample(5, random_state=0)
    found = copy.lookup("listings", "listing_id", some["listing_id"].tolist(), ["listing_id"])
    assert sorted(found["listing_id"]) == sorted(some["listing_id"])
    cut = pd.Timestamp(some["created_at"].median())
    seen = copy.at(cut.to_pydatetime()).lookup(
        "listings", "listing_id", some["listing_id"].tolist()
    )
    assert sorted(seen["listing_id"]) == sorted(some[some["created_at"] <= cut]["listing_id"])
    with pytest.raises(InvalidInputError, match="no column"):
        copy.lookup("listings", "nope", [1])
