"""Small helpers shared by test modules (importable as ``support``: tests/ is on pythonpath)."""

from __future__ import annotations

import json
from typing import Any

from clust.messages import Message, MessagesRequestBody


def simple_body(text: str = "Hello, Claude", **fields: Any) -> MessagesRequestBody:
    """A one-turn request; ``fields`` are extra body fields."""
    return MessagesRequestBody(
        model="claude-sonnet-5-5", max_tokens=1024, messages=[Message.user(text)], **fields
    )


def message_start(input_tokens: int = 10, **usage: Any) -> dict[str, Any]:
    """A ``message_start`` event (empty assistant message); ``usage`` adds usage fields."""
    return {
        "type": "message_start",
        "message": {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-5-5",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": input_tokens, "output_tokens": 1, **usage},
        },
    }


def sse(*events: dict[str, Any]) -> str:
    """Events as an SSE body: ``event:`` from each event's type, ``data:`` its JSON."""
    return "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events)
