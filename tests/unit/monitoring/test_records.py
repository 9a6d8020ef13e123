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
    key="listing_id",
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


def test_embeddings_that_are_not_finite_vectors_of_the_streams_length_are_quarantined(
    tmp_path: Path,
) -> None:
    watch = Watch(model="m", stream="m", key="listing_id", version="models.m", embedding="e")
    lines = [json.dumps(_record(i, e=[0.1, 0.2, 0.3])) for i in range(4)]
    lines += [
        json.dumps(_record(5, e=None)),
        json.dumps(_record(6, e=[0.1, float("nan"), 0.3])),
        json.dumps(_record(7, e=[0.1, 0.2])),
    ]
    _write(tmp_path, lines)
    records = read_records(watch, tmp_path, known=None)
    assert list(records.frame["key"]) == [0, 1, 2, 3]
    assert len(records.quarantined) == 3 and all(
        "embedding" in q.reason for q in records.quarantined
    )
    assert records.reasons("2026-02-01") == {"bad value": 3}
    assert records.reasons("2026-02-02") == {}


def test_labels_for_unknown_keys_and_bad_rows_are_refused_with_the_row_named() -> None:
    from datetime import UTC, datetime

    import pandas as pd

    from couturier.monitoring import load_labels

    frame = pd.DataFrame(
        {
            "key": [1, 2, 99, 3],
            "label": [0, 1, 1, 2],
            "arrived_at": [datetime(2026, 2, 1, tzinfo=UTC)] * 3 + ["not a time"],
        }
    )
    watch = Watch(
        model="m", stream="m", key="listing_id", labels=lambda _: frame, keys=lambda _: {1, 2, 3}
    )
    kept, refused = load_labels(watch, market=object())  # type: ignore[arg-type]
    assert kept is not None and list(kept["key"]) == [1, 2]
    reasons = {q.where: q.reason for q in refused}
    assert reasons["labels row 2"] == "unknown key: no such key (listing_id=99)"
    assert reasons["labels row 3"].startswith("bad label")


def test_a_degraded_answer_without_an_embedding_is_kept_and_a_healthy_one_is_quarantined(
    tmp_path: Path,
) -> None:
    """The authentication service logs no embedding when its image tier is down: that answer
    is degraded (counted, never judged); a healthy answer without one is still a bad record."""
    watch = Watch(
        model="m", stream="m", key="listing_id", version="models.m", embedding="e", degraded="d"
    )
    lines = [json.dumps(_record(i, e=[0.1, 0.2, 0.3], d={})) for i in range(3)]
    lines += [
        json.dumps(_record(3, e=None, d={"image_model": "tier down"})),
        json.dumps(_record(4, e=None, d={})),
    ]
    _write(tmp_path, lines)
    records = read_records(watch, tmp_path, known=None)
    assert list(records.frame["key"]) == [0, 1, 2, 3]
    assert list(records.frame["degraded"]) == [False, False, False, True]
    assert len(records.quarantined) == 1 and "embedding" in records.quarantined[0].reason
