"""Hybrid search: fusion by hand, filters, query rules, artifacts, the catalog's titles."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from couturier.domains.discovery._catalog import catalog_documents, load_styles
from couturier.domains.discovery._encoder import TextEncoder, export_onnx, tokenizer_json
from couturier.domains.discovery._search import (
    Hit,
    HybridSearch,
    SearchConfig,
    reciprocal_rank_fusion,
)
from couturier.errors import InvalidInputError, InvalidParameterError

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the packaged model only, never the hub

STYLES = Path(__file__).parents[4] / ".." / "shared" / "data" / "fashion-catalog" / "styles.csv"

DOCS = pd.DataFrame(
    {
        "id": [101, 102, 103, 104, 105, 106, 107, 108],
        "title": [
            "Nike Men Black Running Shoes",
            "Puma Men Blue Tshirt",
            "Puma Women Pink Sports Bra",
            "Gucci Women Red Leather Handbag",
            "Prada Women Black Heels",
            "Nike Women White Casual Sneakers",
            "Hermes Unisex Silk Scarf",
            "Titan Men Silver Watch",
        ],
        "text": [
            "Sports Shoes Black Men Sports",
            "Tshirts Blue Men Casual",
            "Bra Pink Women Sports",
            "Handbags Red Women Formal",
            "Heels Black Women Party",
            "Casual Shoes White Women Casual",
            "Scarves Multi Unisex Casual",
            "Watches Silver Men Formal",
        ],
        "house": ["Nike", "Puma", "Puma", "Gucci", "Prada", "Nike", "Hermes", "Titan"],
        "category": [
            "Sports Shoes",
            "Tshirts",
            "Bra",
            "Handbags",
            "Heels",
            "Casual Shoes",
            "Scarves",
            "Watches",
        ],
        "colour": ["Black", "Blue", "Pink", "Red", "Black", "White", "Multi", "Silver"],
        "gender": ["Men", "Men", "Women", "Women", "Women", "Women", "Unisex", "Men"],
        "price": [120.0, 25.0, 40.0, 2100.0, 650.0, 95.0, 430.0, np.nan],
    }
)


@pytest.fixture(scope="module")
def encoder(tmp_path_factory: pytest.TempPathFactory) -> TextEncoder:
    # the session's shared folder: the export happens once across the test modules
    model = export_onnx(tmp_path_factory.getbasetemp() / "encoder-cache")
    return TextEncoder.from_onnx(model, tokenizer_json())


@pytest.fixture(scope="module")
def index(encoder: TextEncoder) -> HybridSearch:
    return HybridSearch(
        encoder, SearchConfig(candidates=5, weights={"bm25": 1.0, "dense": 1.0})
    ).fit(DOCS)


def ids(hits: list[Hit]) -> list[Any]:
    return [h.doc_id for h in hits]


def test_rrf_by_hand() -> None:
    fused = reciprocal_rank_fusion(
        {"bm25": [1, 2, 3], "dense": [3, 4]}, k=10, weights={"bm25": 1.0, "dense": 2.0}
    )
    # 3: 1/(10+3) + 2/(10+1); 4: 2/(10+2); 1: 1/11; 2: 1/12
    assert [(d, round(s, 6), src) for d, s, src in fused] == [
        (3, round(1 / 13 + 2 / 11, 6), ("bm25", "dense")),
        (4, round(2 / 12, 6), ("dense",)),
        (1, round(1 / 11, 6), ("bm25",)),
        (2, round(1 / 12, 6), ("bm25",)),
    ]


def test_a_title_finds_its_document_first_on_every_side(index: HybridSearch) -> None:
    for mode in ("hybrid", "bm25", "dense"):
        hits = index.search("Gucci Women Red Leather Handbag", k=3, mode=mode)
        assert hits[0].doc_id == 104, mode
    top = index.search("Gucci Women Red Leather Handbag", k=1)[0]
    assert top.sources == ("bm25", "dense")
    assert top.score == pytest.approx(2 / 61)


def test_the_dense_side_finds_what_no_word_matches(index: HybridSearch) -> None:
    assert index.search("wristwatch", k=1, mode="bm25") == []
    top = index.search("wristwatch", k=1)[0]
    assert (top.doc_id, top.sources) == (108, ("dense",))
    assert top.score == pytest.approx(1 / 61)


def test_filters_apply_before_ranking_on_both_sides(index: HybridSearch) -> None:
    hits = index.search("black shoes", k=10, filters={"gender": "women"})
    assert set(ids(hits)) <= {103, 104, 105, 106}
    nike = ids(index.search("Nike", k=10, filters={"house": ["Nike", "Gucci"]}))
    assert set(nike[:2]) == {101, 106}
    priced = index.search("shoes", k=10, filters={"price": (50, 700)})
    assert set(ids(priced)) == {101, 105, 106, 107}  # unpriced 108 never passes
    both = index.search("shoes", k=10, filters={"price": (None, 100), "gender": "Men"})
    assert ids(both) == [102]


def test_filters_that_match_nothing_give_an_empty_list(index: HybridSearch) -> None:
    assert index.search("shoes", filters={"house": "Chanel"}) == []
    assert index.search("shoes", filters={"gender": "Men", "colour": "Pink"}) == []
    assert index.search("shoes", filters={"price": (5000, None)}) == []


@pytest.mark.parametrize(
    ("query", "rule"),
    [
        ("", "empty or only white space"),
        ("  \t ", "empty or only white space"),
        ("x" * 257, "the limit is 256"),
        ("red\x00dress", "control character"),
        ("red\ndress", "control character"),
    ],
)
def test_bad_queries_are_refused_naming_the_rule(
    index: HybridSearch, query: str, rule: str
) -> None:
    with pytest.raises(InvalidInputError, match=rule) as info:
        index.search(query)
    assert info.value.field == "query"
    assert info.value.http_status == 422


def test_bad_parameters_and_filters_are_refused(index: HybridSearch) -> None:
    with pytest.raises(InvalidParameterError, match="unknown filter 'size'"):
        index.search("shoes", filters={"size": "M"})
    with pytest.raises(InvalidParameterError, match=r"\(low, high\) pair"):
        index.search("shoes", filters={"price": "cheap"})
    with pytest.raises(InvalidParameterError, match="k must be >= 1"):
        index.search("shoes", k=0)
    with pytest.raises(InvalidInputError, match="lack the columns"):
        HybridSearch(index.encoder).fit(DOCS.drop(columns=["house"]))


def test_artifacts_round_trip_to_the_same_results(index: HybridSearch) -> None:
    files = index.to_artifacts()
    assert all(isinstance(v, bytes) for v in files.values())
    assert any(name.startswith("bm25/") for name in files)
    again = HybridSearch.from_artifacts(files, index.encoder)
    for query, filters in [
        ("black shoes", None),
        ("puma", {"gender": "Women"}),
        ("bag", {"price": (100, None)}),
    ]:
        for mode in ("hybrid", "bm25", "dense"):
            assert again.search(query, filters=filters, mode=mode) == index.search(
                query, filters=filters, mode=mode
            )
    with pytest.raises(InvalidInputError, match=r"lack 'index\.json'"):
        HybridSearch.from_artifacts({}, index.encoder)


@pytest.mark.skipif(not STYLES.is_file(), reason="the shared catalog copy is not on this machine")
def test_exact_titles_of_the_catalog_come_first(encoder: TextEncoder) -> None:
    styles = load_styles(STYLES).sample(n=2_000, random_state=0).reset_index(drop=True)
    docs = catalog_documents(styles)
    index = HybridSearch(encoder, SearchConfig(price=None)).fit(docs)
    # titles are not unique in the catalog: pick ones that are, and any duplicate would tie
    unique = docs[~docs["title"].duplicated(keep=False)].head(25)
    for doc_id, title in zip(unique["id"], unique["title"], strict=True):
        assert index.search(title, k=1)[0].doc_id == doc_id, title
    first = index.search("shirt", k=10, filters={"gender": "Women", "colour": "Blue"})
    genders = docs.set_index("id")["gender"]
    assert first and {genders[d] for d in ids(first)} == {"Women"}
