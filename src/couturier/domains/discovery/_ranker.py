"""The two-stage recommender: EASE and iALS propose candidates, a LightGBM lambdarank re-ranks.

Stage one takes the union of each candidate model's top ``n_candidates`` unseen items per user.
Stage two scores each (user, item) candidate from the candidate models' scores and ranks, item
co-occurrence with the user's history, item popularity, user activity and any extra columns the
caller supplies (:class:`ExtraFeatures`: per user, per item, per pair - the marketplace's
feature-store values such as budget against price or favourite-brand match).

The ranker must learn from candidates whose scores look like serving-time scores, so it cannot
learn on the items the candidate models were fitted on. :meth:`TwoStageRecommender.fit`
therefore holds out ``holdout`` of each user's interactions as the ranker's targets, fits the
candidate models on the rest, trains the ranker, then refits the candidate models on every
interaction for serving. Counts enter as ratios to their mean, so that the 80 % fit and the
100 % refit put them on one scale.

The ranker exports to ONNX (:meth:`~TwoStageRecommender.ranker_onnx`); its raw lambdarank score
is what :meth:`~TwoStageRecommender.reference` returns, for the registry's parity check.
"""

# ruff: noqa: N803 - X is scikit-learn's name for the data matrix

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
import pandas as pd
import scipy.sparse as sp

from couturier.domains.discovery._recommenders import (
    EASE,
    IALS,
    ItemKNN,
    as_interactions,
    top_k,
)
from couturier.errors import InvalidInputError, InvalidParameterError
from couturier.extras import require

__all__ = [
    "BASE_FEATURES",
    "ExtraFeatures",
    "OnnxRanker",
    "TwoStageRecommender",
    "lambdarank_onnx",
    "on_float32_grid",
]

# feature -> monotone constraint: a higher candidate score may never lower the ranker's score.
# Without them the trees fit the noise of the few held-out positives (a score range that
# identifies one user), and the ranker fell below EASE alone on a validation split.
_BASE: dict[str, int] = {
    "ease_score": 1,
    "ease_rank": -1,
    "ease_score_ratio": 1,
    "ials_score": 1,
    "ials_rank": -1,
    "knn_score": 1,
    "knn_max_similarity": 1,
    "item_popularity": 0,
    "user_activity": 0,
}
BASE_FEATURES: tuple[str, ...] = tuple(_BASE)

PairFeatures = pd.DataFrame | Callable[[np.ndarray, np.ndarray], pd.DataFrame]

_RANKER_DEFAULTS: dict[str, Any] = {
    "n_estimators": 200,
    "learning_rate": 0.05,
    "num_leaves": 7,
    "min_child_samples": 200,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.8,
    "n_jobs": 1,  # deterministic, and the 2-core machines run one job at a time
    "verbose": -1,
}
_BATCH_USERS = 512  # bounds the dense users x items score blocks


