"""Helpers shared by the tool-loop tests (importable as ``tools.loop_support``)."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import insert, select

from clust import Conversation, Store
from clust.store import ToolCallRow
from clust.testing import FakeClaude

MODEL = "claude-sonnet-5-5"

CALLS_TABLE = ToolCallRow.__table__


class Tally:
    """Counts a tool's executions (the side effect a crash must never repeat)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: list[Any] = []

    def add(self, value: Any) -> None:
        with self._lock:
            self.calls.append(value)

    def __len__(self) -> int:
        with self._lock:
            return len(self.calls)


def new_conversation(store: Store) -> Conversation:
    return store.create_conversation(model=MODEL, max_tokens=256)


def tool_rows(store: Store, conversation_id: str) -> list[dict[str, Any]]:
    """The stored tool calls of a conversation, by message position then tool_use id."""
    table = CALLS_TABLE
    with store.engine.connect() as connection:
        found = connection.execute(
            select(table)
            .where(table.c.conversation_id == conversation_id)
            .order_by(table.c.message_position, table.c.tool_use_id)
        ).all()
    return [dict(row._mapping) for row in found]


def row_by_id(store: Store, conversation_id: str) -> dict[str, dict[str, Any]]:
    return {row["tool_use_id"]: row for row in tool_rows(store, conversation_id)}


def insert_running_call(
    store: Store,
    conversation_id: str,
    *,
    position: int,
    tool_use_id: str,
    name: str,
    input: Any,
) -> None:
    """Stand in for a process that died inside a tool: the loop had recorded the call and
    marked it ``running`` (one attempt, started, never finished) when the process vanished.
    Written with SQLAlchemy because a real death cannot happen inside a test process."""
    now = datetime.now(timezone.utc)
    with store.engine.begin() as connection:
        connection.execute(
            insert(CALLS_TABLE).values(
                conversation_id=conversation_id,
                tool_use_id=tool_use_id,
                message_position=position,
                name=name,
                input=input,
                status="running",
                result=None,
                is_error=False,
                error=None,
                attempts=1,
                created_at=now,
                started_at=now,
                finished_at=None,
            )
        )


def messages_sent(fake: FakeClaude, index: int = -1) -> list[dict[str, Any]]:
    """The ``messages`` of a request FakeClaude received."""
    return list(fake.requests[index].body["messages"])


def tool_results_sent(fake: FakeClaude, index: int = -1) -> list[dict[str, Any]]:
    """The ``tool_result`` blocks of the last turn of a request (which must be a user turn)."""
    last = messages_sent(fake, index)[-1]
    assert last["role"] == "user"
    assert isinstance(last["content"], list)
    assert all(block["type"] == "tool_result" for block in last["content"])
    return list(last["content"])


def stored_result(row: dict[str, Any]) -> Any:
    """A row's ``result`` column (wire JSON text) decoded."""
    return None if row["result"] is None else json.loads(row["result"])
