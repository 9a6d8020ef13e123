"""The one Dagster resource: where couturier's stores are, and which marketplace to read."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg

if TYPE_CHECKING:
    from couturier.marketplace import Marketplace
    from couturier.settings import Settings

__all__ = ["CouturierResource"]


class CouturierResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """``home``: ``$COUTURIER_HOME`` for this run (empty: the settings' own);
    ``marketplace``: the marketplace folder to read (empty: ``COUTURIER_MARKETPLACE_RUN``, else
    the demo's under ``home``);
    ``as_of``: an ISO time to run at instead of now (a replay's simulated clock): the
    marketplace is seen as it was then, and features are materialized up to then."""

    home: str = ""
    marketplace: str = ""
    as_of: str = ""

    def now(self) -> datetime:
        return datetime.fromisoformat(self.as_of) if self.as_of else datetime.now(UTC)

    def settings(self) -> Settings:
        from couturier.settings import Settings

        return Settings.load(home=Path(self.home)) if self.home else Settings.load()

    def _path(self) -> Path:
        if self.marketplace:
            return Path(self.marketplace)
        return self.settings().active_marketplace

    def market(self, asset: str) -> Marketplace:
        """The marketplace; a missing one fails the run naming ``asset`` and the time, before
        anything is written."""
        from couturier.errors import NotFoundError
        from couturier.marketplace import Marketplace

        path = self._path()
        try:
            market = Marketplace(path)
        except NotFoundError:
            raise dg.Failure(
                f"{asset}: no marketplace at {path} at "
                f"{self.now().isoformat(timespec='seconds')}; nothing was changed. "
                "Run `couturier simulate --out PATH` (or `couturier demo`) and point the "
                "resource's `marketplace` at it"
            ) from None
        return market.at(self.now()) if self.as_of else market

    def market_or_none(self) -> Marketplace | None:
        from couturier.errors import NotFoundError
        from couturier.marketplace import Marketplace

        try:
            market = Marketplace(self._path())
        except NotFoundError:
            return None
        return market.at(self.now()) if self.as_of else market
