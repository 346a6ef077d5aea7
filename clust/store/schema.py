"""The tables of the conversation store, as typed SQLAlchemy 2 declarative models.

The Alembic revisions in ``clust/store/migrations`` create exactly these tables (a
test runs autogenerate against both databases and expects no difference).

- ``clust_conversations``: one row per conversation: model, default request
  parameters, system prompt blocks and tool definitions (wire JSON, cache markers
  included; ``request_head`` keeps them as the exact text sent), user metadata,
  the parent and fork point of a fork, ``next_position``, the counter that hands
  out message positions inside the write transaction (never timestamps or global ids),
  and the lease: who is sending on the conversation, until when, and which process
  waits to send next.
- ``clust_messages``: the turns, keyed by (conversation, position). ``wire`` holds
  the message exactly as it was sent (JSON text, not JSONB: PostgreSQL's JSONB
  reorders keys, and history is spliced into the next request byte for byte);
  ``cache_ttls`` lists the TTLs of the cache markers it holds.
- ``clust_usage``: the ledger, one row per request attempt, written (outcome
  ``unknown``) before the request leaves and completed with every token count (cache
  writes split 5m/1h), request id, stop reason, service tier, latency and times;
  ``outcome`` says whether its reply was stored, the stream broke off after billing
  began, or the request failed unbilled; one left ``unknown`` may have been billed.
- ``clust_summaries``: summaries of older turns made by a context-window strategy;
  a summary stands in for the turns before ``through_position`` when a request is
  assembled (the turns themselves stay).
- ``clust_tool_calls``: every tool call Claude asked for, its status (pending,
  running, succeeded, failed), input, result and attempts: what lets a tool loop
  pick up after a crash without running a completed tool twice. Keyed by
  (conversation, position of the reply, tool_use id): a later reply may repeat an id.
- ``clust_batches`` / ``clust_batch_items``: Message Batches sent by
  ``Store.batch_send``: the batch (our id, the API's id once known, state, the counts
  last seen) and one item per conversation (its ``custom_id`` and the position of the
  user turn it answers), so a restarted process collects the results.

Tables are prefixed ``clust_`` so the store can share a database with an application.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Text,
    TypeDecorator,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from clust.store.nul_text import NulSafeJson, NulSafeString, NulSafeText

__all__ = [
    "Base",
    "BatchItemRow",
    "BatchRow",
    "ConversationRow",
    "MessageRow",
    "SummaryRow",
    "ToolCallRow",
    "UsageRow",
]


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC time on every database (SQLite keeps no offset: its values
    come back naive and are marked UTC, as they were written)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value


# JSON on SQLite, JSONB on PostgreSQL (indexable, and `@>` for metadata filters), with
# NUL characters stored in a form PostgreSQL takes (see clust.store.nul_text).
JsonColumn = NulSafeJson()

_NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of the store's tables (their own ``MetaData``)."""

    metadata = MetaData(naming_convention=_NAMING)
    type_annotation_map = {dict[str, Any]: JsonColumn, datetime: UtcDateTime()}


class ConversationRow(Base):
    """A conversation and the request defaults every turn is sent with."""

    __tablename__ = "clust_conversations"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    title: Mapped[str | None] = mapped_column(NulSafeText())
    model: Mapped[str] = mapped_column(String(200))
    # Every request field but messages, as the JSON text that is sent: the source of
    # truth for sending (JSONB reorders keys; the columns below are for queries).
    request_head: Mapped[str] = mapped_column(Text)
    # Request fields other than model, messages, system and tools (max_tokens,
    # temperature, thinking, ...), as wire JSON.
    params: Mapped[dict[str, Any]] = mapped_column(JsonColumn)
    # The `system` field as wire JSON (a string or text blocks), or null.
    system: Mapped[Any | None] = mapped_column(JsonColumn)
    tools: Mapped[Any | None] = mapped_column(JsonColumn)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JsonColumn)
    parent_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("clust_conversations.id", ondelete="SET NULL")
    )
    fork_position: Mapped[int | None] = mapped_column(Integer)
    next_position: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # The one send in flight: who holds the conversation and until when (null: free).
    # On this row, so claiming it and reserving positions are one update.
    lease_holder: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None]
    # The next turn reserved by a process whose sender waits for the lease (its holder
    # prefix, ``host:pid:``; null: none): a free lease goes only to it until
    # ``lease_next_until``, and the sender that began waiting first (``lease_next_since``)
    # takes the reservation over, so waits across processes stay bounded.
    lease_next: Mapped[str | None] = mapped_column(String(64))
    lease_next_since: Mapped[datetime | None]
    lease_next_until: Mapped[datetime | None]

    __table_args__ = (
        # newest first, paginated by (created_at, id)
        Index("ix_clust_conversations_created", "created_at", "id"),
        Index("ix_clust_conversations_parent", "parent_id"),
    )


