"""The next turn of many conversations as one Message Batch, at the batch price.

``Store.batch_send`` submits (:mod:`clust.conversation.batch_submit`),
``Store.collect_batch`` stores the replies (:mod:`clust.conversation.batch_collect`);
the batch and one item per conversation are rows (``clust_batches``,
``clust_batch_items``), so the process that collects need not be the one that
submitted. This module holds what both read: the stored batch and how it is looked up.
Submitting and collecting are each written once, as a plan
(:mod:`clust.protocol.plans`) run by the blocking or the async driver.

Submitting:

1. Everything is checked before anything is written: 1 to 100,000 pairs, no
   conversation twice, each one of this store, its content valid (``None``: resend
   its pending turn), not busy, no pending turn when content is given (one when it is
   not), no turn waiting in another open batch, the last reply's tool calls answered
   by the new turn, budgets.
2. The batch row is written (``submitting``, with a claim that runs out after the
   store's ``lease_seconds``). Then per conversation, as ``send`` does it: take the
   lease and store the user turn (its position handed out in that transaction; no
   intent row in the usage ledger: the turn's usage is recorded when collected);
   assemble the request with the turn engine's ``prepare`` (same head, truncation
   strategy, cache policy, spliced history bytes); then record its item
   (``custom_id``: the conversation id and the turn's position) and release the
   lease, in one transaction.
3. One create request; its answer records the API's batch id (``submitted``).

From step 2 on, an open item holds its conversation: ``send``, ``retry``, ``stream``
and ``discard_pending`` raise :class:`~clust.messages.TurnInBatch` until the batch is
collected. What a failure leaves:

- An exception before the API answered (a conversation taken meanwhile, a request
  that cannot fit its context window, a create request refused or failed, Ctrl-C,
  a cancelled task): every write of step 2 is taken back (the new user turns are
  deleted, the items removed, leases released), the batch row stays as
  ``failed`` with the error, and the exception propagates. Calling ``batch_send``
  again with the same pairs is safe.
- The process dies during steps 2-3, or after the API accepted the batch but before
  its id was recorded: the user turns stay, pending, in a batch ``submitting`` whose
  claim runs out after ``lease_seconds`` (then listed as ``abandoned``); from then on
  they are ordinary pending turns that ``retry`` (or another ``batch_send`` with
  content ``None``) resends. A batch the API accepted in that last window runs
  unrecorded: billed, its results never stored. (The create request carries no
  idempotency key, so no process can find it again.)

Collecting: the batch is looked up (or waited for); once ended its results are
streamed (constant memory) and stored in transactions of up to 100. A succeeded
result stores the assistant turn and its usage row (``service_tier`` ``"batch"``,
priced at the batch discount) in the same transaction as its item's outcome, so a
collection cut short resumes where it stopped and collecting twice stores nothing
twice. An errored, expired or canceled item leaves its user turn pending (``retry``
resends it); an item whose conversation was deleted or no longer ends with that turn
is ``skipped``; an item without a result line is ``missing`` (its turn is pending).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, Row

from clust.conversation.batch_effects import GetBatch
from clust.conversation.effects import Db
from clust.conversation.turns import utcnow
from clust.messages.errors import InvalidParameter, StoreError
from clust.store import batches as batch_rows
from clust.store.engine import transaction

if TYPE_CHECKING:
    from clust.messages.batches import MessageBatch
    from clust.protocol.plans import Plan

__all__ = [
    "BATCH_STATES",
    "COUNTS",
    "ITEM_STATES",
    "BatchCollection",
    "StoredBatch",
    "batch_key",
    "custom_id_for",
    "listing",
    "load",
    "record_remote",
    "refresh",
    "stored_batch",
]

BATCH_STATES = ("submitting", "submitted", "collected", "failed", "abandoned")
"""A stored batch's ``state`` (``abandoned``: a submission whose process died)."""
ITEM_STATES = ("open", "succeeded", "errored", "expired", "canceled", "skipped", "missing")
"""An item's state: ``open`` until its result is stored."""
COUNTS = ("processing", "succeeded", "errored", "canceled", "expired")
"""The API's request counts, each a column of ``clust_batches``."""

_CUSTOM_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def custom_id_for(conversation_id: str, position: int) -> str:
    """The ``custom_id`` of a conversation's turn: ``<conversation id>_<position>``, or
    a digest of the id when that would not be 1-64 characters of ``A-Za-z0-9_-``."""
    plain = f"{conversation_id}_{position}"
    if _CUSTOM_ID.fullmatch(plain):
        return plain
    digest = hashlib.sha256(conversation_id.encode()).hexdigest()[:40]
    return f"c{digest}_{position}"


