"""Reading a prediction stream: usable records become rows, the rest are quarantined."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from couturier.monitoring import Watch, field_value, read_records

WATCH = Watch(
    model="m",
    stream="m",
    numeric=("features.x",),
    categorical=("listing.brand_id",),
    version="models.m",
    stratum=lambda r: "flagged" if r.get("decision") == "review" else "rest",
)


def _record(i: int, **over: Any) -> dict[str, Any]:
    r = {
        "listing_id": i,
        "at": f"2026-02-01T10:{i % 60:02d}:00+00:00",
        "models": {"m": 1},
        "probability": 0.1,
        "decision": "review" if i % 2 else "authentic",
        "features": {"x": float(i)},
        "listing": {"brand_id": i % 3},
    }
    r.update(over)
    return r


def _write(folder: Path, lines: list[str], torn: str = "") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "predictions-2026-02-01.jsonl").write_text(
        "".join(line + "\n" for line in lines) + torn
    )


def test_field_paths() -> None:
    assert field_value({"a": {"b": 2}}, "a.b") == 2
    with pytest.raises(KeyError, match=r"a\.c"):
        field_value({"a": {"b": 2}}, "a.c")
    with pytest.raises(KeyError):
        field_value({"a": 1}, "a.b")


def test_bad_records_are_quarantined_with_their_reason_and_the_rest_is_read(tmp_path: Path) -> None:
    good = [json.dumps(_record(i)) for i in range(5)]
    bad = [
        "{not json",
        json.dumps([1, 2]),
        json.dumps({k: v for k, v in _record(7).items() if k != "probability"}),
        json.dumps(_record(8, models={"m": 99})),
        json.dumps(_record(9, probability=1.5)),
        json.dumps(_record(10, at="2026-02-01T10:00:00")),  # no time zone
        json.dumps(_record(11, features={"x": "high"})),
    ]
    _write(tmp_path, good[:3] + bad + good[3:], torn='{"listing_id": 12, "at"')
    records = read_records(WATCH, tmp_path, known=[1, 2])
    assert list(records.frame["key"]) == [0, 1, 2, 3, 4]  # the torn tail is the log's, skipped
    assert list(records.frame["stratum"]) == ["rest", "flagged", "rest", "flagged", "rest"]
    assert records.frame["features.x"].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    reasons = records.reasons()
    assert reasons == {"unparsable": 2, "missing field": 1, "unknown version": 1, "bad value": 3}
    where = {q.where for q in records.quarantined}
    assert "predictions-2026-02-01.jsonl:4" in where  # file and line, for a person to look at
    assert any("m v99 is not in the registry" in q.reason for q in records.quarantined)


def test_a_missing_feature_value_is_nan_not_a_quarantine(tmp_path: Path) -> None:
    _write(tmp_path, [json.dumps(_record(1, features={"x": None}))])
    records = read_records(WATCH, tmp_path, known=None)
    assert records.frame["features.x"].isna().all() and not records.quarantined


def test_an_empty_or_missing_stream_is_an_empty_frame(tmp_path: Path) -> None:
    records = read_records(WATCH, tmp_path / "nothing", known=None)
    assert records.frame.empty and "features.x" in records.frame.columns
