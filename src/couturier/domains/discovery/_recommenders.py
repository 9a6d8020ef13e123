"""Candidate models on a binary user x item matrix: popularity, EASE, iALS and item-kNN.

Every model follows the scikit-learn contract (configuration in ``__init__``, ``fit(X) ->
self``, learned state ending in ``_``) and answers three questions about a CSR matrix ``X``
whose rows are users and columns items (1 = interacted):

* :meth:`~CandidateModel.score` - dense scores, one row per asked user;
* :meth:`~CandidateModel.score_pairs` - the score of given (user, item) pairs, the ranker's
  features;
* :meth:`~CandidateModel.recommend` - the top-k item indices, items already in ``X`` left out.

``X`` at scoring time is the users' *history*: EASE and item-kNN read it directly, so a user
who was not in the training matrix still gets recommendations; iALS's user factors are learned,
so it scores only rows it was fitted on.
"""

# ruff: noqa: N803, N806 - X is scikit-learn's name for the data matrix

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from typing import Any, Self

import numpy as np
import scipy.sparse as sp

from couturier.errors import InvalidInputError, InvalidParameterError
from couturier.extras import require

__all__ = ["EASE", "IALS", "CandidateModel", "ItemKNN", "Popularity", "as_interactions"]


def as_interactions(X: Any) -> sp.csr_matrix:
    """``X`` as a binary float32 CSR matrix (any positive entry counts as one interaction)."""
    if not sp.issparse(X):
        X = sp.csr_matrix(np.asarray(X))
    matrix = sp.csr_matrix(X, dtype=np.float32)
    matrix.data = (matrix.data > 0).astype(np.float32)
    matrix.eliminate_zeros()
    return matrix


