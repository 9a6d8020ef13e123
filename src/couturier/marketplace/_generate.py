"""Listings, photos, verdicts and interactions, one listing at a time.

Every listing ``i`` draws from its own random streams, one per aspect (``_world.STREAMS``): its
time, seller, authenticity, factory, flaws, product, listing fields, photos, verdict and
interactions. So the output is the same whatever the chunk size or the number of worker
processes, and a drift scenario changes only what depends on the answer it overrides.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
import pyarrow as pa

from couturier.marketplace._catalog import CATEGORIES
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
_DETAILS = (
    "Comes with the original box.",
    "No box, dust bag included.",
    "Receipt available on request.",
    "Ships within two days, tracked and insured.",
    "Minor signs of wear, see photos.",
    "Corners are clean, hardware shines.",
)
_LETTERS = np.array(list("ABCDEFGHJKLMNPRSTUVWXYZ"))
#: A bought item is returned this often, 3 to 20 days after the purchase.
RETURN_RATE_AUTHENTIC, RETURN_RATE_COUNTERFEIT = 0.04, 0.40


@dataclass
class _Columns:
    """Column lists of one chunk, one dict of lists per table."""

    listings: dict[str, list[Any]] = field(default_factory=dict)
    truth: dict[str, list[Any]] = field(default_factory=dict)
    photos: dict[str, list[Any]] = field(default_factory=dict)
    verdicts: dict[str, list[Any]] = field(default_factory=dict)
    interactions: dict[str, list[Any]] = field(default_factory=dict)

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
        for name in ("listings", "truth", "photos", "verdicts", "interactions")
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
    price = max(10.0, round(product.reference_price * float(np.exp(log_ratio))))
    serial_stated = bool(lr.random() < SERIAL_STATED_RATE)
    malformed_rate = (
        ALL_FACTORIES[factory].malformed_serial_rate if fake else AUTHENTIC_MALFORMED_SERIAL_RATE
    )
    malformed = bool(lr.random() < malformed_rate)
    serial = _serial(brand.serial_format, lr, malformed)
    opener, detail = lr.integers(0, len(_OPENERS)), lr.integers(0, len(_DETAILS))
    ingest_us = int(lr.exponential(90.0) * 1e6)
    visible: np.ndarray = np.any(VISIBILITY[[VIEWS.index(v) for v in views]], axis=0)

    observed_llr = PriceModel.llr(condition, float(np.log(price / product.reference_price)))
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
    expert = int(vr.integers(0, 24))
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

    _interactions(world, i, day, listed_us, brand_id, cat, condition, log_ratio, fake, out)


def _interactions(  # noqa: PLR0913 - the listing's facts that drive its buyers
    world: World,
    i: int,
    day: float,
    listed_us: int,
    brand_id: int,
    cat: str,
    condition: str,
    log_ratio: float,
    fake: bool,
    out: _Columns,
) -> None:
    """Buyers view, like and (at most once) buy; a bargain draws more attention. A bought
    counterfeit is returned far more often than an authentic item (buyers notice)."""
    rng = stream(world.config.seed, "interactions", i)
    bargain = float(PriceModel.MU[condition] - log_ratio)
    n_views = min(int(rng.poisson(5.0 * np.exp(1.5 * bargain))), 200)
    if n_views == 0:
        return
    eligible = world.eligible_buyers(day)
    cand = eligible[rng.integers(0, len(eligible), 24)]
    b = world.buyers
    fav_brand = b.favourite_brand[cand] == brand_id
    affinity = (
        1.0 + 3.0 * fav_brand + 2.0 * (b.favourite_category[cand] == world.category_index(cat))
    )
    picks = rng.choice(24, size=n_views, p=affinity / affinity.sum())
    times = listed_us + (rng.exponential(2.0, n_views) * _US_PER_DAY).astype(np.int64)
    likes = rng.random(n_views) < 0.06 * (1.0 + 2.0 * fav_brand[picks])
    k = 0
    for p, t, liked in zip(picks, times, likes, strict=True):
        _interaction(out, i, k, int(cand[p]), "view", int(t))
        k += 1
        if liked:
            _interaction(out, i, k, int(cand[p]), "like", int(t) + 30_000_000)
            k += 1
    if rng.random() < 1.0 / (1.0 + np.exp(-(-1.2 + 2.5 * bargain))):
        p = int(rng.integers(0, n_views))
        t = int(times[p]) + int(rng.exponential(1.0) * _US_PER_DAY)
        buyer = int(cand[picks[p]])
        _interaction(out, i, k, buyer, "purchase", t)
        u_return, return_days = rng.random(), rng.uniform(3.0, 20.0)
        if u_return < (RETURN_RATE_COUNTERFEIT if fake else RETURN_RATE_AUTHENTIC):
            _interaction(out, i, k + 1, buyer, "return", t + int(return_days * _US_PER_DAY))


def _interaction(out: _Columns, i: int, k: int, buyer: int, kind: str, t: int) -> None:
    out.add(
        "interactions",
        interaction_id=i * 1000 + k,
        listing_id=i,
        buyer_id=buyer,
        kind=kind,
        occurred_at=t,
        created_at=t + 5_000_000,
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
