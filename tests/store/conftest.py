"""Fixtures of the store tests: each test runs on an SQLite file and on PostgreSQL.

PostgreSQL comes from ``CLUST_TEST_POSTGRES_URL`` (``.ci/run`` sets it); without it
those cases skip with the reason. Each PostgreSQL test gets a schema of its own, so
tests never see each other's rows.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from clust import AsyncClient, Client, Store
from clust.protocol.retry import RetryPolicy
from clust.testing import FakeClaude

FAST_RETRIES = RetryPolicy(max_retries=2, initial_delay=0.01, max_delay=0.05)
MODEL = "claude-sonnet-5-5"


def postgres_url() -> str | None:
    return os.environ.get("CLUST_TEST_POSTGRES_URL")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database URL: an SQLite file, or a new PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    base = postgres_url()
    if not base:
        pytest.skip("CLUST_TEST_POSTGRES_URL is not set (bash .ci/run sets it)")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    separator = "&" if "?" in base else "?"
    try:
        yield f"{base}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    with Store(db_url) as opened:
        yield opened


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


@pytest.fixture
def lease_child() -> Iterator[Callable[[dict[str, Any]], Any]]:
    """Start ``procs/lease_worker.py`` children (see ``lease_support.Child``); any still
    running at the end of the test is killed."""
    from store.lease_support import Child

    started: list[Child] = []

    def start(config: dict[str, Any]) -> Child:
        child = Child(config)
        started.append(child)
        return child

    yield start
    for child in started:
        child.close()
