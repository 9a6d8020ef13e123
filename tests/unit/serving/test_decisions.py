"""LatestDecisions: another stream's newest decision per key, following its log as it grows."""

from __future__ import annotations

import json
import os
from pathlib import Path

from couturier.serving import LatestDecisions


def _append(path: Path, *records: dict[str, object], torn: str = "") -> None:
    with path.open("a") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")
        f.write(torn)


def test_a_missing_folder_knows_nothing(tmp_path: Path) -> None:
    board = LatestDecisions(tmp_path / "nobody", key="listing_id", fields=("decision",))
    assert board.get(1) is None


def test_the_newest_record_per_key_is_kept_projected_to_its_fields(tmp_path: Path) -> None:
    log = tmp_path / "predictions-2026-03-01.jsonl"
    _append(
        log,
        {"listing_id": 1, "decision": "review", "embedding": [0.1] * 64},
        {"listing_id": 2, "decision": "authentic"},
    )
    board = LatestDecisions(tmp_path, key="listing_id", fields=("decision",))
    assert board.get(1) == {"decision": "review"}
    _append(log, {"listing_id": 1, "decision": "counterfeit"})  # appended after the first read
    assert board.get(1) == {"decision": "counterfeit"}
    assert board.get(2) == {"decision": "authentic"} and board.get(3) is None


def test_a_line_being_written_waits_and_a_new_days_file_is_found(tmp_path: Path) -> None:
    first = tmp_path / "predictions-2026-03-01.jsonl"
    _append(first, {"listing_id": 1, "decision": "review"}, torn='{"listing_id": 1, "deci')
    board = LatestDecisions(tmp_path, key="listing_id", fields=("decision",), relist_s=0.0)
    assert board.get(1) == {"decision": "review"}  # the torn tail is not read yet
    _append(first, torn='sion": "authentic"}\n')
    assert board.get(1) == {"decision": "authentic"}
    _append(tmp_path / "predictions-2026-03-02.jsonl", {"listing_id": 1, "decision": "counterfeit"})
    assert board.get(1) == {"decision": "counterfeit"}
    assert len(board) == 1


def test_a_corrupt_line_and_a_record_without_the_key_are_skipped(tmp_path: Path) -> None:
    log = tmp_path / "predictions-2026-03-01.jsonl"
    _append(log, torn="not json\n")
    _append(log, {"request_id": "x", "decision": "review"}, {"listing_id": [1], "decision": "x"})
    _append(log, {"listing_id": 5, "decision": "review"})
    board = LatestDecisions(tmp_path, key="listing_id", fields=("decision", "at"))
    assert board.get(5) == {"decision": "review", "at": None}
    assert len(board) == 1


def test_a_new_file_is_found_even_when_the_folder_mtime_did_not_move(tmp_path: Path) -> None:
    """A directory's mtime can stay put within one clock tick: listing again after relist_s
    finds the new day's file all the same."""
    _append(tmp_path / "predictions-2026-03-01.jsonl", {"listing_id": 1, "decision": "review"})
    eager = LatestDecisions(tmp_path, key="listing_id", fields=("decision",), relist_s=0.0)
    lazy = LatestDecisions(tmp_path, key="listing_id", fields=("decision",), relist_s=3600.0)
    assert eager.catch_up() == lazy.catch_up() == 1
    before = tmp_path.stat()
    _append(tmp_path / "predictions-2026-03-02.jsonl", {"listing_id": 2, "decision": "authentic"})
    os.utime(tmp_path, ns=(before.st_atime_ns, before.st_mtime_ns))  # the same tick
    assert eager.get(2) == {"decision": "authentic"}
    assert lazy.get(2) is None  # until relist_s has passed


def test_a_snapshot_holds_every_keys_newest_record(tmp_path: Path) -> None:
    log = tmp_path / "predictions-2026-03-01.jsonl"
    _append(log, {"listing_id": 1, "decision": "review"}, {"listing_id": 2, "decision": "x"})
    board = LatestDecisions(tmp_path, key="listing_id", fields=("decision",))
    first = board.snapshot()
    _append(log, {"listing_id": 1, "decision": "counterfeit"}, {"listing_id": 3, "decision": "y"})
    assert first == {1: {"decision": "review"}, 2: {"decision": "x"}}  # a copy: it never moves
    assert board.snapshot() == {
        1: {"decision": "counterfeit"},
        2: {"decision": "x"},
        3: {"decision": "y"},
    }
