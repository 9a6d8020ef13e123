"""Drift scenarios: each starts on a day and changes one thing, and nothing else.

Each scenario is a small object the generator asks, for a listing's day, how the world differs
from the default one. The default answers (``Scenario``) are "not at all"; each named scenario
overrides exactly the answers its documentation names. Every random draw lives in its own
per-listing stream, so a scenario leaves everything before its start day byte-identical, and
after it changes only what depends on the answer it overrides. ``price_shock`` moves the market
itself, so it also reaches the sales of listings posted before its start and unsold after it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from couturier.marketplace._flaws import DEFAULT_FACTORIES, NEW_FACTORY, Factory

__all__ = ["SCENARIOS", "Camera", "Scenario"]

ALL_FACTORIES: tuple[Factory, ...] = (*DEFAULT_FACTORIES, NEW_FACTORY)
_DEFAULT_WEIGHTS = np.array([f.weight for f in ALL_FACTORIES])
_DEFAULT_CATEGORY_WEIGHTS = np.array([0.38, 0.22, 0.18, 0.08, 0.14])  # CATEGORIES order
#: ``price_shock``: the house whose market index drops, and by how much.
SHOCKED_BRAND, SHOCK_FACTOR = 0, 0.8


@dataclass(frozen=True)
class Camera:
    """How photos are taken: what the ``camera_change`` scenario moves."""

    extra_blur: float = 0.0  # added Gaussian blur radius, px at 96 px
    warm_cast: float = 0.0  # red up, blue down, as a fraction
    noise_scale: float = 1.0  # multiplies the sensor noise
    jpeg_quality: int = 90


class Scenario:
    """The default world. Subclasses override the answers their scenario changes."""

    name = "none"
    summary = "the default world: no drift"
    changes: tuple[str, ...] = ()

    def __init__(self, start_day: float) -> None:
        self.start_day = start_day

    def active(self, day: float) -> bool:
        return self.name != "none" and day >= self.start_day

    def factory_weights(self, day: float) -> np.ndarray:
        """Share of counterfeits each factory (``ALL_FACTORIES`` order) makes on ``day``."""
        return _DEFAULT_WEIGHTS

    def severity_scale(self, day: float) -> float:
        """Multiplies every factory's flaw deltas."""
        return 1.0

    def camera(self, day: float) -> Camera:
        return Camera()

    def ring_share(self, day: float) -> float:
        """Share of listings posted by the fraud ring's sellers."""
        return 0.0

    def category_weights(self, day: float) -> np.ndarray:
        return _DEFAULT_CATEGORY_WEIGHTS

    def house_factor(self, brand_id: int, days: np.ndarray) -> np.ndarray:
        """Multiplies the house's market index (and so its items' market value) on ``days``."""
        return np.ones_like(days, dtype=float)


class NewFactory(Scenario):
    name = "new_factory"
    summary = (
        "from the start day a new factory ('newcomer') with a flaw profile no other factory shares "
        "(rotation, colour, stitch, hardware) makes 40% of counterfeits"
    )
    changes = ("truth.factory_id", "truth flaws of counterfeits", "their photos and serials")

    def factory_weights(self, day: float) -> np.ndarray:
        if not self.active(day):
            return _DEFAULT_WEIGHTS
        w = _DEFAULT_WEIGHTS * 0.6
        w = w.copy()
        w[NEW_FACTORY.factory_id] = 0.4
        return w


class AdaptiveCounterfeiters(Scenario):
    name = "adaptive_counterfeiters"
    summary = (
        "from the start day every factory's flaws shrink linearly, reaching 40% of their size "
        "30 days later: counterfeits drift towards superfakes"
    )
    changes = ("truth flaws of counterfeits", "their photos")

    def severity_scale(self, day: float) -> float:
        if not self.active(day):
            return 1.0
        return float(1.0 - 0.6 * min(1.0, (day - self.start_day) / 30.0))


class CameraChange(Scenario):
    name = "camera_change"
    summary = (
        "from the start day the marketplace's recommended phone camera changes: softer focus, a "
        "warm colour cast, twice the sensor noise and stronger JPEG compression"
    )
    changes = ("photos",)

    def camera(self, day: float) -> Camera:
        if not self.active(day):
            return Camera()
        return Camera(extra_blur=0.7, warm_cast=0.08, noise_scale=2.0, jpeg_quality=70)


class FraudRing(Scenario):
    name = "fraud_ring"
    summary = (
        "from the start day a ring of 12 new seller accounts posts 15% of listings, half of them "
        "counterfeit, at the usual counterfeit prices"
    )
    changes = ("sellers (12 added)", "listings.seller_id", "authenticity of ring listings")

    def ring_share(self, day: float) -> float:
        return 0.15 if self.active(day) else 0.0


class SeasonalShift(Scenario):
    name = "seasonal_shift"
    summary = (
        "from the start day winter shifts the category mix: scarves x3 and shoes x1.5, "
        "bags fewer; prevalence per listing does not change"
    )
    changes = ("listings.product_id and what follows from the product",)

    def category_weights(self, day: float) -> np.ndarray:
        if not self.active(day):
            return _DEFAULT_CATEGORY_WEIGHTS
        w = _DEFAULT_CATEGORY_WEIGHTS * np.array([0.6, 1.0, 1.5, 1.0, 3.0])
        return w / w.sum()


class PriceShock(Scenario):
    name = "price_shock"
    summary = (
        f"from the start day the market value of one house (brand_id {SHOCKED_BRAND}) drops 20%: "
        "its sellers ask less, and its unsold listings sell slower at their old prices"
    )
    changes = (
        f"truth.market_value, demand and oracle price of brand {SHOCKED_BRAND}",
        f"listings.asking_price of brand {SHOCKED_BRAND} (and the oracle's price evidence)",
        f"sales, price changes and purchases of brand {SHOCKED_BRAND} after the start day",
    )

    def house_factor(self, brand_id: int, days: np.ndarray) -> np.ndarray:
        hit = (brand_id == SHOCKED_BRAND) & (np.asarray(days) >= self.start_day)
        return np.where(hit, SHOCK_FACTOR, 1.0)


SCENARIOS: dict[str, type[Scenario]] = {
    cls.name: cls
    for cls in (
        Scenario,
        NewFactory,
        AdaptiveCounterfeiters,
        CameraChange,
        FraudRing,
        SeasonalShift,
        PriceShock,
    )
}

#: Fraud-ring parameters, shared by the generator and the oracle.
RING_SELLERS = 12
RING_FAKE_RATE = 0.5
