"""The prediction log: what was acknowledged survives kill -9 of the writing process."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from couturier.serving._predictions import PredictionLog, read_predictions

WRITER = """
import asyncio, sys
from couturier.serving._predictions import PredictionLog

async def main():
    log = PredictionLog(sys.argv[1], fsync=sys.argv[2] == "fsync")
    i = 0
    while True:  # concurrent appends, each acknowledged on stdout once append() returned
        batch = [log.append({"request_id": i + k, "decision": "review"}) for k in range(8)]
        await asyncio.gather(*batch)
        for k in range(8):
            print(i + k, flush=True)
        i += 8

asyncio.run(main())
"""


@pytest.mark.parametrize("durability", ["write", "fsync"])
def test_acknowledged_records_survive_kill_9(tmp_path: Path, durability: str) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(tmp_path), durability], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    acknowledged = []
    for line in proc.stdout:
        acknowledged.append(int(line))
        if len(acknowledged) >= 400:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    proc.stdout.close()
    on_disk = {r["request_id"] for r in read_predictions(tmp_path)}
    assert set(acknowledged) <= on_disk  # every answered request was durable first
    assert len(on_disk) >= 400


def test_a_torn_last_line_is_skipped_and_earlier_records_read(tmp_path: Path) -> None:
    path = tmp_path / "predictions-2026-11-25.jsonl"
    path.write_bytes(json.dumps({"request_id": 1}).encode() + b"\n" + b'{"request_id": 2, "dec')
    assert [r["request_id"] for r in read_predictions(tmp_path)] == [1]


@pytest.mark.parametrize("fsync", [False, True])
def test_appends_from_many_requests_are_all_written(tmp_path: Path, fsync: bool) -> None:
    async def scenario() -> None:
        log = PredictionLog(tmp_path, fsync=fsync)
        await asyncio.gather(*(log.append({"request_id": i}) for i in range(200)))
        log.close()

    asyncio.run(scenario())
    assert sorted(r["request_id"] for r in read_predictions(tmp_path)) == list(range(200))
