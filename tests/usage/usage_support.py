"""Helpers shared by the usage tests (importable as ``usage.usage_support``): rows with
known numbers written through SQLAlchemy Core."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, cast

from sqlalchemy import Engine, Table, insert

from clust.store.schema import ConversationRow, MessageRow, UsageRow

conversations = cast(Table, ConversationRow.__table__)
messages = cast(Table, MessageRow.__table__)
usage = cast(Table, UsageRow.__table__)

EPOCH = datetime(2026, 1, 1, tzinfo=timezone.utc)


def conversation(
    conversation_id: str, metadata: Mapping[str, Any], turns: int = 0
) -> dict[str, Any]:
    """A conversation row (``turns`` messages follow it, see :func:`message_rows`)."""
    return {
        "id": conversation_id,
        "title": None,
        "model": "model-a",
        "request_head": json.dumps({"model": "model-a", "max_tokens": 1024}),
        "params": {"max_tokens": 1024},
        "system": None,
        "tools": None,
        "metadata": dict(metadata),
        "parent_id": None,
        "fork_position": None,
        "next_position": turns,
        "created_at": EPOCH,
        "updated_at": EPOCH,
    }


def message_rows(conversation_id: str, turns: int) -> list[dict[str, Any]]:
    return [
        {
            "conversation_id": conversation_id,
            "position": position,
            "role": "user" if position % 2 == 0 else "assistant",
            "wire": json.dumps({"role": "user", "content": "hi"}),
            "created_at": EPOCH,
        }
        for position in range(turns)
    ]


def usage_row(
    conversation_id: str | None,
    model: str,
    started_at: datetime,
    *,
    position: int | None = None,
    stop_reason: str | None = "end_turn",
    service_tier: str | None = "standard",
    input: int = 0,
    output: int = 0,
    write_5m: int = 0,
    write_1h: int = 0,
    read: int = 0,
) -> dict[str, Any]:
    """A usage row with these counts (times must be UTC, as the store writes them)."""
    assert started_at.tzinfo is timezone.utc
    return {
        "conversation_id": conversation_id,
        "message_position": position,
        "model": model,
        "request_id": None,
        "stop_reason": stop_reason,
        "input_tokens": input,
        "output_tokens": output,
        "cache_creation_input_tokens": write_5m + write_1h,
        "cache_creation_5m_input_tokens": write_5m,
        "cache_creation_1h_input_tokens": write_1h,
        "cache_read_input_tokens": read,
        "web_search_requests": 0,
        "web_fetch_requests": 0,
        "service_tier": service_tier,
        "latency_ms": 100,
        "started_at": started_at,
        "finished_at": started_at,
    }


def write(
    engine: Engine,
    *,
    conversation_rows: Sequence[dict[str, Any]] = (),
    message_list: Sequence[dict[str, Any]] = (),
    usage_rows: Sequence[dict[str, Any]] = (),
) -> None:
    """Insert rows in one transaction, through SQLAlchemy Core."""
    with engine.begin() as connection:
        if conversation_rows:
            connection.execute(insert(conversations), list(conversation_rows))
        if message_list:
            connection.execute(insert(messages), list(message_list))
        if usage_rows:
            connection.execute(insert(usage), list(usage_rows))
