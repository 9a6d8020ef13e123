"""A small interaction matrix with planted structure: user groups that like item blocks."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def planted(
    n_users: int = 300, n_items: int = 120, groups: int = 6, seed: int = 0
) -> tuple[sp.csr_matrix, list[set[int]]]:
    """(train matrix, held-out items per user): each group favours its own block of items."""
    rng = np.random.default_rng(seed)
    block = n_items // groups
    popularity = 1.0 / np.arange(1, n_items + 1) ** 0.6  # a popularity skew across all items
    train = np.zeros((n_users, n_items), dtype=np.float32)
    test: list[set[int]] = []
    for user in range(n_users):
        g = user % groups
        p = popularity * 0.05
        p[g * block : (g + 1) * block] += 0.35
        liked = np.flatnonzero(rng.random(n_items) < p)
        held = rng.random(len(liked)) < 0.2
        train[user, liked[~held]] = 1.0
        test.append({int(i) for i in liked[held]})
    return sp.csr_matrix(train), test
