"""The store's fixed SQL runs on the driver's cursor only when that changes nothing a
user can see: SQL logging and SQLAlchemy's events see every statement, and on
PostgreSQL a connection whose client encoding is not UTF-8 reads text as text."""

from __future__ import annotations

import logging
import uuid

import pytest
from sqlalchemy import create_engine

from clust import Client, Store
from clust.testing import FakeClaude

MODEL = "claude-sonnet-5-5"


def test_engine_logging_name_logs_every_statement(
    db_url: str, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    name = f"app{uuid.uuid4().hex[:6]}"
    engine = create_engine(db_url, logging_name=name)
    try:
        with Store(engine=engine) as store:
            conv = store.create_conversation(model=MODEL, max_tokens=32)
            with caplog.at_level(logging.INFO, logger=f"sqlalchemy.engine.Engine.{name}"):
                conv.send(client, "hello")
    finally:
        engine.dispose()
    logged = " ".join(record.getMessage() for record in caplog.records)
    assert "UPDATE clust_conversations" in logged
    assert "INSERT INTO clust_messages" in logged


def test_history_read_on_a_latin1_connection_stays_utf8(
    db_url: str, client: Client, fake: FakeClaude
) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("a PostgreSQL client encoding")
    latin1 = db_url.replace("options=", "options=-cclient_encoding%3DLATIN1%20", 1)
    with Store(latin1) as store:
        conv = store.create_conversation(model=MODEL, max_tokens=32)
        conv.send(client, "café")
        reopened = store.get_conversation(conv.id)
        assert [m.text() for m in reopened.history] == ["café", "Echo: café"]
        reopened.send(client, "encore")
        assert fake.last_request.body["messages"][0]["content"] == "café"
