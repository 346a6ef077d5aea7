"""Fixtures for the FakeClaude tests: a running fake and a raw httpx client for it."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from clust.testing import FakeClaude

HEADERS = {"x-api-key": "test", "anthropic-version": "2023-06-01"}


@pytest.fixture
def fake() -> Iterator[FakeClaude]:
    """A started FakeClaude, closed after the test."""
    with FakeClaude() as server:
        yield server


@pytest.fixture
def http(fake: FakeClaude) -> Iterator[httpx.Client]:
    """A raw httpx client for ``fake`` with credentials and ``anthropic-version`` set."""
    # verify=False: plain HTTP to 127.0.0.1, and it skips loading CA certificates (~90 ms).
    with httpx.Client(base_url=fake.base_url, headers=HEADERS, timeout=10, verify=False) as client:
        yield client
