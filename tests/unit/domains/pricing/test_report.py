"""The pricing report: its reliability bins, its escaping, and one page from a synthetic fit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from couturier.domains.pricing._data import PricingData
from couturier.domains.pricing._evaluate import MIN_SEGMENT_SALES
from couturier.domains.pricing._pricer import Pricer, PricingParams
from couturier.domains.pricing._recipe import PricingFit, model_inputs, score_holdout
from couturier.domains.pricing._report import (
    reliability_bins,
    render,
    segment_rows,
    write_report,
)

SCRIPT = "<script>alert(1)</script>"


def test_reliability_bins_mean_and_rate_per_bin_empty_skipped() -> None:
    p = np.array([0.05, 0.15, 0.12, 0.95, 1.0])
    y = np.array([0, 1, 0, 1, 1])
    bins = reliability_bins(y, p)
    assert [(b["lo"], b["n"]) for b in bins] == [(0.0, 1), (0.1, 2), (pytest.approx(0.9), 2)]
    assert bins[1]["mean_p"] == pytest.approx(0.135)
    assert bins[1]["rate"] == 0.5
    assert bins[2]["rate"] == 1.0


def test_reliability_bins_of_nothing() -> None:
    assert reliability_bins(np.array([]), np.array([])) == []


def test_segment_rows_mark_judged_and_low() -> None:
    table = pd.DataFrame(
        {
            "segment": ["house", "condition"],
            "value": ["3", SCRIPT],
            "n": [MIN_SEGMENT_SALES, 5],
            "coverage": [0.8, 0.95],
            "width": [0.3, 0.4],
        }
    )
    big, small = segment_rows(table)
    assert (big["judged"], big["low"], big["coverage"]) == (True, True, "0.800")
    assert (small["judged"], small["low"]) == (False, False)


def test_segment_value_is_escaped() -> None:
    table = pd.DataFrame(
        {"segment": ["condition"], "value": [SCRIPT], "n": [3], "coverage": [0.5], "width": [1.0]}
    )
    html = render(version=1, headline={SCRIPT: "1"}, segments=segment_rows(table), plots={})
    assert SCRIPT not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "not judged" in html


class _Session:
    """An ONNX session's ``run``: a flat market value and an even sale score; the pricer's own
    price elasticity turns the score into a demand curve."""

    def __init__(self, name: str) -> None:
        self.name = name

    def run(self, outputs: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        n = len(feeds["input"])
        if self.name.startswith("sale"):
            return [np.zeros((n, 1), dtype=np.float32)]  # the trees' raw score
        shift = {"lower": -0.25, "median": 0.0, "upper": 0.25}[self.name]
        return [np.full((n, 1), shift, dtype=np.float32)]


def _fit(n: int = 600) -> PricingFit:
    rng = np.random.default_rng(3)
    reference = rng.choice([400.0, 1200.0, 3000.0], n)
    value = reference * np.exp(rng.normal(0.0, 0.1, n))
    day = np.sort(rng.uniform(0, 120, n))  # listed, days after 1 January; the cut-off is day 182
    listed = pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(day, "D")
    days = rng.exponential(20.0, n)
    frame = pd.DataFrame(
        {
            "listing_id": np.arange(n),
            "product_id": rng.integers(0, 20, n),
            "brand_id": rng.integers(1, 4, n),
            "category": rng.choice(["bag", "shoes"], n),
            "condition": rng.choice(["good", SCRIPT], n),
            "reference_price": reference,
            "asking_price": np.round(value * np.exp(rng.normal(0.05, 0.1, n))),
            "sale_price": value * np.exp(rng.normal(0.0, 0.15, n)),
            "listed_at": listed,
            "days_to_sale": days,
            "age_days": 182.0 - day,
            "sold_7d": (days <= 7).astype(int),
            "sold_30d": (days <= 30).astype(int),
            "judged_counterfeit": np.zeros(n, dtype=bool),
            "market_value": value,
            "demand_30d": rng.uniform(0.3, 1.5, n),
            "oracle_price": value * 0.9,
        }
    )
    bounds = (
        pd.Timestamp("2024-02-20", tz="UTC"),
        pd.Timestamp("2024-02-20", tz="UTC"),  # no embargo in this synthetic split
        pd.Timestamp("2024-03-20", tz="UTC"),
    )
    data = PricingData(frame, pd.Timestamp("2024-07-01", tz="UTC"), None, bounds)  # type: ignore[arg-type]
    params = PricingParams(
        confidence=0.9,
        horizons=[7, 30],
        offsets={"*": (0.0, 0.0)},
        sale={"7": (3.0, 1.0, -1.0), "30": (3.0, 1.0, 1.0)},
        default_index=0.0,
        houses=[1, 2, 3],
    )
    names = ("median", "lower", "upper", "sale_7d", "sale_30d")
    pricer = Pricer({name: _Session(name) for name in names}, params)
    inputs = model_inputs(frame, params.default_index)
    held = score_holdout(pricer, data, inputs)
    held.details["examples"] = {"value_holdout": len(held.scores.sale)}
    package: Any = None
    return PricingFit(
        data,
        pricer,
        package,
        held.evaluation,
        held.scores,
        held.metrics,
        inputs,
        held.details,
        held.revenue,
    )


def test_write_report_one_self_contained_page(tmp_path: Path) -> None:
    path = write_report(_fit(), version=4, folder=tmp_path / "reports")
    assert path == tmp_path / "reports" / "pricing-v4.html"
    html = path.read_text()
    assert SCRIPT not in html
    assert "&lt;script&gt;" in html
    assert html.count("data:image/png;base64,") == 4 + 1 + 2 + 1 + 1 + 1  # segments ... example
    for text in ("coverage of the 90% interval", "sale within 7 days", "oracle price", "seller"):
        assert text in html
    assert 'src="http' not in html
