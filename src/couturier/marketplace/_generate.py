"""Listings, photos, verdicts and their reports, interactions, sales and price changes, one
listing at a time.

Every listing ``i`` draws from its own random streams, one per aspect (``_world.STREAMS``): its
time, seller, authenticity, factory, flaws, product, listing fields, photos, verdict, the
verdict's control-point report (``_reports.py``), interactions and demand (its sale,
``_sales.py``). So the output is the same whatever the chunk size or the number of worker
processes, and a drift scenario changes only what depends on the answer it overrides.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
import pyarrow as pa

from couturier.marketplace._catalog import CATEGORIES
from couturier.marketplace._demand import DETAIL_LOG_VALUE, oracle_price
from couturier.marketplace._flaws import (
    AUTHENTIC_MALFORMED_SERIAL_RATE,
    FLAWS,
    NATURAL_SIGMA,
    SERIAL_STATED_RATE,
    VIEW_PROBS,
    VIEWS,
    VISIBILITY,
)
from couturier.marketplace._oracle import CONDITION_P, CONDITIONS, PriceModel, oracle_logit
from couturier.marketplace._photos import PhotoSpec, render_photo
from couturier.marketplace._reports import N_EXPERTS, experts, report
from couturier.marketplace._sales import Sale, simulate_sale
from couturier.marketplace._scenarios import ALL_FACTORIES
from couturier.marketplace._world import World, stream

__all__ = ["generate_chunk"]

_US_PER_DAY = 86_400_000_000
_CATEGORY_NAMES = tuple(CATEGORIES)
_CONDITION_CUM = np.cumsum(CONDITION_P)
_VIEW_CUM = np.cumsum(VIEW_PROBS)
_NOUN = {
    "bag": "bag",
    "small_leather_goods": "leather accessory",
    "shoes": "shoes",
    "watch": "watch",
    "scarf": "silk scarf",
}
_OPENERS = (
    "Bought in the boutique and barely used.",
    "A gift I never wore, kept in its dust bag.",
    "From my personal collection, smoke-free home.",
    "Pre-loved and well looked after.",
    "Selling to make room in the wardrobe.",
    "Classic piece, timeless design.",
)
_DETAILS = tuple(DETAIL_LOG_VALUE)  # the description's detail sentence: it moves the value
_LETTERS = np.array(list("ABCDEFGHJKLMNPRSTUVWXYZ"))
#: A bought item is returned this often, 3 to 20 days after the purchase.
RETURN_RATE_AUTHENTIC, RETURN_RATE_COUNTERFEIT = 0.04, 0.40
#: An event reaches the platform this long after it happens.
_ARRIVAL_US = 5_000_000
_CHUNKED = (
    "listings",
    "truth",
    "photos",
    "verdicts",
    "control_points",
    "interactions",
    "sales",
    "price_changes",
)


@dataclass(frozen=True)
class _Item:
    """The facts of one listing its buyers respond to."""

    i: int
    day: float
    listed_us: int
    brand_id: int
    category: str
    condition: str
    log_ratio: float
    fake: bool


@dataclass
class _Columns:
    """Column lists of one chunk, one dict of lists per table."""

    listings: dict[str, list[Any]] = field(default_factory=dict)
    truth: dict[str, list[Any]] = field(default_factory=dict)
    photos: dict[str, list[Any]] = field(default_factory=dict)
    verdicts: dict[str, list[Any]] = field(default_factory=dict)
    control_points: dict[str, list[Any]] = field(default_factory=dict)
    interactions: dict[str, list[Any]] = field(default_factory=dict)
    sales: dict[str, list[Any]] = field(default_factory=dict)
    price_changes: dict[str, list[Any]] = field(default_factory=dict)

    def add(self, table: str, **row: Any) -> None:
        cols: dict[str, list[Any]] = getattr(self, table)
        for k, v in row.items():
            cols.setdefault(k, []).append(v)


def generate_chunk(world: World, lo: int, hi: int) -> dict[str, pa.Table]:
    """Generate listings ``lo..hi-1`` and everything that hangs off them."""
    cols = _Columns()
    for i in range(lo, hi):
        _listing(world, i, cols)
    from couturier.marketplace._schemas import TABLE_SCHEMAS

    return {
        name: pa.Table.from_pydict(getattr(cols, name) or _empty(name), schema=TABLE_SCHEMAS[name])
        for name in _CHUNKED
    }


def _empty(name: str) -> dict[str, list[Any]]:
    from couturier.marketplace._schemas import TABLE_SCHEMAS

    return {f.name: [] for f in TABLE_SCHEMAS[name]}


def _listing(world: World, i: int, out: _Columns) -> None:  # noqa: PLR0915 - the story, in the order docs/simulator.md tells it
    c = world.config
    seed = c.seed
    scen = world.scenario
    day = (i + stream(seed, "time", i).random()) / c.listings * c.days
    listed_us = _to_us(c, day)

    # seller (and the fraud ring, which takes over a share of listings in its scenario)
    seller = world.pick_seller(day, float(stream(seed, "seller", i).random()))
    ring_rng = stream(seed, "ring", i)
    u_ring, u_pick = ring_rng.random(2)
    ring_share = scen.ring_share(day)
    if ring_share > 0.0 and u_ring < ring_share:
        seller = world.pick_ring_seller(float(u_pick))
    propensity = world.propensity(seller, day)
    fake = bool(stream(seed, "auth", i).random() < propensity)

    # product
    u_brand, u_cat, u_prod = stream(seed, "product", i).random(3)
    brand_id = int(np.searchsorted(world.brand_cumulative, u_brand * world.brand_total))
    brand_id = min(brand_id, c.brands - 1)
    cat_w = scen.category_weights(day)
    cat = _CATEGORY_NAMES[min(int(np.searchsorted(np.cumsum(cat_w), u_cat * cat_w.sum())), 4)]
    options = world.products_by[(brand_id, cat)]
    product = world.products[int(options[int(u_prod * len(options))])]
    brand = world.brands[brand_id]

    # factory and flaws, in sigma units
    weights = scen.factory_weights(day)
    severity = scen.severity_scale(day)
    u_fac = float(stream(seed, "factory", i).random())
    factory = -1
    z = stream(seed, "flaws", i).standard_normal(6)
    if fake:
        factory = min(
            int(np.searchsorted(np.cumsum(weights), u_fac * weights.sum())), len(weights) - 1
        )
        z = z + severity * ALL_FACTORIES[factory].delta_array
    deviation = z * NATURAL_SIGMA

    # listing fields: every draw happens whatever the branch, so streams stay aligned
    lr = stream(seed, "listing", i)
    condition = CONDITIONS[min(int(np.searchsorted(_CONDITION_CUM, lr.random())), 3)]
    n_photos = int(lr.integers(c.photos_min, c.photos_max + 1))
    extra_views = [VIEWS[min(int(np.searchsorted(_VIEW_CUM, u)), 3)] for u in lr.random(3)]
    views = ["front", *extra_views][:n_photos]
    log_ratio = PriceModel.draw(condition, fake, float(lr.standard_normal()))
    serial_stated = bool(lr.random() < SERIAL_STATED_RATE)
    malformed_rate = (
        ALL_FACTORIES[factory].malformed_serial_rate if fake else AUTHENTIC_MALFORMED_SERIAL_RATE
    )
    malformed = bool(lr.random() < malformed_rate)
    serial = _serial(brand.serial_format, lr, malformed)
    opener, detail = lr.integers(0, len(_OPENERS)), lr.integers(0, len(_DETAILS))
    ingest_us = int(lr.exponential(90.0) * 1e6)
    visible: np.ndarray = np.any(VISIBILITY[[VIEWS.index(v) for v in views]], axis=0)

    # sellers price against the market: the house's index and the item's completeness
    shift = world.market.log_shift(brand_id, _DETAILS[detail], day)
    value = world.market.value(product.reference_price, condition, shift)
    price = max(10.0, round(product.reference_price * float(np.exp(log_ratio + shift))))
    ref_ratio = float(np.log(price / product.reference_price))
    observed_llr = PriceModel.llr(condition, ref_ratio - shift)  # the oracle knows the market
    logit = oracle_logit(
        propensity,
        observed_llr,
        z,
        visible,
        serial_stated,
        malformed,
        ALL_FACTORIES,
        weights,
        severity,
    )
    description = f"{_OPENERS[opener]} {_DETAILS[detail]}"
    if serial_stated:
        description += f" Serial number: {serial}."
    base_hazard = world.market.base_hazard(brand_id, cat, condition, day)
    out.add(
        "listings",
        listing_id=i,
        seller_id=seller,
        product_id=product.product_id,
        brand_id=brand_id,
        category=cat,
        listed_at=listed_us,
        created_at=listed_us + ingest_us,
        asking_price=float(price),
        currency="EUR",
        condition=condition,
        title=f"{product.name} {_NOUN[cat]}, {condition} condition",
        description=description,
        serial_number=serial if serial_stated else None,
        n_photos=n_photos,
    )
    out.add(
        "truth",
        listing_id=i,
        is_counterfeit=fake,
        factory_id=factory,
        seller_propensity=propensity,
        fraud_ring=bool(world.sellers.ring[seller]),
        severity_scale=severity,
        **{f"flaw_{name}": float(deviation[k]) for k, name in enumerate(FLAWS)},
        visible_flaws=",".join(name for k, name in enumerate(FLAWS) if visible[k]),
        oracle_logit=logit,
        oracle_p_counterfeit=float(1.0 / (1.0 + np.exp(-logit))),
        **_demand_truth(base_hazard, value),
    )

    # photos
    camera = scen.camera(day)
    pr = stream(seed, "photos", i)
    for j, view in enumerate(views if c.render_photos else ()):
        taken_us = listed_us - int(pr.uniform(600, 86_400) * 1e6)
        image = render_photo(
            PhotoSpec(brand, cat, view, deviation, condition), pr, camera, c.image_size
        )
        out.add(
            "photos",
            photo_id=i * 4 + j,
            listing_id=i,
            position=j,
            view=view,
            width=c.image_size,
            height=c.image_size,
            format="jpeg",
            image=image,
            taken_at=taken_us,
            created_at=listed_us + ingest_us,
        )

    # the expert verdict, days later, sometimes wrong
    vr = stream(seed, "verdict", i)
    covered = vr.random() < c.verdict_coverage
    delay_days = vr.lognormal(np.log(c.label_delay_median_days), 0.5)
    wrong = vr.random() < (c.expert_miss_rate if fake else c.expert_false_alarm_rate)
    expert = int(vr.integers(0, N_EXPERTS))
    arrival_us = int(vr.uniform(0.0, 6 * 3600) * 1e6)
    if covered:
        decided_us = listed_us + int(delay_days * _US_PER_DAY)
        out.add(
            "verdicts",
            verdict_id=i,
            listing_id=i,
            expert_id=expert,
            verdict="counterfeit" if fake != wrong else "authentic",
            decided_at=decided_us,
            created_at=decided_us + arrival_us,
        )
        # the report arrives with the verdict; the expert held the item, not its photos
        judge = experts(seed)[expert]
        for check in report(stream(seed, "report", i), judge, brand, z, malformed, c.report_share):
            out.add(
                "control_points",
                check_id=i * 8 + check.index,
                verdict_id=i,
                listing_id=i,
                expert_id=expert,
                control_point=check.control_point,
                result=check.result,
                measurement=check.measurement,
                decided_at=decided_us,
                created_at=decided_us + arrival_us,
            )

    # demand: the sale, if any, and the seller's price cuts before it
    sale = simulate_sale(stream(seed, "demand", i), base_hazard, float(price), value)
    for k, (after, old, new) in enumerate(sale.changes):
        changed_us = listed_us + int(after * _US_PER_DAY)
        out.add(
            "price_changes",
            change_id=i * 4 + k,
            listing_id=i,
            changed_at=changed_us,
            old_price=old,
            new_price=new,
            created_at=changed_us + _ARRIVAL_US,
        )
    item = _Item(i, day, listed_us, brand_id, cat, condition, log_ratio, fake)
    _interactions(world, item, sale, out)


def _demand_truth(base_hazard: np.ndarray, value: float) -> dict[str, float]:
    """The truth columns of demand: with the price ``p`` held from listing,
    P(sold within H days) = 1 - exp(-demand_H * (p / market_value) ** -ELASTICITY)."""
    demand_30d = float(base_hazard[:30].sum())
    best, best_p30 = oracle_price(value, demand_30d)
    return {
        "market_value": value,
        "demand_7d": float(base_hazard[:7].sum()),
        "demand_30d": demand_30d,
        "oracle_price": float(best),
        "oracle_sale_p30": float(best_p30),
    }


def _interactions(world: World, item: _Item, sale: Sale, out: _Columns) -> None:
    """Buyers view and like; a bargain draws more attention. The demand model's sale, if any, is
    a purchase by one who viewed before it (else by a candidate, who views first). A bought
    counterfeit is returned far more often than an authentic item (buyers notice)."""
    i = item.i
    rng = stream(world.config.seed, "interactions", i)
    bargain = float(PriceModel.MU[item.condition] - item.log_ratio)
    n_views = min(int(rng.poisson(5.0 * np.exp(1.5 * bargain))), 200)
    eligible = world.eligible_buyers(item.day)
    cand = eligible[rng.integers(0, len(eligible), 24)]
    b = world.buyers
    fav_brand = b.favourite_brand[cand] == item.brand_id
    affinity = (
        1.0
        + 3.0 * fav_brand
        + 2.0 * (b.favourite_category[cand] == world.category_index(item.category))
    )
    picks = np.zeros(0, dtype=np.int64)
    times = np.zeros(0, dtype=np.int64)
    k = 0
    if n_views > 0:
        picks = rng.choice(24, size=n_views, p=affinity / affinity.sum())
        times = item.listed_us + (rng.exponential(2.0, n_views) * _US_PER_DAY).astype(np.int64)
        likes = rng.random(n_views) < 0.06 * (1.0 + 2.0 * fav_brand[picks])
        for p, t, liked in zip(picks, times, likes, strict=True):
            _interaction(out, i, k, int(cand[p]), "view", int(t))
            k += 1
            if liked:
                _interaction(out, i, k, int(cand[p]), "like", int(t) + 30_000_000)
                k += 1
    if sale.sold_after is not None:
        viewers = cand[picks[times < item.listed_us + int(sale.sold_after * _US_PER_DAY)]]
        _sold(out, item, sale, k, viewers, cand, affinity)


def _sold(
    out: _Columns,
    item: _Item,
    sale: Sale,
    k: int,
    viewers: np.ndarray,
    cand: np.ndarray,
    affinity: np.ndarray,
) -> None:
    """The sale's row, its purchase (and the buyer's view first, if they had not viewed), and
    perhaps a return."""
    if sale.sold_after is None or sale.sale_price is None:  # unsold: nothing to write
        return
    sold_us = item.listed_us + int(sale.sold_after * _US_PER_DAY)
    if len(viewers):
        buyer = int(viewers[int(sale.u_buyer * len(viewers))])
    else:
        cum = np.cumsum(affinity)
        buyer = int(cand[min(int(np.searchsorted(cum, sale.u_buyer * cum[-1])), len(cand) - 1)])
        lead_us = int(sale.view_lead_minutes * 60_000_000)
        _interaction(out, item.i, k, buyer, "view", max(item.listed_us, sold_us - lead_us))
        k += 1
    _interaction(out, item.i, k, buyer, "purchase", sold_us)
    out.add(
        "sales",
        sale_id=item.i,
        listing_id=item.i,
        buyer_id=buyer,
        sold_at=sold_us,
        sale_price=sale.sale_price,
        created_at=sold_us + _ARRIVAL_US,
    )
    if sale.u_return < (RETURN_RATE_COUNTERFEIT if item.fake else RETURN_RATE_AUTHENTIC):
        back_us = sold_us + int(sale.return_days * _US_PER_DAY)
        _interaction(out, item.i, k + 1, buyer, "return", back_us)


def _interaction(out: _Columns, i: int, k: int, buyer: int, kind: str, t: int) -> None:
    out.add(
        "interactions",
        interaction_id=i * 1000 + k,
        listing_id=i,
        buyer_id=buyer,
        kind=kind,
        occurred_at=t,
        created_at=t + _ARRIVAL_US,
    )


def _serial(fmt: str, rng: np.random.Generator, malformed: bool) -> str:
    """A serial in the house format ('A' letter, '9' digit); malformed ones swap a class."""
    letters = _LETTERS[rng.integers(0, len(_LETTERS), len(fmt))]
    digits = rng.integers(0, 10, len(fmt))
    broken = int(rng.integers(0, len(fmt)))
    chars = []
    for k, ch in enumerate(fmt):
        kind = ch
        if malformed and k == broken:
            kind = {"A": "9", "9": "A"}.get(ch, "A")  # a digit for a letter, or a separator lost
        chars.append(str(letters[k]) if kind == "A" else str(digits[k]) if kind == "9" else ch)
    return "".join(chars)


def _to_us(config: Any, day: float) -> int:
    start = config.start
    return int((start + timedelta(days=day)).timestamp() * 1_000_000)
