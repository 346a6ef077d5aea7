"""Rows, not HTTP: the SQLAlchemy schema of the conversation store, its queries, its
engines and its Alembic migrations. :class:`clust.Store` is the public entry point."""

from __future__ import annotations

from clust.store.schema import (
    Base,
    ConversationRow,
    MessageRow,
    ToolCallRow,
    UsageRow,
)

__all__ = ["Base", "ConversationRow", "MessageRow", "ToolCallRow", "UsageRow"]
