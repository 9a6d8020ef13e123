"""The real fashion catalog: ``styles.csv`` of the Kaggle "Fashion Product Images" data set.

44,446 products, one a line::

    id,gender,masterCategory,subCategory,articleType,baseColour,season,year,usage,productDisplayName
    15970,Men,Apparel,Topwear,Shirts,Navy Blue,Fall,2011,Casual,Turtle Check Men Navy Blue Shirt

The originals need Kaggle credentials (``kaggle datasets download
paramaggarwal/fashion-product-images-small``), so nothing here downloads: :func:`load_styles`
takes the path of a copy (the project's tests read ``../shared/data/fashion-catalog/styles.csv``).

The original file has lines whose ``productDisplayName`` holds unquoted commas (``Nike Women,
Pink Top``): the loader joins the trailing fields back into the title. A line it cannot read
as a product (too few fields, an id that is not an integer, an id seen before, a bad year) stops
the load with :class:`~couturier.errors.InvalidInputError` naming the line and the rule, and
nothing is returned half-loaded.

>>> styles = load_styles("../shared/data/fashion-catalog/styles.csv")   # doctest: +SKIP
>>> len(styles), list(styles.columns)[:3]                             # doctest: +SKIP
(44446, ['id', 'gender', 'masterCategory'])
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from couturier.errors import InvalidInputError

__all__ = ["COLUMNS", "brands", "catalog_documents", "load_styles"]

COLUMNS = (
    "id",
    "gender",
    "masterCategory",
    "subCategory",
    "articleType",
    "baseColour",
    "season",
    "year",
    "usage",
    "productDisplayName",
)
_TITLE = len(COLUMNS) - 1


def load_styles(path: str | Path) -> pd.DataFrame:
    """The catalog as a DataFrame: ``id`` int64, ``year`` nullable Int64, the rest strings.

    A missing text value is ``""`` (a handful of products have no season or usage).

    >>> styles = load_styles("styles.csv")          # doctest: +SKIP
    >>> styles.loc[0, "productDisplayName"]          # doctest: +SKIP
    'Turtle Check Men Navy Blue Shirt'
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(
            f"catalog file {str(path)!r} does not exist; pass the path of styles.csv "
            "(download it from Kaggle: paramaggarwal/fashion-product-images-small)",
            field="path",
        )
    with path.open(encoding="utf-8", newline="") as f:
        rows = _parse(csv.reader(f), path)
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    frame["id"] = frame["id"].astype("int64")
    frame["year"] = pd.array([int(y) if y else None for y in frame["year"]], dtype="Int64")
    return frame


def _parse(reader: Iterable[list[str]], path: Path) -> list[list[str]]:
    rows: list[list[str]] = []
    seen: set[int] = set()
    for fields in reader:
        line = getattr(reader, "line_num", len(rows) + 1)
        if not rows and not seen:
            if tuple(f.strip() for f in fields) != COLUMNS:
                raise _bad(path, line, f"the header must be {','.join(COLUMNS)}")
            seen.add(-1)  # the header is read
            continue
        if not fields:
            continue  # a blank line, such as a trailing newline
        if len(fields) < len(COLUMNS):
            raise _bad(
                path, line, f"a product has {len(COLUMNS)} fields; this line has {len(fields)}"
            )
        # unquoted commas inside the title split it: the title is everything after the 9th comma
        row = [*fields[:_TITLE], ",".join(fields[_TITLE:])]
        row = [v.strip() for v in row]
        if not re.fullmatch(r"\d+", row[0]):
            raise _bad(path, line, f"the id must be a non-negative integer, not {row[0]!r}")
        product = int(row[0])
        if product in seen:
            raise _bad(path, line, f"the id {product} appears twice; ids must be unique")
        if row[7] and not re.fullmatch(r"\d{4}", row[7]):
            raise _bad(path, line, f"the year must be four digits or empty, not {row[7]!r}")
        seen.add(product)
        rows.append(row)
    if not seen:
        raise _bad(path, 1, "the file is empty; it must start with the header line")
    return rows


def _bad(path: Path, line: int, rule: str) -> InvalidInputError:
    return InvalidInputError(
        f"{path.name} line {line}: {rule}; fix or remove the line and load again",
        field="line",
        line=line,
        path=str(path),
    )


_GENDER_WORDS = frozenset(
    [
        "men",
        "women",
        "boys",
        "girls",
        "boy",
        "girl",
        "unisex",
        "kids",
        "men's",
        "women's",
        "boy's",
        "girl's",
        "mens",
        "womens",
    ]
)


def brands(titles: Iterable[str], *, min_count: int = 3) -> list[str]:
    """The brand (fashion house) of each title: the words before its gender word.

    Titles name the brand first (``Peter England Men Party Blue Jeans``), usually followed by
    a gender word. The prefixes seen before a gender word at least ``min_count`` times make a
    vocabulary; each title gets its longest prefix in it (so ``United Colors of Benetton Women
    Blue Top`` and ``United Colors of Benetton Navy Cap`` agree), else its first word.

    >>> brands(["Peter England Men Blue Jeans"] * 3 + ["Peter England Navy Tie"])
    ['Peter England', 'Peter England', 'Peter England', 'Peter England']
    """
    titles = list(titles)
    words = [t.split() for t in titles]
    counts: Counter[str] = Counter()
    for w in words:
        cut = next((i for i, x in enumerate(w[:5]) if x.lower() in _GENDER_WORDS), 0)
        if cut:
            counts[" ".join(w[:cut]).lower()] += 1
    known = {b for b, n in counts.items() if n >= min_count}
    out = []
    for w in words:
        prefixes = (" ".join(w[:n]) for n in range(min(4, len(w)), 0, -1))
        out.append(next((p for p in prefixes if p.lower() in known), w[0] if w else ""))
    # one spelling per brand (``ADIDAS`` and ``Adidas`` are one house): the most frequent one
    spellings: dict[str, Counter[str]] = {}
    for b in out:
        spellings.setdefault(b.lower(), Counter())[b] += 1
    canonical = {low: c.most_common(1)[0][0] for low, c in spellings.items()}
    return [canonical[b.lower()] for b in out]


#: The catalog's attributes in a document's descriptive text: what a product page would list.
DESCRIPTIVE = ("articleType", "baseColour", "gender", "usage", "subCategory")


def catalog_documents(
    styles: pd.DataFrame, *, descriptive: tuple[str, ...] = DESCRIPTIVE
) -> pd.DataFrame:
    """The catalog as search documents: ``id``, ``title``, ``text``, and the filter columns.

    ``house`` is the brand (:func:`brands`), ``category`` the ``articleType``, ``colour`` the
    ``baseColour``. ``text`` lists the ``descriptive`` attributes, as a product page would.
    The catalog has no prices, so there is no ``price`` column (index it with
    ``SearchConfig(price=None)``).

    >>> docs = catalog_documents(load_styles("styles.csv"))   # doctest: +SKIP
    >>> docs.columns.tolist()                                  # doctest: +SKIP
    ['id', 'title', 'text', 'house', 'category', 'colour', 'gender']
    """
    text = styles[list(descriptive)].fillna("").astype(str).agg(" ".join, axis=1)
    return pd.DataFrame(
        {
            "id": styles["id"],
            "title": styles["productDisplayName"],
            "text": text.str.split().str.join(" ") if descriptive else "",
            "house": brands(styles["productDisplayName"]),
            "category": styles["articleType"],
            "colour": styles["baseColour"],
            "gender": styles["gender"],
        }
    )