@dataclass(frozen=True)
class ExtraFeatures:
    """Caller-supplied ranker columns, keyed by matrix indices (row = user, column = item).

    ``users`` is indexed by user, ``items`` by item, ``pairs`` by a ``(user, item)``
    MultiIndex - or is a function ``(users, items) -> DataFrame`` with one row per pair, for
    features computed on the fly. A key absent from a frame gives NaN, which LightGBM and its
    ONNX export treat as missing.

    >>> extra = ExtraFeatures(items=pd.DataFrame({"price": [120.0, 80.0]}))
    >>> extra.columns()
    ['price']
    """

    users: pd.DataFrame | None = None
    items: pd.DataFrame | None = None
    pairs: PairFeatures | None = None

    def columns(self) -> list[str]:
        names: list[str] = []
        for frame in (self.users, self.items):
            if frame is not None:
                names += [str(c) for c in frame.columns]
        if isinstance(self.pairs, pd.DataFrame):
            names += [str(c) for c in self.pairs.columns]
        elif self.pairs is not None:
            empty = np.zeros(0, dtype=np.int64)
            names += [str(c) for c in self.pairs(empty, empty).columns]
        return names

    def values(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """The extra columns of each (user, item) pair, ``len(users) x len(columns())``."""
        blocks: list[np.ndarray] = []
        if self.users is not None:
            blocks.append(_lookup(self.users, users))
        if self.items is not None:
            blocks.append(_lookup(self.items, items))
        if isinstance(self.pairs, pd.DataFrame):
            keys = pd.MultiIndex.from_arrays([users, items])
            blocks.append(self.pairs.reindex(keys).to_numpy(dtype=np.float64))
        elif self.pairs is not None:
            frame = self.pairs(users, items)
            if len(frame) != len(users):
                raise InvalidInputError(
                    f"the pair-feature function returned {len(frame)} rows for {len(users)} "
                    "pairs; return one row per (user, item) pair, in order",
                    field="pairs",
                )
            blocks.append(frame.to_numpy(dtype=np.float64))
        if not blocks:
            return np.zeros((len(users), 0))
        return np.hstack(blocks)


def _lookup(frame: pd.DataFrame, keys: np.ndarray) -> np.ndarray:
    return frame.reindex(keys).to_numpy(dtype=np.float64)


@dataclass
class _CandidateModels:
    ease: EASE
    ials: IALS
    knn: ItemKNN
    item_popularity: np.ndarray  # count / mean count: the same scale on 80 % and 100 %
    user_activity: np.ndarray


class TwoStageRecommender:
    """Candidates from EASE and iALS, re-ranked by a LightGBM lambdarank model.

    >>> model = TwoStageRecommender(n_candidates=100).fit(X)          # doctest: +SKIP
    >>> model.recommend(np.arange(10), X, k=10)                       # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        ease: EASE | None = None,
        ials: IALS | None = None,
        n_candidates: int = 100,
        holdout: float = 0.2,
        ranker_params: dict[str, Any] | None = None,
        random_state: int = 0,
    ) -> None:
        self.ease = ease
        self.ials = ials
        self.n_candidates = n_candidates
        self.holdout = holdout
        self.ranker_params = ranker_params
        self.random_state = random_state

    def get_params(self) -> dict[str, Any]:
        return {
            "ease": self.ease,
            "ials": self.ials,
            "n_candidates": self.n_candidates,
            "holdout": self.holdout,
            "ranker_params": self.ranker_params,
            "random_state": self.random_state,
        }

    def clone(self, **overrides: Any) -> TwoStageRecommender:
        """A fresh, unfitted copy; ``overrides`` replace configuration values."""
        return TwoStageRecommender(**{**self.get_params(), **overrides})

    # -- fitting -------------------------------------------------------------------------

    def fit(self, X: Any, *, extra: ExtraFeatures | None = None) -> Self:
        """Fit the candidate models, train the ranker on a held-out share, refit for serving.

        ``extra`` columns are used for training and kept as the default at recommendation time.
        """
        self._check_params()
        lgb = require("lightgbm", extra="discovery", purpose="the two-stage ranker")
        matrix = as_interactions(X)
        extra = extra or ExtraFeatures()
        fit_part, targets = self._holdout_split(matrix)
        models = self._fit_candidates(fit_part)
        users = np.flatnonzero(np.diff(targets.indptr) > 0)
        pair_users, pair_items, features = self._candidates(users, fit_part, models, extra)
        labels = np.asarray(targets[pair_users, pair_items]).ravel().astype(np.int32)
        keep = _queries_with_positives(pair_users, labels)
        pair_users, features, labels = pair_users[keep], features[keep], labels[keep]
        if labels.sum() == 0:
            raise InvalidInputError(
                "no held-out interaction is among the candidates; the matrix is too sparse "
                "to train a ranker (give users more interactions or raise n_candidates)",
                field="X",
            )
        n_extra = features.shape[1] - len(BASE_FEATURES)
        params = {
            **_RANKER_DEFAULTS,
            "random_state": self.random_state,
            "monotone_constraints": [*_BASE.values(), *[0] * n_extra],
        }
        params.update(self.ranker_params or {})
        ranker = lgb.LGBMRanker(objective="lambdarank", **params)
        _, group = np.unique(pair_users, return_counts=True)  # pairs come grouped by user
        ranker.fit(features, labels, group=group)
        self.ranker_ = ranker
        self.feature_names_ = [*BASE_FEATURES, *extra.columns()]
        self.extra_ = extra
        models = self._fit_candidates(matrix)  # serving sees every interaction
        self.ease_, self.ials_, self.knn_ = models.ease, models.ials, models.knn
        self._models = models
        self.n_items_ = matrix.shape[1]
        return self

    def _check_params(self) -> None:
        if self.n_candidates < 1:
            raise InvalidParameterError(
                f"n_candidates is {self.n_candidates}; it must be at least 1",
                field="n_candidates",
            )
        if not 0.0 < self.holdout < 1.0:
            raise InvalidParameterError(
                f"holdout is {self.holdout}; it must be in (0, 1)", field="holdout"
            )

    def _holdout_split(self, matrix: sp.csr_matrix) -> tuple[sp.csr_matrix, sp.csr_matrix]:
        """Each user's interactions: ``holdout`` of them (rounded down) become targets."""
        rng = np.random.default_rng(self.random_state)
        coo = matrix.tocoo()
        order = rng.permutation(coo.nnz)
        users = coo.row[order]
        by_user = pd.Series(users)
        position = by_user.groupby(by_user).cumcount().to_numpy()
        size = np.diff(matrix.indptr)[users]
        held = position < np.floor(self.holdout * size)
        rows, cols = users, coo.col[order]

        def part(mask: np.ndarray) -> sp.csr_matrix:
            ones = np.ones(int(mask.sum()), dtype=np.float32)
            return sp.csr_matrix((ones, (rows[mask], cols[mask])), shape=matrix.shape)

        return part(~held), part(held)

    def _fit_candidates(self, matrix: sp.csr_matrix) -> _CandidateModels:
        ease = (self.ease or EASE()).clone()
        ials = (self.ials or IALS()).clone()
        ials.random_state = self.random_state
        item_counts = np.asarray(matrix.sum(axis=0)).ravel()
        user_counts = np.diff(matrix.indptr).astype(np.float64)
        return _CandidateModels(
            ease=ease.fit(matrix),
            ials=ials.fit(matrix),
            knn=ItemKNN().fit(matrix),
            item_popularity=item_counts / max(item_counts.mean(), 1e-12),
            user_activity=user_counts / max(user_counts.mean(), 1e-12),
        )

    # -- candidates and features ---------------------------------------------------------

    def _candidates(
        self,
        users: np.ndarray,
        matrix: sp.csr_matrix,
        models: _CandidateModels,
        extra: ExtraFeatures,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(pair users, pair items, features) of every candidate, grouped by user, in order."""
        parts = [
            self._candidate_block(users[start : start + _BATCH_USERS], matrix, models)
            for start in range(0, len(users), _BATCH_USERS)
        ]
        if not parts:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, np.zeros((0, len(BASE_FEATURES) + len(extra.columns())))
        pair_users = np.concatenate([p[0] for p in parts])
        pair_items = np.concatenate([p[1] for p in parts])
        base = np.vstack([p[2] for p in parts])
        features = np.hstack([base, extra.values(pair_users, pair_items)])
        return pair_users, pair_items, on_float32_grid(features)

    def _candidate_block(
        self, users: np.ndarray, matrix: sp.csr_matrix, models: _CandidateModels
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        seen = matrix[users].nonzero()
        ease = models.ease.score(users, matrix)
        ials = models.ials.score(users, matrix)
        ease[seen] = -np.inf
        ials[seen] = -np.inf
        chosen = np.zeros(ease.shape, dtype=bool)
        rows = np.arange(len(users))[:, None]
        chosen[rows, top_k(ease, self.n_candidates)] = True
        chosen[rows, top_k(ials, self.n_candidates)] = True
        chosen[seen] = False  # a user with fewer unseen items than n_candidates
        row, items = np.nonzero(chosen)
        pair_users = users[row]
        top_ease = ease.max(axis=1)
        knn = models.knn.score(users, matrix)
        features = np.column_stack(
            [
                ease[row, items],
                _ranks(ease)[row, items],
                ease[row, items] / np.where(top_ease[row] > 0, top_ease[row], 1.0),
                ials[row, items],
                _ranks(ials)[row, items],
                knn[row, items],
                models.knn.max_similarity(pair_users, items, matrix),
                models.item_popularity[items],
                models.user_activity[pair_users],
            ]
        )
        return pair_users, items, features

    # -- serving -------------------------------------------------------------------------

    def recommend(
        self, users: np.ndarray, X: Any, k: int, *, extra: ExtraFeatures | None = None
    ) -> np.ndarray:
        """The ``k`` best unseen items per user, best first (``len(users) x k``).

        ``X`` holds the users' histories (seen items are never returned); ``extra`` replaces
        the columns given at fit time (same names). A user with fewer than ``k`` candidates
        gets their row padded with -1.
        """
        self._check_fitted()
        if k < 1:
            raise InvalidParameterError(f"k is {k}; it must be at least 1", field="k")
        extra = extra or self.extra_
        if extra.columns() != self.feature_names_[len(BASE_FEATURES) :]:
            raise InvalidInputError(
                f"extra feature columns {extra.columns()} differ from those the ranker was "
                f"trained on {self.feature_names_[len(BASE_FEATURES) :]}; pass the same columns",
                field="extra",
            )
        matrix = as_interactions(X)
        users = np.asarray(users, dtype=np.int64)
        pair_users, pair_items, features = self._candidates(users, matrix, self._models, extra)
        scores = self.ranker_.predict(features) if len(features) else np.zeros(0)
        # one sort: by user (ascending), then by ranker score (descending)
        order = np.lexsort((-scores, pair_users))
        pair_users, pair_items = pair_users[order], pair_items[order]
        starts = np.searchsorted(pair_users, users)
        ends = np.searchsorted(pair_users, users, side="right")
        out = np.full((len(users), k), -1, dtype=np.int64)
        for row, (start, end) in enumerate(zip(starts, ends, strict=True)):
            best = pair_items[start : min(end, start + k)]
            out[row, : len(best)] = best
        return out

    def reference(self, x: np.ndarray) -> np.ndarray:
        """The ranker's raw lambdarank scores of feature rows (columns: ``feature_names_``)."""
        self._check_fitted()
        return np.asarray(self.ranker_.predict(on_float32_grid(np.asarray(x))))

    def ranker_onnx(self) -> bytes:
        """The ranker as ONNX (:func:`lambdarank_onnx`)."""
        self._check_fitted()
        return lambdarank_onnx(self.ranker_, len(self.feature_names_))

    def _check_fitted(self) -> None:
        if not hasattr(self, "ranker_"):
            raise InvalidInputError(
                "TwoStageRecommender is not fitted; call fit(X) first", field="model"
            )


class OnnxRanker:
    """A registered ranker's ONNX graph with LightGBM's ``predict`` shape."""

    def __init__(self, onnx_model: bytes) -> None:
        from couturier.registry import session

        self.session = session(onnx_model)

    def predict(self, x: np.ndarray) -> np.ndarray:
        (out,) = self.session.run(None, {"features": np.asarray(x, np.float32)})
        return np.asarray(out, np.float64).ravel()


def lambdarank_onnx(ranker: Any, n_features: int) -> bytes:
    """A fitted ``LGBMRanker`` as ONNX (opset 15): input ``features`` float32
    ``[None, n_features]``, one output ``variable``, the raw lambdarank score ``[None, 1]``.
    onnxmltools converts the ranker directly. Feed it inputs on :func:`on_float32_grid`."""
    onnxmltools = require("onnxmltools", extra="discovery", purpose="the ranker's export")
    data_types = require(
        "onnxmltools.convert.common.data_types", extra="discovery", purpose="ONNX export"
    )
    onx = onnxmltools.convert_lightgbm(
        ranker,
        initial_types=[("features", data_types.FloatTensorType([None, n_features]))],
        target_opset=15,
    )
    return bytes(onx.SerializeToString())


def on_float32_grid(x: np.ndarray) -> np.ndarray:
    """``x`` rounded to float32 with the 8 lowest mantissa bits cleared (relative step 2^-15).

    ONNX Runtime compares float32 inputs with float32 thresholds; LightGBM compares doubles.
    A split threshold halfway between two values one float32 step apart rounds onto one of
    them, and the runtimes then disagree. On this coarser grid every midpoint of two grid values
    is itself a float32, so both runtimes take the same branch (the ONNX parity test).
    """
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32) & np.uint32(0xFFFFFF00)
    return bits.view(np.float32).astype(np.float64)


def _ranks(scores: np.ndarray) -> np.ndarray:
    """0-based rank of every item in its row, best first."""
    order = np.argsort(-scores, axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(scores.shape[1])[None, :], axis=1)
    return ranks.astype(np.float64)


def _queries_with_positives(pair_users: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Mask of the pairs whose user has at least one positive: the others carry no gradient."""
    positives = pd.Series(labels).groupby(pair_users).transform("max").to_numpy()
    return np.asarray(positives > 0)
