"""A history comes back in position order whatever order the database reads its rows in.

On PostgreSQL the history is read without ``ORDER BY`` (see ``repository._LOAD_TURNS_PG``)
and put in order in Python when the scan met the rows out of order. Here the rows are
written in reverse position order and read with index scans switched off, so the
sequential scan meets them backwards.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timezone

import pytest
from sqlalchemy import text

from clust import Client, Store
from clust.testing import FakeClaude

MODEL = "claude-sonnet-5-5"
TURNS = 40


def wire(position: int) -> str:
    role = "user" if position % 2 == 0 else "assistant"
    if role == "user":
        return json.dumps({"role": role, "content": f"question {position}"})
    return json.dumps({"role": role, "content": [{"type": "text", "text": f"answer {position}"}]})


@pytest.fixture
def reversed_store(db_url: str) -> Iterator[tuple[str, str]]:
    """A conversation of ``TURNS`` rows written newest first; and a URL whose
    connections read without index scans (PostgreSQL)."""
    if not db_url.startswith("postgresql"):
        pytest.skip("PostgreSQL reads the history unsorted; SQLite reads it in index order")
    with Store(db_url) as store:
        conv = store.create_conversation(model=MODEL, max_tokens=32)
        now = datetime.now(timezone.utc)
        with store.engine.begin() as connection:
            for position in reversed(range(TURNS)):
                connection.execute(
                    text(
                        "INSERT INTO clust_messages "
                        "(conversation_id, position, role, wire, created_at) "
                        "VALUES (:id, :position, :role, :wire, :now)"
                    ),
                    {
                        "id": conv.id,
                        "position": position,
                        "role": "user" if position % 2 == 0 else "assistant",
                        "wire": wire(position),
                        "now": now,
                    },
                )
            connection.execute(
                text("UPDATE clust_conversations SET next_position = :n WHERE id = :id"),
                {"n": TURNS, "id": conv.id},
            )
    no_index = "%20-cenable_indexscan%3Doff%20-cenable_bitmapscan%3Doff"
    yield conv.id, db_url + no_index


def test_rows_read_backwards_come_out_in_order(
    reversed_store: tuple[str, str], client: Client, fake: FakeClaude
) -> None:
    conversation_id, url = reversed_store
    with Store(url) as store:
        with store.engine.connect() as connection:
            plan = "\n".join(
                row[0]
                for row in connection.execute(
                    text("EXPLAIN SELECT role FROM clust_messages WHERE conversation_id = :id"),
                    {"id": conversation_id},
                )
            )
        assert "Seq Scan" in plan, plan  # the scan meets the rows newest first

        conv = store.get_conversation(conversation_id)
        texts = [message.text() for message in conv.history]
        assert texts == [f"question {p}" if p % 2 == 0 else f"answer {p}" for p in range(TURNS)]
        conv.send(client, "next")
        sent = fake.last_request.body["messages"]
        assert [m["role"] for m in sent] == ["user", "assistant"] * (TURNS // 2) + ["user"]
        assert sent[0]["content"] == "question 0"
        assert sent[TURNS - 1]["content"][0]["text"] == f"answer {TURNS - 1}"
