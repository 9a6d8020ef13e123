"""The catalog loader: the real styles.csv, the unquoted-comma repair, refused lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from couturier.domains.discovery._catalog import (
    COLUMNS,
    brands,
    catalog_documents,
    load_styles,
)
from couturier.errors import InvalidInputError

STYLES = Path(__file__).parents[4] / ".." / "shared" / "data" / "fashion-catalog" / "styles.csv"
HEADER = ",".join(COLUMNS)


def write(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "styles.csv"
    path.write_text("\n".join([HEADER, *lines]) + "\n", encoding="utf-8")
    return path


@pytest.mark.skipif(not STYLES.is_file(), reason="the shared catalog copy is not on this machine")
def test_the_real_catalog_loads_whole() -> None:
    styles = load_styles(STYLES)
    assert len(styles) == 44_446
    assert list(styles.columns) == list(COLUMNS)
    assert styles["id"].is_unique
    assert str(styles["year"].dtype) == "Int64"


def test_unquoted_commas_in_the_title_are_joined_back(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "1,Men,Apparel,Topwear,Shirts,Navy Blue,Fall,2011,Casual,Turtle Men, Navy Shirt",
        '2,Women,Apparel,Bottomwear,Shorts,Pink,Summer,2011,Sports,"Nike 3.5"" Pink, Short"',
        "3,Women,Accessories,Watches,Watches,Silver,,,Casual,Titan Women Silver Watch",
    )
    styles = load_styles(path)
    assert styles["productDisplayName"].tolist() == [
        "Turtle Men, Navy Shirt",
        'Nike 3.5" Pink, Short',
        "Titan Women Silver Watch",
    ]
    assert styles["year"].isna().tolist() == [False, False, True]


@pytest.mark.parametrize(
    ("line", "rule"),
    [
        ("5,Men,Apparel,Topwear,Shirts", "has 10 fields; this line has 5"),
        ("x1,Men,Apparel,Topwear,Shirts,Blue,Fall,2011,Casual,A shirt", "non-negative integer"),
        ("1,Men,Apparel,Topwear,Shirts,Blue,Fall,11,Casual,A shirt", "four digits"),
        ("7,Men,Apparel,Topwear,Shirts,Blue,Fall,2011,Casual,A shirt", "appears twice"),
    ],
)
def test_a_malformed_line_stops_the_load_naming_line_and_rule(
    tmp_path: Path, line: str, rule: str
) -> None:
    path = write(tmp_path, "7,Men,Apparel,Topwear,Shirts,Blue,Fall,2011,Casual,Good shirt", line)
    with pytest.raises(InvalidInputError, match="line 3") as info:
        load_styles(path)
    assert rule in info.value.message
    assert info.value.context["line"] == 3


def test_a_wrong_header_or_missing_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "styles.csv"
    path.write_text("id,name\n1,x\n", encoding="utf-8")
    with pytest.raises(InvalidInputError, match="line 1: the header must be"):
        load_styles(path)
    with pytest.raises(InvalidInputError, match="does not exist"):
        load_styles(tmp_path / "nope.csv")


def test_brands_take_the_longest_known_prefix_in_one_spelling() -> None:
    titles = [
        "United Colors of Benetton Men Blue Shirt",
        "United Colors of Benetton Women Red Top",
        "United Colors Of Benetton Men Black Belt",
        "United Colors of Benetton Navy Cap",
        "Puma Men Blue Tshirt",
    ]
    assert brands(titles) == ["United Colors of Benetton"] * 4 + ["Puma"]


def test_catalog_documents_have_the_search_columns(tmp_path: Path) -> None:
    path = write(
        tmp_path, "1,Men,Apparel,Topwear,Shirts,Navy Blue,Fall,2011,Casual,Arrow Men Shirt"
    )
    docs = catalog_documents(load_styles(path))
    assert docs.columns.tolist() == ["id", "title", "text", "house", "category", "colour", "gender"]
    assert docs.loc[0, "text"] == "Shirts Navy Blue Men Casual Topwear"
