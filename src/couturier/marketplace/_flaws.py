"""Flaws, photo views, and the counterfeit factories that make the flaws.

Every item has six continuous parameters, each a deviation from its house's signature:

=========  ==========================================  ===============
flaw       what it moves                               natural sigma
=========  ==========================================  ===============
spacing    monogram lattice cell size (relative)       0.03
rotation   monogram lattice angle (degrees)            1.5
glyph      glyph aspect ratio, log scale               0.05
colour     canvas colour along the house's direction   0.035 (x255 RGB)
stitch     stitches per length (relative)              0.05
hardware   hardware colour along the house's direction 0.05 (x255 RGB)
=========  ==========================================  ===============

An authentic item's deviation is ``N(0, sigma)`` per flaw (manufacturing tolerance). A counterfeit
from factory ``f`` has ``sigma * (severity * delta[f])`` added, ``delta`` in sigma units. A photo
shows some flaws and not others, by its view (``VISIBILITY``); the renderer draws the flaws a view
does not show with the signature values, so what is visible is exactly what the oracle counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "DEFAULT_FACTORIES",
    "FLAWS",
    "NATURAL_SIGMA",
    "NEW_FACTORY",
    "VIEWS",
    "VIEW_PROBS",
    "VISIBILITY",
    "Factory",
]

FLAWS: tuple[str, ...] = ("spacing", "rotation", "glyph", "colour", "stitch", "hardware")
NATURAL_SIGMA = np.array([0.03, 1.5, 0.05, 0.035, 0.05, 0.05])

#: The photo slots a seller fills. The first photo is always ``front``.
VIEWS: tuple[str, ...] = ("front", "monogram", "hardware", "label")
VIEW_PROBS = np.array([0.25, 0.35, 0.2, 0.2])

#: VISIBILITY[view, flaw] is 1 when that view shows that flaw.
VISIBILITY = np.array(
    [
        # spacing rotation glyph colour stitch hardware
        [1, 1, 0, 1, 0, 1],  # front: the whole item, small
        [1, 1, 1, 1, 0, 0],  # monogram close-up
        [0, 0, 0, 0, 1, 1],  # hardware close-up on a strap
        [0, 0, 1, 1, 1, 0],  # label: the logo plate and its stitching
    ],
    dtype=bool,
)


@dataclass(frozen=True)
class Factory:
    """A counterfeit maker: which flaws it gets wrong, by how many sigmas, and its serials."""

    factory_id: int
    name: str
    delta: tuple[float, float, float, float, float, float]  # per flaw, in sigma units
    weight: float  # share of counterfeits it makes in the default world
    malformed_serial_rate: float  # P(a stated serial breaks the house's format)

    @property
    def delta_array(self) -> np.ndarray:
        return np.asarray(self.delta, dtype=float)


DEFAULT_FACTORIES: tuple[Factory, ...] = (
    Factory(0, "crude", (3.5, 0.0, 4.0, 3.0, -3.5, 3.0), 0.22, 0.55),
    Factory(1, "workshop-a", (0.0, 3.0, 0.0, 0.0, -3.0, -2.8), 0.25, 0.30),
    Factory(2, "workshop-b", (-2.8, 0.0, -3.0, -2.8, 0.0, 0.0), 0.23, 0.20),
    Factory(3, "mirror", (0.0, 0.0, 2.2, 0.0, 2.2, 2.2), 0.20, 0.08),
    Factory(4, "superfake", (0.7, -0.7, 0.0, 0.0, 0.7, 0.0), 0.10, 0.02),
)

#: Appears only in the ``new_factory`` scenario: a profile no default factory shares.
NEW_FACTORY = Factory(5, "newcomer", (0.0, -2.5, 0.0, 2.2, 2.5, -2.5), 0.0, 0.05)

#: A stated serial of an authentic item breaks the format this often (seller typos).
AUTHENTIC_MALFORMED_SERIAL_RATE = 0.01
#: Sellers state a serial number this often, fake or not.
SERIAL_STATED_RATE = 0.6