class MessageRow(Base):
    """One turn of a conversation, as sent on the wire."""

    __tablename__ = "clust_messages"

    conversation_id: Mapped[str] = mapped_column(
        String(36),
        ForeignKey("clust_conversations.id", ondelete="CASCADE"),
        primary_key=True,
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    # The message object {"role": ..., "content": ...} exactly as sent.
    wire: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    # The TTLs of the cache_control markers in ``wire``, comma-separated ("5m,1h");
    # null when it holds none. Written with the turn, so a history loads without a
    # scan of its text for the few turns that hold one.
    cache_ttls: Mapped[str | None] = mapped_column(Text)


class UsageRow(Base):
    """What one request attempt cost: the reply it produced and every token count.

    Rows outlive their conversation (deleting it sets the reference to null), so
    spending stays on record.
    """

    __tablename__ = "clust_usage"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str | None] = mapped_column(String(36))
    message_position: Mapped[int | None] = mapped_column(Integer)
    model: Mapped[str] = mapped_column(String(200))
    request_id: Mapped[str | None] = mapped_column(String(200))
    stop_reason: Mapped[str | None] = mapped_column(String(64))
    input_tokens: Mapped[int] = mapped_column(Integer)
    output_tokens: Mapped[int] = mapped_column(Integer)
    cache_creation_input_tokens: Mapped[int] = mapped_column(Integer)
    cache_creation_5m_input_tokens: Mapped[int] = mapped_column(Integer)
    cache_creation_1h_input_tokens: Mapped[int] = mapped_column(Integer)
    cache_read_input_tokens: Mapped[int] = mapped_column(Integer)
    web_search_requests: Mapped[int] = mapped_column(Integer)
    web_fetch_requests: Mapped[int] = mapped_column(Integer)
    service_tier: Mapped[str | None] = mapped_column(String(64))
    latency_ms: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime]
    # "reply": the reply was stored at message_position. "interrupted": billed but no
    # turn stored (a stream cut after message_start, a reply refused at finish);
    # message_position is null. "summary": a context-window summary request. "failed":
    # no message came back (nothing billed). "unknown": the intent row written before
    # the request left, not completed yet (in flight, or its process died: maybe billed).
    outcome: Mapped[str] = mapped_column(String(16), server_default=text("'reply'"))
    # The reply's message id: the next turn's ``diagnostics.previous_message_id``.
    message_id: Mapped[str | None] = mapped_column(String(200))
    # When the turn read nothing from the cache and the API said why
    # (``diagnostics.cache_miss_reason``): its type and the tokens it missed.
    cache_miss_reason: Mapped[str | None] = mapped_column(String(64))
    cache_missed_input_tokens: Mapped[int | None] = mapped_column(Integer)
    # The lease holder that sent the attempt: an "unknown" row whose holder still
    # holds its conversation's lease is in flight, not lost.
    holder: Mapped[str | None] = mapped_column(String(64))
    # A budget's reservation, written with the intent row when budgets apply: the
    # request's estimated input tokens and its max_tokens. Spending counts it while
    # the row is "unknown" (in flight, or maybe billed), the real usage once completed.
    reserved_input_tokens: Mapped[int | None] = mapped_column(Integer)
    reserved_output_tokens: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (
        ForeignKeyConstraint(
            ["conversation_id", "message_position"],
            ["clust_messages.conversation_id", "clust_messages.position"],
            ondelete="SET NULL",
        ),
        Index("ix_clust_usage_started", "started_at"),
        Index("ix_clust_usage_model_started", "model", "started_at"),
        Index("ix_clust_usage_conversation", "conversation_id", "message_position"),
    )


