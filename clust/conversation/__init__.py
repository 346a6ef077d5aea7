"""The conversation framework: :class:`Store` and :class:`Conversation`.

Where the client and the store meet: a conversation's turns, system prompt, tools
and defaults live in SQLite or PostgreSQL, each send goes out with the stored
history, and each reply is stored with its usage.
"""

from __future__ import annotations

from clust.conversation.batching import BatchCollection, StoredBatch
from clust.conversation.caching import CachePolicy
from clust.conversation.conversation import Conversation
from clust.conversation.records import TurnUsage, UsageTotals
from clust.conversation.store import Store
from clust.conversation.streams import AsyncConversationStream, ConversationStream
from clust.conversation.window import DropOldest, RaiseOnOverflow, Summarize, TruncationStrategy

__all__ = [
    "AsyncConversationStream",
    "BatchCollection",
    "CachePolicy",
    "Conversation",
    "ConversationStream",
    "DropOldest",
    "RaiseOnOverflow",
    "Store",
    "StoredBatch",
    "Summarize",
    "TruncationStrategy",
    "TurnUsage",
    "UsageTotals",
]
