"""Integration tests use the real servers `.ci/run` starts.

Locally, start them the same way (see `.ci/run`) or point ``COUTURIER_TEST_REDIS_URL`` and
``COUTURIER_TEST_POSTGRES_DSN`` at your own. A missing server is a failure, not a skip: CI must
never pass by not testing.
"""

from __future__ import annotations

import os

import pytest

REDIS_URL = os.environ.get("COUTURIER_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
POSTGRES_DSN = os.environ.get(
    "COUTURIER_TEST_POSTGRES_DSN", "postgresql://couturier:couturier@127.0.0.1:5432/couturier"
)


@pytest.fixture
def redis_url() -> str:
    return REDIS_URL


@pytest.fixture
def postgres_dsn() -> str:
    return POSTGRES_DSN
