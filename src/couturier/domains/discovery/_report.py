"""The discovery report: one self-contained HTML file per recipe run.

Accuracy beside catalog coverage and popularity bias, per-segment slices (new and heavy buyers,
favourite categories), search and similar-items quality, and example pages with their photos:
three buyers' histories and recommendations (the listings they went on to want are framed),
two searches and one similar-items list. Everything in it is escaped (Jinja2 autoescape): a
listing's title cannot inject markup.
"""

from __future__ import annotations

import base64
from importlib.resources import files
from pathlib import Path
from typing import Any

import pandas as pd
from jinja2 import Environment, select_autoescape

from couturier.domains.discovery._recs_recipe import HEAVY, NEW, RecsFit
from couturier.domains.discovery._recs_training import ranker_matrix
from couturier.domains.discovery._search_recipe import SearchFit
from couturier.marketplace import Marketplace

__all__ = ["write_report"]

_ORDERS = (
    ("ranker", ""),
    ("candidate order (EASE + iALS)", "candidates_"),
    ("popularity", "popularity_"),
)


def _first_photos(market: Marketplace, ids: set[int]) -> dict[int, str]:
    out: dict[int, str] = {}
    for part in market.iter_parts("photos", ["listing_id", "position", "image"]):
        part = part[part["listing_id"].isin(ids)].sort_values("position")
        for lid, img in zip(part["listing_id"], part["image"], strict=True):
            out.setdefault(int(lid), base64.b64encode(img).decode())
    return out


def _buyer_pages(market: Marketplace, recs: RecsFit) -> list[tuple[str, int, list[int], list[int]]]:
    """(label, buyer, history, recommended) for a heavy, a typical and a new buyer."""
    frame = recs.holdout.frame
    if frame.empty:
        return []
    scored = frame.assign(_s=recs.ranker.predict(ranker_matrix(frame)))
    history = scored.groupby("buyer_id")["buyer_views"].first().astype(float).sort_values()
    picks = {
        "a heavy buyer": int(history.index[-1]),
        "a typical buyer": int(history.index[len(history) // 2]),
        "a new buyer": int(history.index[0]),
    }
    at = pd.Timestamp(recs.times["at_eval"])
    inter = market.read("interactions", ["buyer_id", "listing_id", "created_at"])
    pages = []
    for label, buyer in picks.items():
        seen = inter[(inter["buyer_id"] == buyer) & (inter["created_at"] <= at)]
        past = seen.sort_values("created_at")["listing_id"].drop_duplicates(keep="last")
        top = scored[scored["buyer_id"] == buyer].sort_values("_s", ascending=False)
        pages.append(
            (
                label,
                buyer,
                past.tail(8).astype(int).tolist(),
                top["listing_id"].head(10).astype(int).tolist(),
            )
        )
    return pages


def write_report(
    market: Marketplace,
    recs: RecsFit,
    search: SearchFit,
    *,
    versions: dict[str, int],
    recs_model: str,
    window_days: float,
    folder: Path,
) -> Path:
    """Write ``discovery-v<N>.html`` (N: the recommendations version) into ``folder``."""
    facts = market.read("listings", ["listing_id", "title", "asking_price"]).set_index("listing_id")
    buyers = _buyer_pages(market, recs)
    docs = search.listings.reset_index(drop=True)
    query = str(docs["title"].iloc[0]).split(",")[0].lower() if len(docs) else ""
    searches = [
        (q, [int(h.doc_id) for h in search.index.search(q, k=8)])
        for q in (query, "silk scarf")
        if q
    ]
    similar: list[tuple[int, list[int]]] = []
    if len(docs):
        found = search.similar.search(search.look[:1], k=9, groups=docs["group"].to_numpy()[:1])
        me = int(docs["listing_id"].iloc[0])
        similar = [(me, [int(i) for i in found.ids[0] if i >= 0 and int(i) != me][:8])]
    wanted = {i for _, _, h, r in buyers for i in h + r}
    wanted |= {i for _, ids in searches for i in ids} | {
        i for me, ids in similar for i in [me, *ids]
    }
    photos = _first_photos(market, wanted)

    titles = facts["title"].astype(str).to_dict()
    prices = facts["asking_price"].astype(float).to_dict()

    def item(lid: int, hit: bool = False) -> dict[str, Any]:
        title = titles.get(lid, str(lid))
        price = prices.get(lid, float("nan"))
        return {
            "listing_id": lid,
            "photo": photos.get(lid),
            "hit": hit,
            "caption": f"{title} · {price:,.0f} EUR",
        }

    pages = []
    for label, buyer, past, top in buyers:
        relevant = recs.holdout.relevant.get(buyer, set())
        pages.append(
            {
                "title": f"Recommendations for {label} (buyer {buyer})",
                "rows": [
                    ("What they looked at before:", [item(i) for i in past]),
                    ("What the ranker shows them:", [item(i, i in relevant) for i in top]),
                ],
            }
        )
    for q, ids in searches:
        pages.append({"title": f"Search: “{q}”", "rows": [("Results:", [item(i) for i in ids])]})
    for me, ids in similar:
        pages.append(
            {
                "title": f"Similar to listing {me}",
                "rows": [("The listing:", [item(me)]), ("Similar:", [item(i) for i in ids])],
            }
        )
    evaluation = recs.evaluation
    template = files("couturier.domains.discovery") / "templates" / "report.html.j2"
    html = (
        Environment(autoescape=select_autoescape(default=True))
        .from_string(template.read_text())
        .render(
            versions=versions,
            recs_model=recs_model,
            window_days=f"{window_days:g}",
            at_eval=recs.times["at_eval"][:16],
            buyers=int(evaluation.overall.get("n", 0)),
            orders=_ORDERS,
            metrics=evaluation.overall,
            slices=sorted(evaluation.slices.items()),
            new=NEW,
            heavy=HEAVY,
            search=search.evaluation.overall,
            pages=pages,
        )
    )
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"discovery-v{versions[recs_model]}.html"
    path.write_text(html)
    return path
