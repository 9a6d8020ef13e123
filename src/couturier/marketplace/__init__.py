"""The marketplace data model and its simulator: the world every other layer trains and tests on.

No real counterfeit data set is public, so couturier simulates a marketplace whose generative story
is written down (``docs/simulator.md``) and whose ground truth is known, down to an oracle: the
Bayes-optimal probability that each listing is counterfeit, and a demand model whose sale
probabilities are known (``sale_probability``), so pricing has its own Bayes bar.

>>> from couturier.marketplace import SimulationConfig, simulate
>>> market = simulate(SimulationConfig.of(listings=500, seed=1), "/tmp/market")  # doctest: +SKIP
>>> market.read("listings").shape  # doctest: +SKIP
(500, 14)
"""

from couturier.marketplace._catalog import CATEGORIES, MAX_BRANDS
from couturier.marketplace._config import SimulationConfig
from couturier.marketplace._control_points import (
    CONTROL_POINTS,
    RESULTS,
    ControlPoint,
    control_point,
)
from couturier.marketplace._demand import ELASTICITY, expected_revenue, sale_probability
from couturier.marketplace._flaws import FLAWS, VIEWS
from couturier.marketplace._scenarios import SCENARIOS
from couturier.marketplace._schemas import DATA_SCHEMAS, TABLE_SCHEMAS, TABLES, validate
from couturier.marketplace._simulator import simulate
from couturier.marketplace._store import MANIFEST, Marketplace
from couturier.marketplace._summary import Summary, contact_sheet, summarize

__all__ = [
    "CATEGORIES",
    "CONTROL_POINTS",
    "DATA_SCHEMAS",
    "ELASTICITY",
    "FLAWS",
    "MANIFEST",
    "MAX_BRANDS",
    "RESULTS",
    "SCENARIOS",
    "TABLES",
    "TABLE_SCHEMAS",
    "VIEWS",
    "ControlPoint",
    "Marketplace",
    "SimulationConfig",
    "Summary",
    "contact_sheet",
    "control_point",
    "expected_revenue",
    "sale_probability",
    "simulate",
    "summarize",
    "validate",
]
