"""Fixtures of the tool-loop tests: the store fixtures, so each test runs on an SQLite
file and on PostgreSQL (``CLUST_TEST_POSTGRES_URL``)."""

from __future__ import annotations

# pytest's pythonpath holds tests/, so the store tests' conftest imports as a module.
from store.conftest import aclient, client, db_url, fake, fake_server, store  # noqa: F401
