"""Hand-written benchmark results and a small price table: the arithmetic the tests pin.

Results: ``serving.json`` on 2 CPUs (authenticate at 2 photos: 100 req/s with p99 10 ms, 90 req/s
with p99 20 ms; per-photo stages decode 1 + image_model 3 of a stage sum of 8, a share of 0.5;
tabular 4000 req/s with p99 10 ms) and ``production.json`` on 4 CPUs (400 req/s with p99 50 ms
in process, 300 req/s with p99 60 ms with the remote tier).

Prices: a 100-hour month; EKS control plane 0.10/h and NAT 0.06/h; a 4 vCPU / 8 GiB node at
0.10/h on demand and 0.04/h Spot; a 4 vCPU / 8 GiB SageMaker instance at 0.15/h; ElastiCache
and RDS unpriced (null with a note).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml


def serving() -> dict[str, Any]:
    return {
        "provenance": {
            "commit": "a" * 40,
            "dirty": False,
            "date": "2026-01-01",
            "machine": {"cpus": 2},
        },
        "cpus": 2,
        "tabular": {"couturier": {"rps": 4000.0, "p99_ms": 10.0}},
        "swaps": {"load": {"rps": 3000.0, "p99_ms": 12.0}},
        "authenticate": {
            "photos": 2,
            "stages_p50_ms": {
                "decode": 1.0,
                "features": 2.0,
                "image_model": 3.0,
                "retrieval_fusion": 2.0,
                "total": 7.0,
            },
            "half_load": {"rps": 100.0, "p99_ms": 10.0},
            "half_load_bunched": {"rps": 90.0, "p99_ms": 20.0},
        },
    }


def production() -> dict[str, Any]:
    return {
        "provenance": {
            "commit": "b" * 40,
            "dirty": True,
            "date": "2026-01-02",
            "machine": {"cpus": 4},
        },
        "in_process": {"rps": 400.0, "p99_ms": 50.0},
        "remote_tier": {"rps": 300.0, "p99_ms": 60.0},
    }


def write_results(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "serving.json").write_text(json.dumps(serving()))
    (folder / "production.json").write_text(json.dumps(production()))
    return folder


def _fig(value: float | None, source: str | None = "test-src", note: str = "") -> dict[str, Any]:
    return {"value": value, "unit": "x", "source": source, "note": note}


def price_table() -> dict[str, Any]:
    def instance(od: float | None, spot: float | None = None) -> dict[str, Any]:
        spec = {"vcpus": _fig(4), "memory_gib": _fig(8), "on_demand": _fig(od)}
        if spot is not None:
            spec["spot"] = _fig(spot)
        return spec

    return {
        "region": "test-1",
        "currency": "USD",
        "sources": {
            "test-src": {
                "url": "https://example.org/prices",
                "read": "as stored, read 2026-12-01",
                "page_date": "2026-01-01",
            }
        },
        "hours_per_month": _fig(100),
        "ec2": {"n.test": instance(0.10, 0.04), "big.test": instance(0.30)},
        "sagemaker": {
            "ml.test": instance(0.15),
            "ml.unpriced": {
                "vcpus": _fig(4),
                "memory_gib": _fig(8),
                "on_demand": _fig(None, None, "not found on any stored page"),
            },
        },
        "services": {
            "eks_control_plane": _fig(0.10),
            "nat_gateway": _fig(0.06),
            "elasticache_node": _fig(None, None, "not found"),
            "rds_instance": _fig(None, None, "not found"),
            "rds_multi_az_factor": _fig(2),
        },
    }


def write_prices(path: Path, table: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(table))
    return path
