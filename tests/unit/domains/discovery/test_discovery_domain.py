"""The discovery domain end to end: the seam, the recipe's two gated models, the three routes.

One recipe run on the session's 4,000-listing market, shared by the tests of this module; each
test checks one promise of what it left behind, through a real server over HTTP.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest
import requests

from couturier.conformance import check_domain
from couturier.domain import RecipeReport, get_domain
from couturier.features import FeatureRepo, materialize
from couturier.marketplace import Marketplace
from couturier.registry import ModelRegistry
from couturier.serving import ModelRepository, create_app
from couturier.settings import Settings
from tests.support.http import serve

pytestmark = pytest.mark.timeout(600)


def test_the_discovery_domain_conforms() -> None:
    check_domain(get_domain("discovery"))


@dataclass
class Served:
    report: RecipeReport
    registry: ModelRegistry
    url: str
    market: Marketplace
    repo: FeatureRepo


@pytest.fixture(scope="module")
def served(market: Marketplace, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    domain = get_domain("discovery")
    assert domain.features is not None and domain.recipe is not None
    settings = Settings(home=tmp_path_factory.mktemp("discovery"))
    repo = FeatureRepo(domain.features, settings)
    repo.write_sources(market)
    repo.apply()
    # the store as of the last listing, the recipe's "now": the simulator also writes what
    # happens after its period (most items sell within weeks), which a server then would know
    materialize(repo, end=_last_listing(market).to_pydatetime())
    registry = ModelRegistry(settings)
    report = domain.recipe(market, repo, registry)
    app = create_app(
        ModelRepository.from_registry(registry),
        domains=[domain],
        settings=settings,
        registry=lambda: ModelRegistry(settings),
    )
    with serve(app) as url:
        yield Served(report, registry, url, market, repo)
    repo.close()
    registry.close()


def test_both_models_pass_their_gates_and_become_champions(served: Served) -> None:
    r = served.report
    assert r.gate_passed and r.champion == r.version == 1
    assert served.registry.alias_version("discovery-search", "champion") == 1
    # the ranker must beat the order its own candidates came in, on the same holdout buyers
    assert r.metrics["ndcg_at_10"] > r.metrics["candidates_ndcg_at_10"]
    assert r.metrics["ndcg_at_10"] > r.metrics["popularity_ndcg_at_10"]


def test_search_finds_a_product_line_and_respects_filters(served: Served) -> None:
    listings = served.market.read("listings", ["title", "category"])
    title = str(listings["title"].iloc[0])
    other = "watch" if listings["category"].iloc[0] != "watch" else "bag"
    got = requests.get(f"{served.url}/v1/search", params={"q": title, "k": "5"}, timeout=30)
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["models"] == {"discovery-search": 1} and body["degraded"] == []
    assert body["results"] and body["results"][0]["title"] == title
    got = requests.get(
        f"{served.url}/v1/search", params={"q": title, "category": other}, timeout=30
    ).json()
    assert all(r["category"] == other for r in got["results"])
    nothing = requests.get(
        f"{served.url}/v1/search", params={"q": title, "max_price": "0.5"}, timeout=30
    )
    assert nothing.status_code == 200 and nothing.json()["results"] == []


@pytest.mark.parametrize("query", ["", "   ", "x" * 300, "red\x00bag"])
def test_a_bad_query_is_a_422_naming_the_rule(served: Served, query: str) -> None:
    got = requests.get(f"{served.url}/v1/search", params={"q": query}, timeout=30)
    assert got.status_code == 422, got.text
    assert got.headers["content-type"].startswith("application/problem+json")


def test_similar_items_stay_in_the_category_and_leave_the_listing_out(served: Served) -> None:
    search = requests.get(f"{served.url}/v1/search", params={"q": "bag"}, timeout=30).json()
    first = search["results"][0]
    got = requests.get(f"{served.url}/v1/similar/{first['listing_id']}", timeout=30).json()
    assert got["cold_start"] is None and len(got["results"]) == 10
    assert {r["category"] for r in got["results"]} == {first["category"]}
    assert first["listing_id"] not in {r["listing_id"] for r in got["results"]}
    cap = sorted(r["asking_price"] for r in got["results"])[4]
    capped = requests.get(
        f"{served.url}/v1/similar/{first['listing_id']}",
        params={"max_price": str(cap)},
        timeout=30,
    ).json()
    assert capped["results"] and all(r["asking_price"] <= cap for r in capped["results"])


def test_an_unknown_listing_gets_a_cold_start_answer(served: Served) -> None:
    got = requests.get(f"{served.url}/v1/similar/999999999", timeout=30)
    assert got.status_code == 200 and got.json()["cold_start"] == "listing"
    assert got.json()["results"]


def _last_listing(market: Marketplace) -> pd.Timestamp:
    return pd.Timestamp(market.read("listings", ["created_at"])["created_at"].max())


def test_recommendations_for_a_known_and_an_unknown_buyer(served: Served) -> None:
    inter = served.market.at(_last_listing(served.market).to_pydatetime()).read(
        "interactions", ["buyer_id", "listing_id", "kind"]
    )
    buyer = int(inter["buyer_id"].value_counts().index[0])
    got = requests.get(f"{served.url}/v1/recommendations/{buyer}", timeout=30)
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["cold_start"] is None and body["models"] == {"discovery-recommendations": 1}
    recommended = {r["listing_id"] for r in body["results"]}
    assert len(recommended) == 10
    bought = set(inter[inter["kind"] == "purchase"]["listing_id"])
    bought -= set(inter[inter["kind"] == "return"]["listing_id"])  # back on sale
    assert not recommended & bought  # sold listings are never recommended
    cold = requests.get(f"{served.url}/v1/recommendations/987654321", timeout=30).json()
    assert cold["cold_start"] == "buyer" and cold["results"]


def test_a_negative_id_is_a_422(served: Served) -> None:
    assert requests.get(f"{served.url}/v1/recommendations/-1", timeout=30).status_code == 422


def test_a_buyer_id_beyond_the_pair_key_range_is_a_422(served: Served) -> None:
    got = requests.get(f"{served.url}/v1/recommendations/{2**54 + 1}", timeout=30)
    assert got.status_code == 422, got.text


def test_the_ranker_sees_the_same_inputs_offline_and_online(served: Served) -> None:
    """Training reads the store point-in-time (Feast's offline join), serving reads the online
    store: after materialization both must give the ranker the same matrix."""
    from couturier.domains.discovery._features import buyer_brand_key
    from couturier.domains.discovery._recs_training import (
        ranker_matrix,
        serving_matrix,
        store_features,
    )
    from couturier.domains.discovery._service import RecsModel
    from couturier.features import OnlineReader

    model = RecsModel.from_registry(served.registry, served.report.version)
    cands = model.candidates
    buyer = int(cands.buyer_ids[len(cands.buyer_ids) // 2])
    frame = cands.for_buyer(buyer).assign(buyer_id=buyer)
    now = _last_listing(served.market)  # the time the online store was materialized to
    offline = ranker_matrix(store_features(served.repo, frame, now, cands.reference_s))
    rows = [
        {"buyer_id": buyer, "listing_id": int(lid), "buyer_brand": int(bb)}
        for lid, bb in zip(
            frame["listing_id"], buyer_brand_key(buyer, frame["brand_id"]), strict=True
        )
    ]
    online = OnlineReader(served.repo).get(rows).rows
    np.testing.assert_allclose(serving_matrix(frame, online, cands.reference_s), offline)


def test_without_a_readable_store_the_candidate_order_serves_degraded(served: Served) -> None:
    from couturier.domains.discovery._service import DiscoveryService, RecsModel
    from couturier.errors import NotFoundError
    from couturier.features import LazyReader

    def broken() -> Any:
        raise NotFoundError("discovery_v1 is not registered in this feature store")

    model = RecsModel.from_registry(served.registry, served.report.version)
    service = DiscoveryService(None, None, LazyReader(broken), None)  # type: ignore[arg-type]
    buyer = int(model.candidates.buyer_ids[0])
    ids, degraded, cold = service.rank(model, buyer, 10)
    assert cold is None and degraded and "candidate order" in degraded[0]
    expected = model.candidates.for_buyer(buyer)["listing_id"].head(10).tolist()
    assert ids == expected
    ids, _, cold = service.rank(model, 10**12, 10)  # a buyer nobody knows: popularity
    assert cold == "buyer" and ids == model.candidates.popular(None)["listing_id"].head(10).tolist()
