"""The text encoder: ONNX parity with the torch model, shapes, norms, the export cache."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from couturier.domains.discovery._encoder import (
    EMBEDDING_DIM,
    TextEncoder,
    export_onnx,
    export_path,
    reference,
    tokenizer_json,
)

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the packaged model only, never the hub

TEXTS = [
    "black men's running shoes",
    "Puma Men Blue T-shirt",
    "United Colors of Benetton Women Solid Pink Polo T-shirts with a much longer title",
    "ladies kurta",
]


@pytest.fixture(scope="session")
def onnx_model(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    # one folder for the whole session: test_search's fixture finds this export there
    return export_onnx(tmp_path_factory.getbasetemp() / "encoder-cache")


@pytest.fixture(scope="session")
def encoder(onnx_model: bytes) -> TextEncoder:
    return TextEncoder.from_onnx(onnx_model, tokenizer_json())


def test_onnx_matches_the_torch_model_on_the_same_tokens(encoder: TextEncoder) -> None:
    sample = encoder.tokenize(TEXTS)
    assert {k: v.dtype for k, v in sample.items()} == {
        "input_ids": np.dtype(np.int64),
        "attention_mask": np.dtype(np.int64),
    }
    assert sample["attention_mask"].sum(axis=1).min() < sample["input_ids"].shape[1]  # padded
    np.testing.assert_allclose(encoder.run(sample), reference(sample), atol=1e-4, rtol=0)


def test_encode_gives_unit_vectors_in_input_order(encoder: TextEncoder) -> None:
    vectors = encoder.encode(TEXTS, batch_size=3)
    assert vectors.shape == (len(TEXTS), EMBEDDING_DIM)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    one_by_one = np.vstack([encoder.encode([t]) for t in TEXTS])
    np.testing.assert_allclose(vectors, one_by_one, atol=1e-5)
    assert encoder.encode([]).shape == (0, EMBEDDING_DIM)


def test_similar_texts_are_closer_than_unrelated_ones(encoder: TextEncoder) -> None:
    shoes, sneakers, lipstick = encoder.encode(["casual shoes", "sneakers", "red lipstick"])
    assert shoes @ sneakers > shoes @ lipstick


def test_long_texts_are_truncated_to_max_tokens(encoder: TextEncoder) -> None:
    sample = encoder.tokenize(["word " * 500])
    assert sample["input_ids"].shape == (1, encoder.max_tokens)


def test_the_export_is_cached_on_disk(tmp_path: Path, onnx_model: bytes) -> None:
    path = export_path(tmp_path)
    assert "0.1" in path.name or path.name.startswith("all-minilm-l6-v2-")
    path.write_bytes(b"a cached export")
    assert export_onnx(tmp_path) == b"a cached export"  # read back, not exported again
