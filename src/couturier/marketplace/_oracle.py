"""The oracle: the Bayes-optimal probability that a listing is counterfeit.

It knows what the simulator knows and a perfect model could at best recover from the data: the
seller's propensity (a function of observable seller fields), the price, whether a serial was stated
and whether it breaks the house format, and the item's true flaw deviations *for the flaws its
photos show*. It does not know the truth, the factory, or flaws no photo shows. Then, by Bayes::

    logit P(fake | evidence) = logit(propensity)
                             + log N(price | fake) - log N(price | authentic)
                             + log sum_f w_f(t) * prod_k N(z_k; a(t) d_fk, 1) / N(z_k; 0, 1)
                                                * P(serial | f) / P(serial | authentic)

with ``z_k`` a visible flaw in sigma units, ``d_fk`` factory f's delta, ``w_f(t)`` the factory mix
and ``a(t)`` the severity scale on the listing's day (both move under drift scenarios).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from couturier.marketplace._flaws import (
    AUTHENTIC_MALFORMED_SERIAL_RATE,
    Factory,
)

__all__ = ["CONDITIONS", "PriceModel", "oracle_logit"]

CONDITIONS = ("new", "excellent", "good", "fair")
CONDITION_P = np.array([0.12, 0.38, 0.35, 0.15])


class PriceModel:
    """log(asking price / reference price) ~ Normal, by condition and authenticity."""

    MU: ClassVar[dict[str, float]] = {
        "new": np.log(0.92),
        "excellent": np.log(0.78),
        "good": np.log(0.64),
        "fair": np.log(0.48),
    }
    AUTH_SIGMA = 0.22
    FAKE_SHIFT = -0.28
    FAKE_SIGMA = 0.30

    @classmethod
    def draw(cls, condition: str, fake: bool, z: float) -> float:
        """The log price ratio for a standard-normal draw ``z``."""
        if fake:
            return float(cls.MU[condition] + cls.FAKE_SHIFT + cls.FAKE_SIGMA * z)
        return float(cls.MU[condition] + cls.AUTH_SIGMA * z)

    @classmethod
    def llr(cls, condition: str, log_ratio: float) -> float:
        """log N(log_ratio | fake) - log N(log_ratio | authentic)."""
        mu = cls.MU[condition]
        zf = (log_ratio - mu - cls.FAKE_SHIFT) / cls.FAKE_SIGMA
        za = (log_ratio - mu) / cls.AUTH_SIGMA
        return float(-0.5 * zf * zf + 0.5 * za * za - np.log(cls.FAKE_SIGMA / cls.AUTH_SIGMA))


def oracle_logit(  # noqa: PLR0913 - one argument per term of the posterior, as the docs write it
    propensity: float,
    price_llr: float,
    z: np.ndarray,
    visible: np.ndarray,
    serial_stated: bool,
    serial_malformed: bool,
    factories: tuple[Factory, ...],
    weights: np.ndarray,
    severity: float,
    noise_var: np.ndarray | None = None,
) -> float:
    """The posterior log-odds of counterfeit. ``z`` are flaw deviations in sigma units.

    ``noise_var`` (per flaw, in sigma units squared; default none) makes ``z`` a *measurement*
    ``z + e`` with ``e ~ N(0, noise_var)``: the deviation is then ``N(a d_fk, 1 + noise_var)``
    under factory f and ``N(0, 1 + noise_var)`` if authentic, so each flaw's log-likelihood
    ratio is divided by ``1 + noise_var``. It asks what a model that measures the photos with
    that precision could at best do (``benchmarks/pixel_oracle.py``)."""
    p = min(max(propensity, 1e-12), 1.0 - 1e-12)
    prior = np.log(p) - np.log1p(-p)
    deltas = severity * np.stack([f.delta_array for f in factories])  # (F, 6)
    vis = visible.astype(float)
    if noise_var is not None:
        vis = vis / (1.0 + np.asarray(noise_var, dtype=float))
    ll = (deltas * z - 0.5 * deltas * deltas) @ vis  # (F,)
    if serial_stated:
        m = np.array([f.malformed_serial_rate for f in factories])
        m0 = AUTHENTIC_MALFORMED_SERIAL_RATE
        ll = ll + (np.log(m / m0) if serial_malformed else np.log((1.0 - m) / (1.0 - m0)))
    with np.errstate(divide="ignore"):
        logw = np.log(weights)
    terms = logw + ll
    top = np.max(terms)
    photo = top + np.log(np.sum(np.exp(terms - top)))
    return float(prior + price_llr + photo)
