"""Fixtures of the ``clust`` command tests: a FakeClaude for the subprocesses to talk
to, and the store tests' ``db_url`` (an SQLite file, and a PostgreSQL schema of its
own when ``CLUST_TEST_POSTGRES_URL`` is set)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from store.conftest import db_url  # noqa: F401

from clust.testing import FakeClaude


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeClaude]:
    with FakeClaude() as fake:
        yield fake


@pytest.fixture
def fake(fake_server: FakeClaude) -> FakeClaude:
    fake_server.reset()
    return fake_server


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{(tmp_path / 'cli.db').as_posix()}"
