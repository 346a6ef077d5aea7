"""Migrations that move data keep it: a store written at an older revision, upgraded,
behaves as if it had been written at the newest.

- 0006 fills ``clust_messages.cache_ttls`` from the stored JSON of existing turns.
- 0007 moves each lease from ``clust_leases`` onto its conversation row.

Both go down and up again with their data. Every test runs on an SQLite file and on
PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from alembic import command
from sqlalchemy import inspect, text

from clust import Client, Store
from clust.messages import ConversationBusy, Message
from clust.store.engine import WRITE
from clust.store.migrate import HEAD_REVISION, MIGRATIONS
from clust.testing import FakeClaude

MODEL = "claude-sonnet-5-5"
TTL_BETA = "extended-cache-ttl-2025-04-11"
HOUR = {"type": "ephemeral", "ttl": "1h"}
FIVE = {"type": "ephemeral", "ttl": "5m"}


def migrate(store: Store, revision: str, *, down: bool) -> None:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with store.engine.connect().execution_options(**WRITE) as connection, connection.begin():
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)


def columns(store: Store, table: str) -> set[str]:
    with store.engine.connect() as connection:
        return {column["name"] for column in inspect(connection).get_columns(table)}


def stored_ttls(store: Store, conversation_id: str) -> list[str | None]:
    with store.engine.connect() as connection:
        found = connection.execute(
            text(
                "SELECT cache_ttls FROM clust_messages WHERE conversation_id = :id "
                "ORDER BY position"
            ),
            {"id": conversation_id},
        ).all()
    return [row[0] for row in found]


def as_utc(value: datetime | str) -> datetime:
    if isinstance(value, str):  # SQLite keeps SQLAlchemy's text format
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def test_cache_ttls_are_filled_in_for_stored_turns(
    db_url: str, client: Client, fake: FakeClaude
) -> None:
    with Store(db_url) as store:
        conv = store.create_conversation(model=MODEL, max_tokens=32)
        conv.send(client, "plain")
        marked = Message.user(
            [
                {"type": "text", "text": "kept for an hour", "cache_control": HOUR},
                {"type": "text", "text": "and five minutes", "cache_control": FIVE},
            ]
        )
        conv.send(client, marked)
        conv.send(client, 'a text that names "cache_control" holds no marker')
        migrate(store, "0005", down=True)
        assert "cache_ttls" not in columns(store, "clust_messages")

    with Store(db_url) as store:  # upgrades to the head on open
        assert stored_ttls(store, conv.id) == [None, None, "1h,5m", None, None, None]
        reopened = store.get_conversation(conv.id)
        fake.reset()
        reopened.send(client, "next")
        # The 1h marker of a turn read back from the store still adds the beta header.
        assert TTL_BETA in (fake.last_request.header("anthropic-beta") or "")


def test_leases_move_to_the_conversation_row_and_back(
    db_url: str, client: Client, fake: FakeClaude
) -> None:
    with Store(db_url) as store:
        held = store.create_conversation(model=MODEL, max_tokens=32)
        free = store.create_conversation(model=MODEL, max_tokens=32)
        free.send(client, "hello")
        migrate(store, "0006", down=True)
        assert "lease_holder" not in columns(store, "clust_conversations")
        expires = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(minutes=10)
        with store.engine.connect() as connection, connection.begin():
            connection.execute(
                text(
                    "INSERT INTO clust_leases (conversation_id, holder, expires_at) "
                    "VALUES (:id, 'someone', :expires)"
                ),
                {"id": held.id, "expires": expires},
            )

    with Store(db_url) as store:  # 0007 on open
        with store.engine.connect() as connection:
            assert "clust_leases" not in inspect(connection).get_table_names()
            rows = dict(
                connection.execute(text("SELECT id, lease_holder FROM clust_conversations")).all()
            )
        assert rows == {held.id: "someone", free.id: None}
        with pytest.raises(ConversationBusy) as busy:
            store.get_conversation(held.id).send(client, "hi")
        assert busy.value.expires_at == expires
        store.get_conversation(free.id).send(client, "again")

        migrate(store, "0006", down=True)
        with store.engine.connect() as connection:
            leases = connection.execute(
                text("SELECT conversation_id, holder, expires_at FROM clust_leases")
            ).all()
            assert "lease_holder" not in columns(store, "clust_conversations")
        assert [(cid, holder, as_utc(at)) for cid, holder, at in leases] == [
            (held.id, "someone", expires)
        ]
        migrate(store, HEAD_REVISION, down=False)
        assert store.get_conversation(free.id).history[-1].role.value == "assistant"