class ToolCallRow(Base):
    """One tool call of an assistant turn, and what became of it."""

    __tablename__ = "clust_tool_calls"

    conversation_id: Mapped[str] = mapped_column(
        String(36),
        ForeignKey("clust_conversations.id", ondelete="CASCADE"),
        primary_key=True,
    )
    tool_use_id: Mapped[str] = mapped_column(NulSafeString(200), primary_key=True)
    # The assistant message holding the tool_use block. Part of the key: a later reply
    # may repeat an earlier id (an edited or forked history, a test server restarted),
    # and its call is a new call.
    message_position: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(NulSafeString(200))
    input: Mapped[Any] = mapped_column(JsonColumn)
    status: Mapped[str] = mapped_column(String(16))
    # The tool_result content as wire JSON text (a string or content blocks).
    result: Mapped[str | None] = mapped_column(Text)
    is_error: Mapped[bool] = mapped_column(Boolean)
    error: Mapped[str | None] = mapped_column(NulSafeText())
    attempts: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    # The key leads with (conversation, position): the calls of one reply are read by it.
    __table_args__ = (PrimaryKeyConstraint("conversation_id", "message_position", "tool_use_id"),)


class SummaryRow(Base):
    """A summary of a conversation's turns before ``through_position``."""

    __tablename__ = "clust_summaries"

    conversation_id: Mapped[str] = mapped_column(
        String(36),
        ForeignKey("clust_conversations.id", ondelete="CASCADE"),
        primary_key=True,
    )
    through_position: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The user message that stands in for those turns, as wire JSON text.
    wire: Mapped[str] = mapped_column(Text)
    model: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]


class BatchRow(Base):
    """A Message Batch that advances many conversations (``Store.batch_send``).

    ``state``: ``submitting`` (turns and items recorded, the create request not yet
    answered), ``submitted`` (``api_id`` known, results not yet stored), ``collected``,
    or ``failed`` (the batch was never created; its turns were taken back).
    """

    __tablename__ = "clust_batches"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # The API's batch id (msgbatch_...), once the create request has answered.
    api_id: Mapped[str | None] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(16))
    # While submitting: the batch's claim on its conversations runs out then (a
    # submitter that died leaves pending turns that retry() may resend afterwards).
    claim_expires_at: Mapped[datetime | None]
    request_count: Mapped[int] = mapped_column(Integer)
    # The API's processing_status and request_counts, as last seen.
    processing_status: Mapped[str | None] = mapped_column(String(32))
    processing: Mapped[int] = mapped_column(Integer)
    succeeded: Mapped[int] = mapped_column(Integer)
    errored: Mapped[int] = mapped_column(Integer)
    canceled: Mapped[int] = mapped_column(Integer)
    expired: Mapped[int] = mapped_column(Integer)
    # Why the create request failed (state "failed").
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    submitted_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    collected_at: Mapped[datetime | None]

    __table_args__ = (
        Index("ix_clust_batches_api_id", "api_id", unique=True),
        # open batches (state "submitted") and the listing, newest first
        Index("ix_clust_batches_state_created", "state", "created_at"),
        Index("ix_clust_batches_created", "created_at"),
    )


class BatchItemRow(Base):
    """One conversation's turn in a batch, and what became of it.

    ``state``: ``open`` until its result is stored, then ``succeeded`` (the reply is at
    ``reply_position``), ``errored``, ``expired``, ``canceled`` (the user turn stays
    pending for ``retry``), ``skipped`` (the conversation was deleted or moved on), or
    ``missing`` (the ended batch had no result for it).
    """

    __tablename__ = "clust_batch_items"

    batch_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("clust_batches.id", ondelete="CASCADE"), primary_key=True
    )
    custom_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    conversation_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("clust_conversations.id", ondelete="SET NULL")
    )
    # The user turn the item sends (its reply goes to position + 1).
    position: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16))
    reply_position: Mapped[int | None] = mapped_column(Integer)
    error_type: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    finished_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_clust_batch_items_conversation", "conversation_id", "position"),)