class CandidateModel(ABC):
    """What every candidate model shares: parameters, pair scores and top-k recommendation.
    A model implements ``fit`` and ``score``; the rest is derived from them."""

    n_items_: int

    def get_params(self) -> dict[str, Any]:
        """The ``__init__`` arguments, as scikit-learn's ``get_params`` (no nesting)."""
        parameters = inspect.signature(type(self).__init__).parameters.values()
        return {
            p.name: getattr(self, p.name)
            for p in parameters
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        }

    def clone(self) -> Self:
        """A fresh, unfitted model with the same configuration."""
        return type(self)(**self.get_params())

    @abstractmethod
    def fit(self, X: Any) -> Self:
        """Learn from the user x item matrix ``X``; return ``self``."""

    @abstractmethod
    def score(self, users: np.ndarray, X: Any) -> np.ndarray:
        """Dense scores, ``len(users) x n_items``; higher is better."""

    def score_pairs(self, users: np.ndarray, items: np.ndarray, X: Any) -> np.ndarray:
        """The score of each (``users[j]``, ``items[j]``) pair."""
        users = np.asarray(users, dtype=np.int64)
        unique, row = np.unique(users, return_inverse=True)
        return self.score(unique, X)[row, np.asarray(items, dtype=np.int64)]

    def recommend(
        self, users: np.ndarray, X: Any, k: int, *, exclude_seen: bool = True
    ) -> np.ndarray:
        """The ``k`` best item indices per user, best first (``len(users) x k``).

        With ``exclude_seen`` the items of each user's row of ``X`` are never returned.
        """
        users = np.asarray(users, dtype=np.int64)
        scores = self.score(users, X).astype(np.float64)
        if exclude_seen:
            scores[as_interactions(X)[users].nonzero()] = -np.inf
        return top_k(scores, k)

    def _check_fitted_matrix(self, X: Any) -> sp.csr_matrix:
        matrix = as_interactions(X)
        n_items = getattr(self, "n_items_", None)
        if n_items is None:
            raise InvalidInputError(
                f"{type(self).__name__} is not fitted; call fit(X) first", field="model"
            )
        if matrix.shape[1] != n_items:
            raise InvalidInputError(
                f"X has {matrix.shape[1]} item columns but {type(self).__name__} was fitted on "
                f"{n_items}; pass the same item index",
                field="X",
            )
        return matrix


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Row-wise indices of the ``k`` largest scores, largest first (ties: lower index first)."""
    if k < 1:
        raise InvalidParameterError(f"k is {k}; it must be at least 1", field="k")
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    part.sort(axis=1)  # a stable tie order whatever argpartition returned
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


class Popularity(CandidateModel):
    """Every user gets the most interacted-with items. The baseline any model must beat."""

    def fit(self, X: Any) -> Self:
        matrix = as_interactions(X)
        self.n_items_ = matrix.shape[1]
        self.item_counts_ = np.asarray(matrix.sum(axis=0)).ravel().astype(np.float64)
        return self

    def score(self, users: np.ndarray, X: Any) -> np.ndarray:
        self._check_fitted_matrix(X)
        return np.broadcast_to(self.item_counts_, (len(users), self.n_items_)).copy()


class EASE(CandidateModel):
    """Embarrassingly Shallow Autoencoder (Steck, 2019): a closed-form item x item model.

    ``B = -P / diag(P)`` with ``P = (X^T X + l2 I)^-1`` and a zero diagonal; a user's scores are
    their history times ``B``. Memory is ``n_items^2`` floats, fine to tens of thousands of items.

    >>> EASE(l2=300.0).fit(X).recommend(np.arange(3), X, k=10)  # doctest: +SKIP
    """

    def __init__(self, l2: float = 300.0) -> None:
        self.l2 = l2

    def fit(self, X: Any) -> Self:
        if self.l2 <= 0:
            raise InvalidParameterError(f"l2 is {self.l2}; it must be positive", field="l2")
        matrix = as_interactions(X)
        gram = (matrix.T @ matrix).toarray().astype(np.float64)
        gram[np.diag_indices_from(gram)] += self.l2
        precision = np.linalg.inv(gram)
        weights = precision / -np.diag(precision)
        np.fill_diagonal(weights, 0.0)
        self.n_items_ = matrix.shape[1]
        self.weights_ = weights
        return self

    def score(self, users: np.ndarray, X: Any) -> np.ndarray:
        matrix = self._check_fitted_matrix(X)
        return np.asarray(matrix[np.asarray(users, dtype=np.int64)] @ self.weights_)


class ItemKNN(CandidateModel):
    """Item-based neighbours: a user's score for an item sums its cosine similarity to their items.

    Used by the two-stage ranker as a co-occurrence feature (sum and max similarity to history).
    """

    def __init__(self, shrink: float = 10.0) -> None:
        self.shrink = shrink

    def fit(self, X: Any) -> Self:
        matrix = as_interactions(X)
        co = (matrix.T @ matrix).toarray().astype(np.float64)
        norms = np.sqrt(np.diag(co))
        # the shrink term damps similarities estimated from few co-occurrences
        similarity = co / (np.outer(norms, norms) + self.shrink)
        np.fill_diagonal(similarity, 0.0)
        self.n_items_ = matrix.shape[1]
        self.similarity_ = similarity
        return self

    def score(self, users: np.ndarray, X: Any) -> np.ndarray:
        matrix = self._check_fitted_matrix(X)
        return np.asarray(matrix[np.asarray(users, dtype=np.int64)] @ self.similarity_)

    def max_similarity(self, users: np.ndarray, items: np.ndarray, X: Any) -> np.ndarray:
        """For each (user, item) pair, the item's largest similarity to any item of the user."""
        matrix = self._check_fitted_matrix(X)
        users = np.asarray(users, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        out = np.zeros(len(users))
        for user in np.unique(users):
            at = np.flatnonzero(users == user)
            history = matrix.indices[matrix.indptr[user] : matrix.indptr[user + 1]]
            if history.size:
                out[at] = self.similarity_[np.ix_(history, items[at])].max(axis=0)
        return out


class IALS(CandidateModel):
    """Implicit ALS (Hu, Koren and Volinsky, 2008) through ``implicit``'s CPU solver.

    Single-threaded (``num_threads=1`` and a one-thread BLAS during fit), so a seed fixes the
    result. ``alpha`` scales the confidence of an observed interaction.
    """

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 0.05,
        alpha: float = 2.0,
        iterations: int = 15,
        random_state: int = 0,
    ) -> None:
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.random_state = random_state

    def fit(self, X: Any) -> Self:
        als = require("implicit.cpu.als", extra="discovery", purpose="the iALS candidate model")
        threadpoolctl = require("threadpoolctl", extra="discovery", purpose="iALS")
        matrix = as_interactions(X)
        # implicit warns, and slows down, when BLAS runs its own thread pool inside ALS
        with threadpoolctl.threadpool_limits(1, "blas"):
            model = als.AlternatingLeastSquares(
                factors=self.factors,
                regularization=self.regularization,
                alpha=self.alpha,
                iterations=self.iterations,
                random_state=self.random_state,
                num_threads=1,
                calculate_training_loss=False,
            )
            model.fit(matrix, show_progress=False)
        self.n_items_ = matrix.shape[1]
        self.user_factors_ = np.asarray(model.user_factors, dtype=np.float64)
        self.item_factors_ = np.asarray(model.item_factors, dtype=np.float64)
        return self

    def score(self, users: np.ndarray, X: Any) -> np.ndarray:
        self._check_fitted_matrix(X)
        users = np.asarray(users, dtype=np.int64)
        if users.size and users.max() >= len(self.user_factors_):
            raise InvalidInputError(
                f"user {int(users.max())} was not in the matrix iALS was fitted on "
                f"({len(self.user_factors_)} users); refit with the new users",
                field="users",
            )
        return np.asarray(self.user_factors_[users] @ self.item_factors_.T)

    def score_pairs(self, users: np.ndarray, items: np.ndarray, X: Any) -> np.ndarray:
        self._check_fitted_matrix(X)
        users = np.asarray(users, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        return np.asarray(
            np.einsum("ij,ij->i", self.user_factors_[users], self.item_factors_[items])
        )
