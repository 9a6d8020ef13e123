"""A FAISS index per group, over L2-normalized vectors (inner product = cosine similarity)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from couturier.errors import InvalidInputError, NotFoundError
from couturier.extras import require

__all__ = ["SearchResult", "VectorIndex"]

FORMAT = "couturier-vector-index/1"


@dataclass(frozen=True)
class SearchResult:
    """``ids[i, j]`` is query i's j-th neighbour (-1: fewer than k in its group)."""

    ids: np.ndarray
    scores: np.ndarray  # cosine similarity, higher is nearer


class VectorIndex:
    """Nearest neighbours by cosine similarity, searched within a group (a brand, a line).

    Groups with fewer than ``exact_below`` vectors are searched exactly (``IndexFlatIP``);
    larger ones with HNSW (``IndexHNSWFlat``, ``m`` links, ``ef_search`` candidates).
    """

    def __init__(
        self,
        dim: int,
        *,
        m: int = 32,
        ef_construction: int = 200,
        ef_search: int = 128,
        exact_below: int = 2000,
    ) -> None:
        if dim < 1:
            raise InvalidInputError(f"dim={dim}; an index needs dim >= 1", field="dim")
        self.dim, self.m, self.ef_construction, self.ef_search = dim, m, ef_construction, ef_search
        self.exact_below = exact_below
        self._vectors: dict[int, list[np.ndarray]] = {}
        self._ids: dict[int, list[np.ndarray]] = {}
        self._built: dict[int, tuple[Any, np.ndarray]] = {}

    # ---- building ----------------------------------------------------------------------
    def add(self, ids: Any, vectors: Any, groups: Any = None) -> None:
        """Add vectors (normalized here) with integer ids, each in a group (default group 0)."""
        v = self._check_vectors(vectors)
        i = np.asarray(ids, dtype=np.int64).reshape(-1)
        if len(i) != len(v):
            raise InvalidInputError(
                f"{len(i)} ids for {len(v)} vectors; give one id per vector", field="ids"
            )
        g = _groups(groups, len(v), "vectors")
        known: np.ndarray = (
            np.concatenate([np.concatenate(x) for x in self._ids.values()])
            if self._ids
            else np.empty(0, np.int64)
        )
        if len(np.unique(i)) != len(i) or np.isin(i, known).any():
            raise InvalidInputError("ids must be unique across the index", field="ids")
        for group in np.unique(g):
            mask = g == group
            self._vectors.setdefault(int(group), []).append(v[mask])
            self._ids.setdefault(int(group), []).append(i[mask])
            self._built.pop(int(group), None)

    def _check_vectors(self, vectors: Any) -> np.ndarray:
        v = np.asarray(vectors, dtype=np.float32)
        if v.ndim == 1:
            v = v.reshape(1, -1)
        if v.ndim != 2 or v.shape[1] != self.dim:
            raise InvalidInputError(
                f"vectors have shape {v.shape}; this index holds {self.dim}-d vectors",
                field="vectors",
            )
        if not np.isfinite(v).all():
            raise InvalidInputError("vectors contain NaN or infinity", field="vectors")
        norms = np.linalg.norm(v, axis=1, keepdims=True)
        if (norms == 0).any():
            raise InvalidInputError("a zero vector has no direction to compare", field="vectors")
        return np.ascontiguousarray(v / norms)

    def _index(self, group: int) -> tuple[Any, np.ndarray]:
        if group not in self._built:
            faiss = _faiss()

            vectors = np.concatenate(self._vectors[group])
            ids = np.concatenate(self._ids[group])
            index: Any
            if len(vectors) < self.exact_below:
                index = faiss.IndexFlatIP(self.dim)
            else:
                index = faiss.IndexHNSWFlat(self.dim, self.m, faiss.METRIC_INNER_PRODUCT)
                index.hnsw.efConstruction = self.ef_construction
                index.hnsw.efSearch = self.ef_search
            index.add(vectors)
            self._built[group] = (index, ids)
        return self._built[group]

    @property
    def groups(self) -> list[int]:
        return sorted(self._ids)

    def __len__(self) -> int:
        return sum(len(a) for parts in self._ids.values() for a in parts)

    # ---- searching -----------------------------------------------------------------------
    def search(self, vectors: Any, k: int = 10, groups: Any = None) -> SearchResult:
        """The ``k`` nearest of each query, within the query's group."""
        if k < 1:
            raise InvalidInputError(f"k={k}; ask for at least one neighbour", field="k")
        q = self._check_vectors(vectors)
        g = _groups(groups, len(q), "queries")
        ids = np.full((len(q), k), -1, dtype=np.int64)
        scores = np.full((len(q), k), -np.inf, dtype=np.float32)
        for group in np.unique(g):
            rows = np.flatnonzero(g == group)
            if int(group) not in self._ids:
                continue  # an unknown group has no neighbours
            index, group_ids = self._index(int(group))
            s, pos = index.search(q[rows], k)
            found = pos >= 0
            ids[rows] = np.where(found, group_ids[np.clip(pos, 0, None)], -1)
            scores[rows] = np.where(found, s, -np.inf)
        return SearchResult(ids, scores)

    def recall_at_k(self, vectors: Any, k: int = 10, groups: Any = None) -> float:
        """Share of the exact ``k`` nearest (brute force, same group) that :meth:`search` finds."""
        faiss = _faiss()

        q = self._check_vectors(vectors)
        g = _groups(groups, len(q), "queries")
        approx = self.search(q, k, g).ids
        found = total = 0
        for group in np.unique(g):
            if int(group) not in self._ids:
                continue
            rows = np.flatnonzero(g == group)
            vectors_g = np.concatenate(self._vectors[int(group)])
            ids_g = np.concatenate(self._ids[int(group)])
            flat = faiss.IndexFlatIP(self.dim)
            flat.add(vectors_g)
            _, pos = flat.search(q[rows], k)
            for row, exact in zip(rows, pos, strict=True):
                want = set(ids_g[exact[exact >= 0]].tolist())
                found += len(want & set(approx[row].tolist()))
                total += len(want)
        return found / total if total else 1.0

    # ---- persistence ---------------------------------------------------------------------
    def save(self, folder: str | Path) -> str:
        """Write the index to ``folder``; return its fingerprint (sha256 of the files)."""
        faiss = _faiss()

        root = Path(folder)
        root.mkdir(parents=True, exist_ok=True)
        for group in self.groups:
            index, ids = self._index(group)
            faiss.write_index(index, str(root / f"group-{group}.faiss"))
            np.save(root / f"group-{group}.ids.npy", ids)
        meta = {
            "format": FORMAT,
            "dim": self.dim,
            "m": self.m,
            "ef_construction": self.ef_construction,
            "ef_search": self.ef_search,
            "exact_below": self.exact_below,
            "groups": self.groups,
            "count": len(self),
        }
        (root / "index.json").write_text(json.dumps(meta, indent=2))
        return self.fingerprint(root)

    def to_files(self, prefix: str = "") -> dict[str, bytes]:
        """The files :meth:`save` writes, by name under ``prefix``: what a registry stores
        as a version's artifacts."""
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            self.save(tmp)
            return {f"{prefix}{p.name}": p.read_bytes() for p in sorted(Path(tmp).iterdir())}

    @classmethod
    def from_files(cls, files: dict[str, bytes], prefix: str = "") -> VectorIndex:
        """The index :meth:`to_files` wrote (the other files of ``files`` are ignored)."""
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            for name, data in files.items():
                if name.startswith(prefix):
                    (Path(tmp) / name.removeprefix(prefix)).write_bytes(data)
            return cls.load(tmp)

    @staticmethod
    def fingerprint(folder: str | Path) -> str:
        h = hashlib.sha256()
        for path in sorted(Path(folder).iterdir()):
            h.update(path.name.encode())
            h.update(path.read_bytes())
        return h.hexdigest()

    @classmethod
    def load(cls, folder: str | Path) -> VectorIndex:
        faiss = _faiss()

        root = Path(folder)
        meta_path = root / "index.json"
        if not meta_path.is_file():
            raise NotFoundError(f"{root} holds no vector index (no index.json)", path=str(root))
        meta = json.loads(meta_path.read_text())
        if meta.get("format") != FORMAT:
            raise InvalidInputError(
                f"{meta_path}: format {meta.get('format')!r}, this version reads {FORMAT!r}",
                field="format",
            )
        index = cls(
            meta["dim"],
            m=meta["m"],
            ef_construction=meta["ef_construction"],
            ef_search=meta["ef_search"],
            exact_below=meta["exact_below"],
        )
        for group in meta["groups"]:
            faiss_index = faiss.read_index(str(root / f"group-{group}.faiss"))
            if hasattr(faiss_index, "hnsw"):
                faiss_index.hnsw.efSearch = index.ef_search
            ids = np.load(root / f"group-{group}.ids.npy")
            index._built[group] = (faiss_index, ids)
            index._ids[group] = [ids]
            # keep the vectors, so a later add() can rebuild the group with them
            index._vectors[group] = [faiss_index.reconstruct_n(0, faiss_index.ntotal)]
        return index


def _faiss() -> Any:
    return require("faiss", extra="retrieval", purpose="vector search (couturier.retrieval)")


def _groups(groups: Any, n: int, what: str) -> np.ndarray:
    """One integer group per row (default: everything in group 0)."""
    g = np.zeros(n, np.int64) if groups is None else np.asarray(groups, np.int64).reshape(-1)
    if len(g) != n:
        raise InvalidInputError(f"{len(g)} groups for {n} {what}", field="groups")
    return g
