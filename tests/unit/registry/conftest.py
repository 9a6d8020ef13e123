"""A real MLflow (SQLite backend) per module; the models come from tests.support.registry."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from couturier.registry import ModelRegistry
from couturier.settings import Settings

_names = itertools.count()


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelRegistry]:
    reg = ModelRegistry(Settings(home=tmp_path_factory.mktemp("registry")))
    yield reg
    reg.close()


@pytest.fixture
def name() -> str:
    """A fresh registered-model name per test (the registry is shared by the module)."""
    return f"model-{next(_names)}"
