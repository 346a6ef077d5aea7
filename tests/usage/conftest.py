"""Fixtures of the usage tests: the store's, so every test runs on an SQLite file and
on PostgreSQL (helpers are in ``usage_support``)."""

from __future__ import annotations

from store.conftest import db_url, store  # noqa: F401