@dataclass(frozen=True)
class StoredBatch:
    """A Message Batch sent by :meth:`~clust.Store.batch_send`, as the store knows it.

    Attributes:
        id: the store's id of the batch (a UUID).
        api_id: the API's id (``msgbatch_...``); ``None`` until the create request
            answered (always for ``failed``).
        state: ``submitting``, ``submitted`` (to collect), ``collected``, ``failed``
            (never created; its turns were taken back: ``error`` says why) or
            ``abandoned`` (the submitting process died; its turns are pending).
        request_count: how many conversations it advances.
        processing_status: the API's status as last seen (``in_progress``,
            ``canceling``, ``ended``), ``None`` before it was created.
        request_counts: the API's request counts as last seen (``processing``,
            ``succeeded``, ``errored``, ``canceled``, ``expired``).
        items: how many of its turns are in each item state (:data:`ITEM_STATES`).
        created_at, submitted_at, ended_at, expires_at, collected_at: when.
    """

    id: str
    api_id: str | None
    state: str
    request_count: int
    processing_status: str | None
    request_counts: dict[str, int]
    items: dict[str, int]
    error: str | None
    created_at: datetime
    submitted_at: datetime | None
    ended_at: datetime | None
    expires_at: datetime | None
    collected_at: datetime | None

    @property
    def name(self) -> str:
        """The id to show: the API's, else the store's."""
        return self.api_id or self.id

    @property
    def open(self) -> bool:
        """Whether it was created and its results are not stored yet."""
        return self.state == "submitted"


@dataclass(frozen=True)
class BatchCollection:
    """What :meth:`~clust.Store.collect_batch` did.

    ``ended`` is ``False`` while the batch is still processing (nothing was stored).
    The counts are this call's: replies ``stored``; items ``errored``, ``expired``,
    ``canceled`` or ``missing`` (their user turns stay pending, for ``retry``);
    ``skipped`` (the conversation was deleted or moved on). A second collection of
    the same batch counts nothing.
    """

    batch: StoredBatch
    ended: bool
    stored: int = 0
    errored: int = 0
    expired: int = 0
    canceled: int = 0
    skipped: int = 0
    missing: int = 0

    @property
    def pending(self) -> int:
        """Turns this call left pending (errored, expired, canceled or missing)."""
        return self.errored + self.expired + self.canceled + self.missing


def batch_key(batch: StoredBatch | str) -> str:
    """The id to look ``batch`` up by."""
    return batch if isinstance(batch, str) else batch.id


# -- reading batches ---------------------------------------------------------------------


def stored_batch(connection: Connection, row: Row[Any], now: datetime) -> StoredBatch:
    """The batch of a ``clust_batches`` row (``abandoned`` once its claim ran out)."""
    values = row._mapping
    state = values["state"]
    claim = values["claim_expires_at"]
    if state == "submitting" and claim is not None and claim <= now:
        state = "abandoned"
    return StoredBatch(
        id=values["id"],
        api_id=values["api_id"],
        state=state,
        request_count=values["request_count"],
        processing_status=values["processing_status"],
        request_counts={name: int(values[name]) for name in COUNTS},
        items=batch_rows.item_states(connection, values["id"]),
        error=values["error"],
        created_at=values["created_at"],
        submitted_at=values["submitted_at"],
        ended_at=values["ended_at"],
        expires_at=values["expires_at"],
        collected_at=values["collected_at"],
    )


def load(engine: Engine, key: str) -> StoredBatch:
    """The batch whose id or API id is ``key``.

    Raises:
        StoreError: no batch of this store has that id.
    """
    with engine.connect() as connection, connection.begin():
        row = batch_rows.get_batch(connection, key)
        if row is None:
            raise StoreError(f"no message batch {key!r} was sent from this store")
        return stored_batch(connection, row, utcnow())


def listing(engine: Engine, *, limit: int, states: Sequence[str] | None) -> list[StoredBatch]:
    """Batches newest first (only those in ``states``, when given)."""
    if not 1 <= limit <= 1000:
        raise InvalidParameter("limit", limit, "1..1000")
    with engine.connect() as connection, connection.begin():
        now = utcnow()
        found = batch_rows.list_batches(connection, limit=limit, states=states)
        return [stored_batch(connection, row, now) for row in found]


def record_remote(
    engine: Engine, batch_id: str, remote: MessageBatch, values: dict[str, Any] | None = None
) -> StoredBatch:
    """Keep what the API said of the batch (status, counts, times), with ``values``
    (other columns) in the same transaction; the batch as now stored."""
    counts = remote.request_counts
    with transaction(engine) as connection:
        batch_rows.update_batch(
            connection,
            batch_id,
            {
                "processing_status": str(remote.processing_status),
                **{name: getattr(counts, name) for name in COUNTS},
                "ended_at": remote.ended_at,
                "expires_at": remote.expires_at,
                **(values or {}),
            },
        )
        row = batch_rows.get_batch(connection, batch_id)
        assert row is not None
        return stored_batch(connection, row, utcnow())


def refresh(engine: Engine, key: str) -> Plan[StoredBatch]:
    """The batch with its status and counts read from the API (and stored)."""
    batch: StoredBatch = yield Db(partial(load, engine, key))
    if batch.api_id is None:
        return batch
    remote = yield GetBatch(batch.api_id)
    updated: StoredBatch = yield Db(partial(record_remote, engine, batch.id, remote))
    return updated
