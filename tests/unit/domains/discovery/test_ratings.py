"""The ratings loader: both MovieLens formats, and errors that name the line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from couturier.domains.discovery._ratings import load_ratings
from couturier.errors import InvalidInputError

MOVIELENS_100K = Path(__file__).parents[4] / ".." / "shared" / "data" / "movielens-100k" / "u.data"


@pytest.mark.skipif(not MOVIELENS_100K.is_file(), reason="the shared MovieLens-100K copy is absent")
def test_movielens_100k_loads_whole() -> None:
    ratings = load_ratings(MOVIELENS_100K)
    assert ratings.shape == (100_000, 4)
    assert list(ratings.columns) == ["user_id", "item_id", "rating", "timestamp"]
    assert [str(t) for t in ratings.dtypes] == ["int64", "int64", "float64", "int64"]
    assert ratings["user_id"].nunique() == 943
    assert ratings["item_id"].nunique() == 1682


def test_ratings_csv_with_header(tmp_path: Path) -> None:
    path = tmp_path / "ratings.csv"
    path.write_text("userId,movieId,rating,timestamp\n1,31,2.5,1260759144\n1,1029,3.0,1260759179\n")
    ratings = load_ratings(path)
    assert ratings["rating"].tolist() == [2.5, 3.0]
    assert ratings["item_id"].tolist() == [31, 1029]


def test_u_data_tab_separated(tmp_path: Path) -> None:
    path = tmp_path / "u.data"
    path.write_text("196\t242\t3\t881250949\n186\t302\t3\t891717742\n")
    assert load_ratings(path)["user_id"].tolist() == [196, 186]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "1\t2\t3\t4\n1\t2\t3\n",
            "u.data line 2: 4 fields expected (user, item, rating, unix time), got 3",
        ),
        ("1\t2\t3\t4\n1\t2\t3\t4\t5\n", "u.data line 2: 4 fields expected"),
        ("1\t2\t3\t4\nx\t2\t3\t4\n", "u.data line 2: user_id must be an integer, got 'x'"),
        ("1\t2\t3\t4\n\n1\t2\tnan\t4\n", "u.data line 3: rating must be a finite number"),
        ("1,2,3,4\n", "u.data line 1: a comma-separated ratings file must start with the header"),
        ("", "u.data: the file is empty"),
    ],
)
def test_malformed_file_names_the_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "u.data"
    path.write_text(content)
    with pytest.raises(InvalidInputError, match=re.escape(message)) as err:
        load_ratings(path)
    assert err.value.field == "path"


def test_csv_bad_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "ratings.csv"
    path.write_text("userId,movieId,rating,timestamp\n1,31,2.5,1260759144\n1,31,abc,1260759144\n")
    with pytest.raises(InvalidInputError, match=r"ratings\.csv line 3: rating must be a finite"):
        load_ratings(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="does not exist"):
        load_ratings(tmp_path / "nope.data")
