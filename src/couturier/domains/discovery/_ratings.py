"""Ratings files: MovieLens ``u.data`` and ``ratings.csv``, loaded whole or not at all.

Two formats are accepted and told apart by their first line:

* MovieLens-100K ``u.data``: tab-separated, no header, ``user item rating unixtime``;
* the newer releases' ``ratings.csv``: comma-separated, header ``userId,movieId,rating,timestamp``.

Both load into one frame, ``user_id:int64, item_id:int64, rating:float64, timestamp:int64``.
The fast path is pandas' C parser; when it refuses a file, or the parsed values break a rule, a
line-by-line scan finds the first bad line so that the error names the file, the line, the rule
and the fix. Nothing is returned before every line has parsed.
"""

from __future__ import annotations

import hashlib
import math
import urllib.request
import zipfile
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from couturier.errors import InvalidInputError

__all__ = ["MOVIELENS_100K_MD5", "MOVIELENS_100K_URL", "fetch_movielens_100k", "load_ratings"]

MOVIELENS_100K_URL: Final = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
MOVIELENS_100K_MD5: Final = "6e47046882bad158b0efbb84cd5cb987"  # of ml-100k/u.data

COLUMNS: Final = ("user_id", "item_id", "rating", "timestamp")
_CSV_HEADER: Final = ("userId", "movieId", "rating", "timestamp")
_DTYPES: Final = {"user_id": "int64", "item_id": "int64", "rating": "float64", "timestamp": "int64"}


def load_ratings(path: str | Path) -> pd.DataFrame:
    """Load a MovieLens ratings file (``u.data`` or ``ratings.csv``; the format is detected).

    Raises :class:`~couturier.errors.InvalidInputError` naming the file, the line and the rule
    when a line is malformed; nothing is half-loaded.

    >>> ratings = load_ratings("../shared/data/movielens-100k/u.data")  # doctest: +SKIP
    >>> ratings.shape
    (100000, 4)
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(
            f"ratings file {str(path)!r} does not exist; pass the path of a MovieLens u.data or "
            "ratings.csv (fetch_movielens_100k downloads one)",
            field="path",
        )
    sep, has_header = _detect_format(path)
    try:
        read: Any = pd.read_csv  # the stubs reject a dtype mapping pandas accepts
        frame: pd.DataFrame = read(
            path,
            sep=sep,
            header=0 if has_header else None,
            names=list(COLUMNS),
            dtype=_DTYPES,
            engine="c",
        )
    except (ValueError, pd.errors.ParserError) as exc:
        _scan_for_first_error(path, sep, has_header)
        raise InvalidInputError(  # the scan found nothing the parser did: report the parser
            f"{path.name}: cannot parse ({exc}); fix the file or re-download it",
            field="path",
        ) from exc
    if frame.empty:
        raise InvalidInputError(
            f"{path.name}: no ratings; the file has no data lines", field="path"
        )
    if not np.isfinite(frame["rating"].to_numpy()).all():
        _scan_for_first_error(path, sep, has_header)
    return pd.DataFrame(frame.reset_index(drop=True))


def fetch_movielens_100k(dest_dir: str | Path) -> Path:
    """Download MovieLens-100K from GroupLens into ``dest_dir``; return the path of ``u.data``.

    The archive is fetched once; ``u.data`` must have the published md5 or the call fails.
    Needs network access (tests never call it).

    >>> load_ratings(fetch_movielens_100k("data"))  # doctest: +SKIP
    """
    dest = Path(dest_dir)
    data = dest / "ml-100k" / "u.data"
    if not data.is_file():
        dest.mkdir(parents=True, exist_ok=True)
        archive = dest / "ml-100k.zip"
        urllib.request.urlretrieve(MOVIELENS_100K_URL, archive)
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(dest)
        archive.unlink()
    digest = hashlib.md5(data.read_bytes()).hexdigest()
    if digest != MOVIELENS_100K_MD5:
        raise InvalidInputError(
            f"{data}: md5 {digest} differs from the published {MOVIELENS_100K_MD5}; delete "
            f"{dest / 'ml-100k'} and fetch again",
            field="path",
        )
    return data


def _detect_format(path: Path) -> tuple[str, bool]:
    """(separator, has header) from the first non-empty line."""
    with path.open(encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines, start=1):
            text = line.strip()
            if not text:
                continue
            if "\t" in text:
                return "\t", False
            if "," in text:
                if tuple(part.strip() for part in text.split(",")) != _CSV_HEADER:
                    raise InvalidInputError(
                        f"{path.name} line {number}: a comma-separated ratings file must start "
                        f"with the header {','.join(_CSV_HEADER)}, got {text[:80]!r}; add the "
                        "header",
                        field="path",
                    )
                return ",", True
            raise InvalidInputError(
                f"{path.name} line {number}: neither tab-separated (u.data: user item rating "
                f"unixtime) nor comma-separated (ratings.csv: {','.join(_CSV_HEADER)}), got "
                f"{text[:80]!r}; use one of the two MovieLens formats",
                field="path",
            )
    raise InvalidInputError(f"{path.name}: the file is empty; it has no ratings", field="path")


def _scan_for_first_error(path: Path, sep: str, has_header: bool) -> None:
    """Raise for the first line that breaks a rule; return if every line is valid."""
    expected = (
        "userId, movieId, rating, timestamp" if has_header else ("user, item, rating, unix time")
    )
    with path.open(encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines, start=1):
            if (has_header and number == 1) or not line.strip():
                continue
            problem = _line_problem(line.rstrip("\r\n").split(sep), expected)
            if problem:
                raise InvalidInputError(
                    f"{path.name} line {number}: {problem}", field="path", line=number
                )


def _line_problem(fields: list[str], expected: str) -> str | None:
    if len(fields) != len(COLUMNS):
        return (
            f"{len(COLUMNS)} fields expected ({expected}), got {len(fields)}; fix or remove "
            "the line"
        )
    for name, value in zip(COLUMNS, fields, strict=True):
        if name == "rating":
            try:
                number = float(value)
            except ValueError:
                number = math.nan
            if not math.isfinite(number):
                return f"rating must be a finite number, got {value!r}; fix or remove the line"
        else:
            try:
                int(value)
            except ValueError:
                return f"{name} must be an integer, got {value!r}; fix or remove the line"
    return None
