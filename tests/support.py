"""Small helpers shared by test modules (importable as ``support``: tests/ is on pythonpath)."""

from __future__ import annotations

from typing import Any

from clust.messages import Message, MessagesRequestBody


def simple_body(text: str = "Hello, Claude", **fields: Any) -> MessagesRequestBody:
    """A one-turn request; ``fields`` are extra body fields."""
    return MessagesRequestBody(
        model="claude-sonnet-5-5", max_tokens=1024, messages=[Message.user(text)], **fields
    )
