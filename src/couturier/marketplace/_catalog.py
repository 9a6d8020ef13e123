"""The fictional luxury houses, their signatures and their product lines.

Every name here is invented; none is or imitates a real trademark. A house's *signature* is what an
authentic item always shows (up to natural variation, see ``_flaws.py``) and what a counterfeit gets
slightly wrong: the monogram glyph, its lattice spacing and rotation, the canvas and glyph colours,
the stitch density, the hardware colour and the serial-number format.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["CATEGORIES", "MAX_BRANDS", "Brand", "Product", "build_catalog"]

#: Categories with their reference-price range in EUR (low, high) and a few line names.
CATEGORIES: dict[str, tuple[float, float, tuple[str, ...]]] = {
    "bag": (1500.0, 6500.0, ("Tote", "Saddle", "Bucket", "Clutch", "Duffle")),
    "small_leather_goods": (250.0, 900.0, ("Wallet", "Card Case", "Key Pouch", "Coin Purse")),
    "shoes": (450.0, 1300.0, ("Loafer", "Pump", "Sneaker", "Mule")),
    "watch": (2500.0, 16000.0, ("Chronograph", "Tank", "Diver", "Dress")),
    "scarf": (220.0, 650.0, ("Carré", "Stole", "Twilly")),
}

# name, glyph, canvas RGB, glyph RGB, hardware RGB, serial format (A letter, 9 digit)
_HOUSES: tuple[
    tuple[str, str, tuple[int, int, int], tuple[int, int, int], tuple[int, int, int], str], ...
] = (
    ("Maison Aurelle", "quatrefoil", (122, 84, 52), (214, 188, 140), (212, 175, 55), "AA9999"),
    ("Castelvetro", "diamond", (40, 44, 58), (170, 150, 110), (192, 192, 200), "A-9999-AA"),
    ("Hartwell & Finch", "ring", (150, 120, 90), (90, 52, 40), (181, 166, 66), "99AA99"),
    ("Okada Atelier", "star4", (30, 30, 34), (200, 200, 205), (90, 92, 100), "AAA-999"),
    ("Valmont-Reyes", "cross", (160, 40, 46), (235, 210, 170), (212, 175, 55), "9999-AA"),
    ("Lindqvist", "chevron", (70, 96, 80), (225, 220, 200), (192, 192, 200), "A99A99"),
    ("Ferrandi", "square", (200, 170, 130), (110, 70, 40), (183, 110, 121), "AA-99-AA"),
    ("Sable & Thorne", "star6", (58, 40, 70), (210, 180, 90), (200, 200, 210), "999-AAA"),
    ("Ivoire Lemaire", "disc", (226, 214, 190), (120, 100, 70), (176, 141, 87), "A9A9A9"),
    ("Brunetti Casa", "triangle", (96, 60, 36), (230, 190, 120), (212, 175, 55), "AAAA99"),
)


@dataclass(frozen=True)
class Brand:
    brand_id: int
    name: str
    glyph: str
    canvas_rgb: tuple[int, int, int]
    glyph_rgb: tuple[int, int, int]
    hardware_rgb: tuple[int, int, int]
    serial_format: str
    spacing_px: float  # monogram cell size on a 96 px close-up
    rotation_deg: float
    stitches_per_100px: float
    colour_direction: tuple[float, float, float]  # unit RGB direction a colour flaw moves along
    hardware_direction: tuple[float, float, float]


@dataclass(frozen=True)
class Product:
    product_id: int
    brand_id: int
    category: str
    name: str
    reference_price: float


def build_catalog(n_brands: int, rng: np.random.Generator) -> tuple[list[Brand], list[Product]]:
    """The first ``n_brands`` houses with seeded signatures, and 2-3 products per category each."""
    brands: list[Brand] = []
    for i, (name, glyph, canvas, glyph_rgb, hw, serial) in enumerate(_HOUSES[:n_brands]):
        colour_dir = _unit(rng.normal(size=3))
        hw_dir = _unit(rng.normal(size=3))
        brands.append(
            Brand(
                brand_id=i,
                name=name,
                glyph=glyph,
                canvas_rgb=canvas,
                glyph_rgb=glyph_rgb,
                hardware_rgb=hw,
                serial_format=serial,
                spacing_px=float(rng.uniform(14.0, 22.0)),
                rotation_deg=float(rng.choice([0.0, 15.0, 30.0, 45.0])),
                stitches_per_100px=float(rng.uniform(9.0, 15.0)),
                colour_direction=colour_dir,
                hardware_direction=hw_dir,
            )
        )
    products: list[Product] = []
    for brand in brands:
        for category, (low, high, lines) in CATEGORIES.items():
            n = int(rng.integers(2, 4))
            for line in rng.choice(list(lines), size=n, replace=False):
                price = float(np.exp(rng.uniform(np.log(low), np.log(high))))
                products.append(
                    Product(
                        product_id=len(products),
                        brand_id=brand.brand_id,
                        category=category,
                        name=f"{brand.name} {line}",
                        reference_price=round(price, -1),
                    )
                )
    return brands, products


def _unit(v: np.ndarray) -> tuple[float, float, float]:
    v = v / np.linalg.norm(v)
    return (float(v[0]), float(v[1]), float(v[2]))


MAX_BRANDS = len(_HOUSES)
