"""The judged query set and nDCG: seeded, judged by the catalog's attributes, scored by hand."""

from __future__ import annotations

from typing import Any

import pandas as pd

from couturier.domains.discovery._search import Hit
from couturier.domains.discovery._search_eval import (
    TYPE_SYNONYMS,
    build_queries,
    evaluate,
)

STYLES = pd.DataFrame(
    {
        "id": [1, 2, 3, 4, 5, 6],
        "gender": ["Men", "Men", "Women", "Women", "Men", "Women"],
        "masterCategory": ["Footwear"] * 6,
        "subCategory": ["Shoes"] * 6,
        "articleType": ["Sports Shoes", "Sports Shoes", "Heels", "Heels", "Tshirts", "Heels"],
        "baseColour": ["Black", "Black", "Red", "Black", "Blue", "Red"],
        "season": ["Fall"] * 6,
        "year": [2011] * 6,
        "usage": ["Sports", "Sports", "Party", "Party", "Casual", "NA"],
        "productDisplayName": [
            "Nike Men Black Running Shoes",
            "Puma Men Black Shoes",
            "Prada Women Red Heels",
            "Prada Women Black Heels",
            "Puma Men Blue Tshirt",
            "Catwalk Women Red Heels",
        ],
    }
)


def test_queries_are_seeded_and_judged_by_shared_attributes() -> None:
    queries = build_queries(STYLES, n=20, seed=3)
    assert [q.text for q in queries] == [q.text for q in build_queries(STYLES, n=20, seed=3)]
    assert len({q.text for q in queries}) == 20
    for q in queries:
        assert "articleType" in q.attributes and 2 <= len(q.attributes) <= 3
        assert q.attributes.get("usage") != "NA"
        table = STYLES.assign(brand=["Nike", "Puma", "Prada", "Prada", "Puma", "Catwalk"])
        match = table[(table[list(q.attributes)] == pd.Series(q.attributes)).all(axis=1)]
        assert q.relevant == frozenset(match["id"])


def test_some_queries_use_words_the_catalog_does_not() -> None:
    queries = build_queries(STYLES, n=20, seed=3, synonym_rate=1.0)
    assert all(q.synonym for q in queries)
    for q in queries:
        kind = q.attributes["articleType"]
        if kind in TYPE_SYNONYMS:
            assert any(word in q.text for word in TYPE_SYNONYMS[kind]), q.text


class Oracle:
    """Ranks the relevant ids first in hybrid mode, last on one side: a known answer."""

    def __init__(self, relevant: dict[str, frozenset[int]]) -> None:
        self.relevant = relevant

    def search(self, query: str, k: int = 10, filters: Any = None, mode: Any = "hybrid") -> Any:
        good = sorted(self.relevant[query])
        if mode == "hybrid":
            return [Hit(d, 1.0, ("bm25",)) for d in good][:k]
        if mode == "bm25":
            return [Hit(99, 1.0, ("bm25",)), *[Hit(d, 1.0, ("bm25",)) for d in good]][:k]
        return []


def test_evaluate_reports_each_side_and_the_query_count() -> None:
    queries = build_queries(STYLES, n=4, seed=0)
    result = evaluate(Oracle({q.text: q.relevant for q in queries}), queries, k=10)
    assert result["hybrid_ndcg_at_10"] == 1.0
    assert 0 < result["bm25_ndcg_at_10"] < 1
    assert result["dense_ndcg_at_10"] == 0.0
    assert result["queries"] == 4
