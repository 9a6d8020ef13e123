"""Visual evidence: the verified reference photos nearest to a listing's photos.

References are the photos of listings an expert has judged, authentic or counterfeit, embedded
by the image model. They are searched within their house and view (a monogram close-up is
compared with monogram close-ups of the same house), so a neighbour is evidence an expert can
read: "these 10 verified items look most like it; 7 were counterfeit".

Raw embeddings, not centred on their group's mean: centring spreads the similarities (top-1
mean 0.994 -> 0.953) but lowered the retrieval score's validation PR-AUC (0.533 -> 0.518) on
the 50k benchmark world, so it was left out.

The retrieval score of a photo is the similarity-weighted share of counterfeits among its k
nearest references, shrunk towards the references' base rate; a listing takes the maximum over
its photos. The index and the reference table are saved together and registered with the
fusion model (``docs/decisions/0005-faiss-for-retrieval.md`` for the index).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from couturier.retrieval import SearchResult, VectorIndex

__all__ = ["Evidence", "ReferenceSet"]

K = 10


@dataclass(frozen=True)
class Evidence:
    """The nearest references of one listing, best first."""

    photo_id: list[int]
    listing_id: list[int]
    verdict: list[str]
    similarity: list[float]

    def as_records(self) -> list[dict[str, Any]]:
        return [
            {"photo_id": p, "listing_id": listing, "verdict": v, "similarity": round(s, 4)}
            for p, listing, v, s in zip(
                self.photo_id, self.listing_id, self.verdict, self.similarity, strict=True
            )
        ]


class ReferenceSet:
    """Verified reference photos in a :class:`VectorIndex`, grouped by context (house x view)."""

    def __init__(self, index: VectorIndex, table: pd.DataFrame, prior_strength: float = 1.0):
        self.index = index
        self.table = table.reset_index(drop=True)  # photo_id, listing_id, counterfeit
        self.base_rate = float(table["counterfeit"].mean()) if len(table) else 0.0
        self.prior_strength = prior_strength
        # numpy lookups by photo id: a request scores a few photos, pandas indexing per call
        # cost milliseconds
        order = np.argsort(table["photo_id"].to_numpy(), kind="stable")
        self._ids = table["photo_id"].to_numpy(np.int64)[order]
        self._listing = table["listing_id"].to_numpy(np.int64)[order]
        self._fake = table["counterfeit"].to_numpy(bool)[order]

    def _rows(self, photo_ids: np.ndarray) -> np.ndarray:
        return np.searchsorted(self._ids, photo_ids)

    @classmethod
    def build(
        cls,
        photo_ids: Any,
        listing_ids: Any,
        embeddings: np.ndarray,
        contexts: Any,
        counterfeit: Any,
    ) -> ReferenceSet:
        table = pd.DataFrame(
            {
                "photo_id": np.asarray(photo_ids, np.int64),
                "listing_id": np.asarray(listing_ids, np.int64),
                "counterfeit": np.asarray(counterfeit, bool),
            }
        )
        # an all-zero embedding (no unit active) has no direction: it cannot be evidence
        keep = np.linalg.norm(embeddings, axis=1) > 0
        index = VectorIndex(dim=embeddings.shape[1])
        index.add(
            table["photo_id"].to_numpy()[keep], embeddings[keep], groups=np.asarray(contexts)[keep]
        )
        return cls(index, table[keep].reset_index(drop=True))

    @classmethod
    def empty(cls, dim: int) -> ReferenceSet:
        table = pd.DataFrame(
            {
                "photo_id": np.empty(0, np.int64),
                "listing_id": np.empty(0, np.int64),
                "counterfeit": np.empty(0, bool),
            }
        )
        return cls(VectorIndex(dim=dim), table)

    def __len__(self) -> int:
        return len(self.table)

    def search(self, embeddings: np.ndarray, contexts: Any, k: int = K) -> SearchResult:
        """Nearest references per photo; a zero embedding gets no neighbours."""
        e = np.asarray(embeddings, np.float32)
        ids = np.full((len(e), k), -1, np.int64)
        scores = np.full((len(e), k), -np.inf, np.float32)
        ok = np.linalg.norm(e, axis=1) > 0
        if ok.any():
            found = self.index.search(e[ok], k, np.asarray(contexts)[ok])
            ids[ok], scores[ok] = found.ids, found.scores
        return SearchResult(ids, scores)

    def nobody(self, photos: int, k: int = K) -> SearchResult:
        """A search that found no one (skipped): photo scores fall back to the base rate."""
        return SearchResult(
            np.full((photos, k), -1, np.int64), np.full((photos, k), -np.inf, np.float32)
        )

    def recall_at_k(self, embeddings: np.ndarray, contexts: Any, k: int = K) -> float:
        """The index's recall@k against exact search, for these queries."""
        e = np.asarray(embeddings, np.float32)
        ok = np.linalg.norm(e, axis=1) > 0
        return self.index.recall_at_k(e[ok], k, np.asarray(contexts, np.int64)[ok])

    def photo_scores(self, result: SearchResult) -> np.ndarray:
        """Per photo: similarity-weighted counterfeit share of its neighbours, shrunk to the
        references' base rate."""
        found = result.ids >= 0
        fake = np.zeros(result.ids.shape, bool)
        if found.any():
            fake[found] = self._fake[self._rows(result.ids[found])]
        w = np.where(found, np.clip(result.scores, 0.0, None), 0.0)
        a = self.prior_strength
        return np.asarray(((w * fake).sum(1) + a * self.base_rate) / (w.sum(1) + a))

    def evidence(self, result: SearchResult, rows: Any, k: int = K) -> Evidence:
        """The ``k`` best distinct references over the photos in ``rows`` (one listing)."""
        r = np.asarray(rows)
        ids, sims = result.ids[r].ravel(), result.scores[r].ravel()
        keep = ids >= 0
        ids, sims = ids[keep], sims[keep]
        order = np.argsort(-sims, kind="stable")
        ids, sims = ids[order], sims[order]
        _, first = np.unique(ids, return_index=True)  # each reference once, at its best
        best = np.sort(first)[:k]
        ids, sims = ids[best], sims[best]
        at = self._rows(ids)
        return Evidence(
            photo_id=ids.astype(int).tolist(),
            listing_id=self._listing[at].astype(int).tolist(),
            verdict=np.where(self._fake[at], "counterfeit", "authentic").tolist(),
            similarity=sims.astype(float).tolist(),
        )

    # ---- persistence: one bundle of files, registered as artifacts ---------------------------
    def to_artifacts(self, prefix: str = "references/") -> dict[str, bytes]:
        files = self.index.to_files(f"{prefix}index/")
        buf = io.BytesIO()
        self.table.to_parquet(buf, index=False)
        files[f"{prefix}references.parquet"] = buf.getvalue()
        return files

    @staticmethod
    def fingerprint(files: dict[str, bytes]) -> str:
        """One hash of a reference bundle: the version of the evidence a decision cites."""
        import hashlib

        h = hashlib.sha256()
        for name in sorted(files):
            h.update(name.encode())
            h.update(files[name])
        return h.hexdigest()

    @classmethod
    def from_artifacts(cls, files: dict[str, bytes], prefix: str = "references/") -> ReferenceSet:
        index = VectorIndex.from_files(files, f"{prefix}index/")
        table = pd.read_parquet(io.BytesIO(files[f"{prefix}references.parquet"]))
        return cls(index, table)
