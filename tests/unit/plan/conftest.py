"""Fixtures: the hand-written results and price table of ``_tables``, in a tmp folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.plan._tables import price_table, write_prices, write_results


@pytest.fixture
def results(tmp_path: Path) -> Path:
    return write_results(tmp_path / "results")


@pytest.fixture
def prices(tmp_path: Path) -> Path:
    return write_prices(tmp_path / "prices.yaml", price_table())
