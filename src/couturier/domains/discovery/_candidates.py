"""The first stage of marketplace recommendations: which listings a buyer could be shown.

Listings are single items (each sells once), so collaborative models learn at the *product*
level (a house's line: "Castelvetro Saddle bag"), where the history is dense, and a listing
inherits its product's score. That is also the cold start of a new listing: it is a candidate
from the moment it is listed, through its product.

:class:`Candidates` is what a trained version carries: each known buyer's top products with
their EASE and iALS scores, the listings that were available, and popularity per segment (a
buyer's favourite category) for buyers the models have never seen.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["CANDIDATE_COLUMNS", "Candidates"]

#: The candidate stage's own features, beside the feature store's.
CANDIDATE_COLUMNS = ("ease_score", "ials_score", "product_rank", "product_popularity")
_LISTING_COLUMNS = ["listing_id", "product_id", "brand_id", "category", "asking_price"]


@dataclass
class Candidates:
    """``top_products[i]``: buyer ``buyer_ids[i]``'s best products (-1 pads), with scores."""

    buyer_ids: np.ndarray  # sorted int64
    top_products: np.ndarray  # (buyers, P) int64
    ease: np.ndarray  # (buyers, P) float32
    ials: np.ndarray  # (buyers, P) float32
    listings: pd.DataFrame  # available listings: _LISTING_COLUMNS + popularity
    product_popularity: np.ndarray  # per product id: interactions in the training window
    per_product: int = 5  # listings of one product a buyer is shown at most

    @property
    def reference_s(self) -> float:
        """The newest listing's time (epoch s): listing ages are measured from it, the same
        offline and online, whatever the wall clock says."""
        if self.listings.empty:
            return 0.0
        return float(self.listings["listed_at_s"].max())

    def knows(self, buyer_id: int) -> bool:
        i = np.searchsorted(self.buyer_ids, buyer_id)
        return bool(i < len(self.buyer_ids) and self.buyer_ids[i] == buyer_id)

    def for_buyer(self, buyer_id: int, limit: int = 60) -> pd.DataFrame:
        """The candidate listings of a known buyer with the candidate stage's features: the
        newest ``per_product`` listings of each of the buyer's top products, best product first."""
        i = int(np.searchsorted(self.buyer_ids, buyer_id))
        by_product = self._by_product()
        rows, rank, ease, ials = [], [], [], []
        for r, product in enumerate(self.top_products[i]):
            found = by_product.get(int(product))
            if found is None:
                continue
            rows.append(found)
            rank.append(np.full(len(found), r, np.int64))
            ease.append(np.full(len(found), self.ease[i, r], np.float32))
            ials.append(np.full(len(found), self.ials[i, r], np.float32))
        if not rows:
            return self._with_popularity(
                self.listings.iloc[:0].assign(ease_score=0.0, ials_score=0.0, product_rank=0)
            )
        take = np.concatenate(rows)[:limit]
        frame = self.listings.iloc[take].assign(
            ease_score=np.concatenate(ease)[:limit],
            ials_score=np.concatenate(ials)[:limit],
            product_rank=np.concatenate(rank)[:limit],
        )
        return self._with_popularity(frame)

    def popular(self, category: str | None, limit: int = 60) -> pd.DataFrame:
        """The most popular available listings, within a segment (a category) when given:
        the cold start of a buyer the models have never seen."""
        cache: dict[tuple[str | None, int], pd.DataFrame] = self.__dict__.setdefault("_popular", {})
        key = (category, limit)
        if key not in cache:  # one sort per segment per version, not one per request
            pool = self.listings
            if category is not None and (pool["category"] == category).any():
                pool = pool[pool["category"] == category]
            ranked = pool.sort_values(["popularity", "listing_id"], ascending=[False, True])
            out = ranked.head(limit).assign(ease_score=0.0, ials_score=0.0, product_rank=-1)
            cache[key] = self._with_popularity(out)
        return cache[key]

    def _by_product(self) -> dict[int, np.ndarray]:
        """Product -> row positions of its newest ``per_product`` listings (built once)."""
        cached: dict[int, np.ndarray] | None = getattr(self, "_product_rows", None)
        if cached is None:
            # a listing draws its interest in its first days: the newest of each product first
            order = self.listings.sort_values(["listed_at_s", "listing_id"], ascending=False)
            positions = pd.Series(np.arange(len(self.listings)), index=self.listings.index)
            cached = {
                int(str(product)): positions.loc[group.index].to_numpy()[: self.per_product]
                for product, group in order.groupby("product_id", sort=False)
            }
            self._product_rows = cached
        return cached

    def _with_popularity(self, frame: pd.DataFrame) -> pd.DataFrame:
        pop = self.product_popularity
        ids = frame["product_id"].to_numpy()
        inside = (ids >= 0) & (ids < len(pop))
        frame = frame.copy()
        frame["product_popularity"] = np.where(inside, pop[np.clip(ids, 0, len(pop) - 1)], 0.0)
        return frame.reset_index(drop=True)

    # ---- artifacts ----------------------------------------------------------------------
    def to_artifacts(self) -> dict[str, bytes]:
        arrays = io.BytesIO()
        np.savez_compressed(
            arrays,
            buyer_ids=self.buyer_ids,
            top_products=self.top_products,
            ease=self.ease,
            ials=self.ials,
            product_popularity=self.product_popularity,
            per_product=np.array([self.per_product]),
        )
        listings = io.BytesIO()
        self.listings.to_parquet(listings, index=False)
        return {
            "candidates/arrays.npz": arrays.getvalue(),
            "candidates/listings.parquet": listings.getvalue(),
        }

    @classmethod
    def from_artifacts(cls, artifacts: dict[str, bytes]) -> Candidates:
        with np.load(io.BytesIO(artifacts["candidates/arrays.npz"])) as a:
            return cls(
                buyer_ids=a["buyer_ids"],
                top_products=a["top_products"],
                ease=a["ease"],
                ials=a["ials"],
                listings=pd.read_parquet(io.BytesIO(artifacts["candidates/listings.parquet"])),
                product_popularity=a["product_popularity"],
                per_product=int(a["per_product"][0]),
            )
