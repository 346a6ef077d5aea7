"""Fixtures: one FakeClaude per module, reset before each test, and clients pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from clust import AsyncClient, Client
from clust.protocol.retry import RetryPolicy
from clust.testing import FakeClaude

FAST_RETRIES = RetryPolicy(max_retries=2, initial_delay=0.01, max_delay=0.05)


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeClaude]:
    with FakeClaude() as fake:
        yield fake


@pytest.fixture
def fake(fake_server: FakeClaude) -> FakeClaude:
    fake_server.reset()
    return fake_server


@pytest.fixture
def client(fake: FakeClaude) -> Iterator[Client]:
    with Client(api_key="test-key", base_url=fake.base_url, retry_policy=FAST_RETRIES) as c:
        yield c


@pytest.fixture
async def aclient(fake: FakeClaude) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(
        api_key="test-key", base_url=fake.base_url, retry_policy=FAST_RETRIES
    ) as c:
        yield c
