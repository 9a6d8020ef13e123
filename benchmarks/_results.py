"""Every benchmark's result file says what produced it: commit, date, machine and command.

Figures quoted in the README and the docs come from the files under ``benchmarks/results/``
that these scripts write; ``benchmarks/results/README.md`` says which file backs which figure.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["provenance", "write_result"]


def _git(*args: str) -> str:
    try:
        done = subprocess.run(
            ["git", *args], capture_output=True, text=True, check=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return done.stdout.strip()


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return None


def provenance() -> dict[str, Any]:
    """The commit (and whether the tree had changes), the date, the machine and the command."""
    return {
        "commit": _git("rev-parse", "HEAD"),
        "dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpu": _cpu_model(),
            "cpus": os.cpu_count(),
            "memory_gib": _memory_gib(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "command": " ".join(["python", *sys.argv]),
    }


def write_result(path: Path, result: dict[str, Any], **dumps: Any) -> None:
    """Write ``result`` as JSON with its provenance first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"provenance": provenance(), **result}
    path.write_text(json.dumps(body, indent=2, **dumps) + "\n")
