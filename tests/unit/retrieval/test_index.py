from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from couturier.errors import InvalidInputError, NotFoundError
from couturier.retrieval import VectorIndex


def _clustered(n: int, d: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(40, d))
    return (centers[rng.integers(0, 40, n)] + 0.6 * rng.normal(size=(n, d))).astype(np.float32)


def _exact(x: np.ndarray, q: np.ndarray, k: int) -> np.ndarray:
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    return np.argsort(-(qn @ xn.T), axis=1)[:, :k]


def test_hnsw_recall_at_10_against_exact_search() -> None:
    x, q = _clustered(6000, 32, 0), _clustered(200, 32, 1)
    index = VectorIndex(32, exact_below=1000)  # 6000 vectors: HNSW
    index.add(np.arange(6000) + 1000, x)
    got = index.search(q, k=10).ids - 1000
    want = _exact(x, q, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(got, want, strict=True)])
    assert recall >= 0.95


def test_small_groups_are_searched_exactly_and_within_their_group() -> None:
    x = _clustered(300, 8, 2)
    groups = np.repeat([0, 1, 2], 100)
    index = VectorIndex(8)
    index.add(np.arange(300), x, groups)
    hits = index.search(x[:5], k=5, groups=[1] * 5)
    assert ((hits.ids >= 100) & (hits.ids < 200)).all()  # only brand 1's items
    own = index.search(x[150:151], k=1, groups=[1])
    assert own.ids[0, 0] == 150 and own.scores[0, 0] == pytest.approx(1.0, abs=1e-5)


def test_fewer_items_than_k_and_unknown_groups_give_minus_one() -> None:
    index = VectorIndex(4)
    index.add([7, 8], np.eye(4)[:2], groups=[3, 3])
    hits = index.search(np.eye(4)[:2], k=3, groups=[3, 9])
    assert hits.ids[0].tolist()[:2] == [7, 8] and hits.ids[0, 2] == -1
    assert (hits.ids[1] == -1).all()


def test_save_and_load_give_the_same_answers_and_a_stable_fingerprint(tmp_path: Path) -> None:
    x = _clustered(3000, 16, 3)
    index = VectorIndex(16, exact_below=500)
    index.add(np.arange(3000), x, groups=np.arange(3000) % 2)
    fp = index.save(tmp_path / "idx")
    loaded = VectorIndex.load(tmp_path / "idx")
    q = x[:50]
    a, b = (
        index.search(q, 10, groups=np.arange(50) % 2),
        loaded.search(q, 10, groups=np.arange(50) % 2),
    )
    assert (a.ids == b.ids).all()
    assert VectorIndex.fingerprint(tmp_path / "idx") == fp
    loaded.add([10_000], x[:1], groups=[0])  # still extendable after loading
    assert len(loaded) == 3001


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda i: i.add([1], np.ones((1, 3))), "4-d vectors"),
        (lambda i: i.add([1, 2], np.ones((1, 4))), "2 ids for 1 vectors"),
        (lambda i: i.add([1], np.full((1, 4), np.nan)), "NaN"),
        (lambda i: i.add([1], np.zeros((1, 4))), "zero vector"),
        (lambda i: i.add([0], np.ones((1, 4))), "unique"),
        (lambda i: i.search(np.ones((1, 4)), k=0), "at least one"),
    ],
)
def test_bad_input_is_refused(call: object, match: str) -> None:
    index = VectorIndex(4)
    index.add([0], np.ones((1, 4)))
    with pytest.raises(InvalidInputError, match=match):
        call(index)  # type: ignore[operator]


def test_loading_nothing_says_so(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no vector index"):
        VectorIndex.load(tmp_path)


def test_an_index_travels_as_named_files_beside_other_artifacts() -> None:
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(300, 8)).astype(np.float32)
    index = VectorIndex(8)
    index.add(np.arange(300), vectors, groups=np.arange(300) % 3)
    files = index.to_files("similar/")
    assert files and all(name.startswith("similar/") for name in files)
    bundle = {**files, "other/thing.bin": b"not an index file"}
    again = VectorIndex.from_files(bundle, "similar/")
    a = index.search(vectors[:20], k=5, groups=np.arange(20) % 3)
    b = again.search(vectors[:20], k=5, groups=np.arange(20) % 3)
    np.testing.assert_array_equal(a.ids, b.ids)
    np.testing.assert_allclose(a.scores, b.scores)
