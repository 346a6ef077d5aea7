"""The next turn of many conversations as one Message Batch, at the batch price.

``Store.batch_send`` submits, ``Store.collect_batch`` stores the replies; the batch
and one item per conversation are rows (``clust_batches``, ``clust_batch_items``), so
the process that collects need not be the one that submitted.

Submitting:

1. Everything is checked before anything is written: 1 to 100,000 pairs, no
   conversation twice, each one of this store, its content valid (``None``: resend
   its pending turn), not busy, no pending turn when content is given (one when it is
   not), no turn waiting in another open batch, budgets.
2. The batch row is written (``submitting``, with a claim that runs out after the
   store's ``lease_seconds``). Then per conversation, as ``send`` does it: take the
   lease and store the user turn (its position handed out in that transaction);
   assemble the request with the conversation's own code (same head, truncation
   strategy, cache policy, spliced history bytes); then record its item
   (``custom_id``: the conversation id and the turn's position) and release the
   lease, in one transaction.
3. One create request; its answer records the API's batch id (``submitted``).

From step 2 on, an open item holds its conversation: ``send``, ``retry``, ``stream``
and ``discard_pending`` raise :class:`~clust.messages.TurnInBatch` until the batch is
collected. What a failure leaves:

- An exception before the API answered (a conversation taken meanwhile, a request
  that cannot fit its context window, a create request refused or failed, Ctrl-C):
  every write of step 2 is taken back (the new user turns are deleted, the items
  removed, leases released), the batch row stays as
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
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, Row

from clust.conversation.history import RequestHead, assistant_wire, user_wire
from clust.conversation.records import usage_values
from clust.conversation.turns import sync_history, utcnow
from clust.messages.errors import (
    ConversationBusy,
    ConversationNotFound,
    InvalidParameter,
    NothingToRetry,
    PendingTurn,
    StoreError,
    TurnInBatch,
)
from clust.store import batches as batch_rows
from clust.store import repository as rows
from clust.store.engine import transaction

if TYPE_CHECKING:
    from clust.client import AsyncClient, Client
    from clust.client._settings import TimeoutTypes
    from clust.conversation.conversation import Conversation
    from clust.messages.batches import BatchResult, MessageBatch
    from clust.protocol.request import RequestSpec

__all__ = [
    "BATCH_STATES",
    "ITEM_STATES",
    "BatchCollection",
    "Overrides",
    "StoredBatch",
    "acollect",
    "asubmit",
    "collect",
    "custom_id_for",
    "refresh",
    "submit",
]

BATCH_STATES = ("submitting", "submitted", "collected", "failed", "abandoned")
"""A stored batch's ``state`` (``abandoned``: a submission whose process died)."""
ITEM_STATES = ("open", "succeeded", "errored", "expired", "canceled", "skipped", "missing")
"""An item's state: ``open`` until its result is stored."""

_MAX_REQUESTS = 100_000
_RESULTS_PER_TRANSACTION = 100
_CUSTOM_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_COUNTS = ("processing", "succeeded", "errored", "canceled", "expired")


def custom_id_for(conversation_id: str, position: int) -> str:
    """The ``custom_id`` of a conversation's turn: ``<conversation id>_<position>``, or
    a digest of the id when that would not be 1-64 characters of ``A-Za-z0-9_-``."""
    plain = f"{conversation_id}_{position}"
    if _CUSTOM_ID.fullmatch(plain):
        return plain
    digest = hashlib.sha256(conversation_id.encode()).hexdigest()[:40]
    return f"c{digest}_{position}"


@dataclass(frozen=True)
class Overrides:
    """Per-call request overrides, applied to every conversation of a batch."""

    model: str | None = None
    max_tokens: int | None = None
    system: Any = None
    tools: Sequence[Any] | None = None
    params: Mapping[str, Any] | None = None


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


# -- reading batches ---------------------------------------------------------------------


def _stored(connection: Any, row: Row[Any], now: datetime) -> StoredBatch:
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
        request_counts={name: int(values[name]) for name in _COUNTS},
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
        return _stored(connection, row, utcnow())


def listing(engine: Engine, *, limit: int, states: Sequence[str] | None) -> list[StoredBatch]:
    """Batches newest first (only those in ``states``, when given)."""
    if not 1 <= limit <= 1000:
        raise InvalidParameter("limit", limit, "1..1000")
    with engine.connect() as connection, connection.begin():
        now = utcnow()
        found = batch_rows.list_batches(connection, limit=limit, states=states)
        return [_stored(connection, row, now) for row in found]


def _record_remote(engine: Engine, batch_id: str, remote: MessageBatch) -> StoredBatch:
    """Keep what the API said of the batch (status, counts, times)."""
    counts = remote.request_counts
    with transaction(engine) as connection:
        batch_rows.update_batch(
            connection,
            batch_id,
            {
                "processing_status": str(remote.processing_status),
                **{name: getattr(counts, name) for name in _COUNTS},
                "ended_at": remote.ended_at,
                "expires_at": remote.expires_at,
            },
        )
        row = batch_rows.get_batch(connection, batch_id)
        assert row is not None
        return _stored(connection, row, utcnow())


def refresh(engine: Engine, client: Client, key: str) -> StoredBatch:
    """The batch with its status and counts read from the API (and stored)."""
    batch = load(engine, key)
    if batch.api_id is None:
        return batch
    return _record_remote(engine, batch.id, client.get_message_batch(batch.api_id))


async def arefresh(engine: Engine, client: AsyncClient, key: str) -> StoredBatch:
    """:func:`refresh` with an :class:`~clust.AsyncClient`."""
    import anyio.to_thread

    batch = await anyio.to_thread.run_sync(load, engine, key)
    if batch.api_id is None:
        return batch
    remote = await client.get_message_batch(batch.api_id)
    return await anyio.to_thread.run_sync(_record_remote, engine, batch.id, remote)


# -- submitting ----------------------------------------------------------------------------


@dataclass
class _Entry:
    """One conversation of a batch being submitted."""

    conversation: Conversation
    wire: bytes | None  # the new user turn (None: resend the pending one)
    head: RequestHead
    position: int = -1  # of the user turn, once stored
    custom_id: str = ""
    holder: str | None = None  # our lease, between storing the turn and recording the item


@dataclass
class _Prepared:
    """A batch being submitted: its row's id, its entries, the requests assembled."""

    batch_id: str
    entries: list[_Entry]
    requests: list[tuple[str, bytes]] = field(default_factory=list)
    betas: list[str] = field(default_factory=list)


def _entries(
    engine: Engine,
    pairs: Iterable[tuple[Conversation | str, Any]],
    open_conversation: Callable[[str], Conversation],
    overrides: Overrides,
) -> list[_Entry]:
    """The pairs as entries: shape, duplicates, content and heads checked (no I/O but
    opening conversations given by id)."""
    from clust.conversation.conversation import Conversation

    if isinstance(pairs, (str, bytes, Mapping)):
        raise InvalidParameter("requests", pairs, "a sequence of (conversation, content) pairs")
    entries: list[_Entry] = []
    first: dict[str, int] = {}
    for index, pair in enumerate(pairs):
        if index >= _MAX_REQUESTS:
            raise InvalidParameter(
                "requests", f"more than {_MAX_REQUESTS:,} pairs", "at most 100,000 per batch"
            )
        if not isinstance(pair, tuple) or len(pair) != 2:
            raise InvalidParameter(f"requests[{index}]", pair, "a (conversation, content) pair")
        conversation, content = pair
        if isinstance(conversation, str):
            conversation = open_conversation(conversation)
        if not isinstance(conversation, Conversation):
            raise InvalidParameter(
                f"requests[{index}]", conversation, "a Conversation or a conversation id"
            )
        if conversation._engine is not engine:
            raise InvalidParameter(
                f"requests[{index}]", conversation.id, "a conversation of this store"
            )
        earlier = first.setdefault(conversation.id, index)
        if earlier != index:
            raise InvalidParameter(
                f"requests[{index}]",
                conversation.id,
                f"each conversation once (requests[{earlier}] has it too)",
            )
        try:
            wire = None if content is None else user_wire(content)
        except InvalidParameter as error:
            raise InvalidParameter(
                f"requests[{index}].content", error.value, error.allowed
            ) from error
        head = conversation._head_for(
            overrides.model,
            overrides.max_tokens,
            overrides.system,
            overrides.tools,
            overrides.params,
        )
        entries.append(_Entry(conversation, wire, head))
    if not entries:
        raise InvalidParameter("requests", [], "at least one (conversation, content) pair")
    return entries


def _check_states(engine: Engine, entries: Sequence[_Entry]) -> None:
    """Refuse, before anything is written, a conversation that is gone, busy, in
    another open batch, pending when content is given, or not pending when not."""
    with engine.connect() as connection, connection.begin():
        now = utcnow()
        for entry in entries:
            conversation = entry.conversation
            exists, held_until = batch_rows.conversation_lease(connection, conversation.id)
            if not exists:
                raise ConversationNotFound(conversation.id)
            if held_until is not None and held_until > now:
                raise ConversationBusy(conversation.id, expires_at=held_until)
            history = conversation._history
            sync_history(connection, conversation.id, history)
            if history.last_role == "user":
                position = len(history) - 1
                batch = batch_rows.open_batch_of(connection, conversation.id, position, now)
                if batch is not None:
                    raise TurnInBatch(conversation.id, position, batch)
                if entry.wire is not None:
                    raise PendingTurn(conversation.id, position)
            elif entry.wire is None:
                raise NothingToRetry(
                    f"conversation {conversation.id!r} has no pending user turn to resend"
                )
    for entry in entries:
        entry.conversation._check_budgets(entry.head, entry.wire)


def _start(
    engine: Engine,
    lease: timedelta,
    pairs: Iterable[tuple[Conversation | str, Any]],
    open_conversation: Callable[[str], Conversation],
    overrides: Overrides,
) -> _Prepared:
    """Step 1 and the batch row: everything checked, nothing else written yet."""
    entries = _entries(engine, pairs, open_conversation, overrides)
    _check_states(engine, entries)
    prepared = _Prepared(str(uuid.uuid4()), entries)
    now = utcnow()
    with transaction(engine) as connection:
        batch_rows.insert_batch(
            connection,
            {
                "id": prepared.batch_id,
                "api_id": None,
                "state": "submitting",
                "claim_expires_at": now + lease,
                "request_count": len(entries),
                "processing_status": None,
                **dict.fromkeys(_COUNTS, 0),
                "error": None,
                "created_at": now,
                "submitted_at": None,
                "ended_at": None,
                "expires_at": None,
                "collected_at": None,
            },
        )
    return prepared


def _begin(entry: _Entry, begun: list[_Entry]) -> None:
    """Take the lease and store the user turn, as ``send`` does."""
    conversation = entry.conversation
    turn = conversation._try_begin(entry.wire)
    entry.holder = turn.holder
    entry.position = turn.reply_position - 1
    entry.custom_id = custom_id_for(conversation.id, entry.position)
    begun.append(entry)


def _record_item(engine: Engine, prepared: _Prepared, entry: _Entry, spec: RequestSpec) -> None:
    """Record the turn's item and release the lease (one transaction); keep its request."""
    conversation = entry.conversation
    assert entry.holder is not None and spec.content is not None
    with transaction(engine) as connection:
        batch_rows.insert_items(
            connection,
            [
                {
                    "batch_id": prepared.batch_id,
                    "custom_id": entry.custom_id,
                    "conversation_id": conversation.id,
                    "position": entry.position,
                    "state": "open",
                    "reply_position": None,
                    "error_type": None,
                    "error": None,
                    "finished_at": None,
                }
            ],
        )
        rows.release_lease(connection, conversation.id, entry.holder)
    entry.holder = None
    prepared.requests.append((entry.custom_id, spec.content))
    given = spec.headers.get("anthropic-beta")
    if given:
        prepared.betas.extend(beta.strip() for beta in given.split(",") if beta.strip())


def _renew_claim(engine: Engine, batch_id: str, lease: timedelta) -> None:
    """The claim counts from now: the create request may take a while to send."""
    with transaction(engine) as connection:
        batch_rows.update_batch(connection, batch_id, {"claim_expires_at": utcnow() + lease})


def _take_back(
    engine: Engine, batch_id: str, begun: Sequence[_Entry], error: BaseException
) -> None:
    """Undo a submission that never got an API id: delete the new user turns (each
    still the newest turn of its conversation: its item or our lease held it), remove
    the items, release our leases, and mark the batch ``failed``. If this fails too,
    the batch's claim runs out and the turns become ordinary pending turns."""
    reason = " ".join(str(error).split()) or type(error).__name__
    try:
        with transaction(engine) as connection:
            custom_ids = [entry.custom_id for entry in begun]
            batch_rows.delete_items(connection, batch_id, custom_ids)
            for entry in begun:
                conversation_id = entry.conversation.id
                if entry.wire is not None:
                    row = rows.get_conversation(connection, conversation_id)
                    if row is not None and row.next_position == entry.position + 1:
                        rows.delete_messages_from(connection, conversation_id, entry.position)
                if entry.holder is not None:
                    rows.release_lease(connection, conversation_id, entry.holder)
            batch_rows.update_batch(
                connection,
                batch_id,
                {
                    "state": "failed",
                    "claim_expires_at": None,
                    "error": f"{type(error).__name__}: {reason}"[:2000],
                },
            )
    except Exception:
        return  # the claim runs out instead (see the module docstring)
    for entry in begun:
        if entry.wire is not None:
            entry.conversation._history.truncate(entry.position)


def _merged_betas(betas: Sequence[str]) -> list[str] | None:
    return list(dict.fromkeys(betas)) or None


def _record_created(engine: Engine, batch_id: str, remote: MessageBatch) -> StoredBatch:
    """Step 3: the API's id and what it said of the new batch."""
    counts = remote.request_counts
    with transaction(engine) as connection:
        batch_rows.update_batch(
            connection,
            batch_id,
            {
                "api_id": remote.id,
                "state": "submitted",
                "claim_expires_at": None,
                "processing_status": str(remote.processing_status),
                **{name: getattr(counts, name) for name in _COUNTS},
                "submitted_at": utcnow(),
                "ended_at": remote.ended_at,
                "expires_at": remote.expires_at,
            },
        )
        row = batch_rows.get_batch(connection, batch_id)
        assert row is not None
        return _stored(connection, row, utcnow())


def submit(
    engine: Engine,
    lease: timedelta,
    client: Client,
    pairs: Iterable[tuple[Conversation | str, Any]],
    open_conversation: Callable[[str], Conversation],
    *,
    overrides: Overrides,
    betas: Iterable[str] | None,
    timeout: TimeoutTypes | None,
    max_retries: int | None,
) -> StoredBatch:
    """Submit the next turn of each conversation as one batch (see the module docstring).

    Each request is assembled by the conversation's own ``_prepare``, as ``send``
    assembles it (its truncation strategy may count tokens or summarize with ``client``).
    """
    from clust.conversation.conversation import CallOptions

    options = CallOptions(betas, None, timeout, max_retries)
    prepared = _start(engine, lease, pairs, open_conversation, overrides)
    begun: list[_Entry] = []
    try:
        for entry in prepared.entries:
            _begin(entry, begun)
            spec = entry.conversation._prepare(client, entry.head, options, stream=False)
            _record_item(engine, prepared, entry, spec)
        _renew_claim(engine, prepared.batch_id, lease)
        remote = client._create_batch_from_wire(
            prepared.requests,
            betas=_merged_betas(prepared.betas),
            timeout=timeout,
            max_retries=max_retries,
        )
    except BaseException as error:
        _take_back(engine, prepared.batch_id, begun, error)
        raise
    return _record_created(engine, prepared.batch_id, remote)


async def asubmit(
    engine: Engine,
    lease: timedelta,
    client: AsyncClient,
    pairs: Iterable[tuple[Conversation | str, Any]],
    open_conversation: Callable[[str], Conversation],
    *,
    overrides: Overrides,
    betas: Iterable[str] | None,
    timeout: TimeoutTypes | None,
    max_retries: int | None,
) -> StoredBatch:
    """:func:`submit` with an :class:`~clust.AsyncClient` (database work in threads)."""
    import anyio
    import anyio.to_thread

    from clust.conversation.conversation import CallOptions

    options = CallOptions(betas, None, timeout, max_retries)
    pairs = list(pairs)
    prepared = await anyio.to_thread.run_sync(
        _start, engine, lease, pairs, open_conversation, overrides
    )
    begun: list[_Entry] = []
    try:
        for entry in prepared.entries:
            await anyio.to_thread.run_sync(_begin, entry, begun)
            spec = await entry.conversation._aprepare(client, entry.head, options, stream=False)
            await anyio.to_thread.run_sync(_record_item, engine, prepared, entry, spec)
        await anyio.to_thread.run_sync(_renew_claim, engine, prepared.batch_id, lease)
        remote = await client._create_batch_from_wire(
            prepared.requests,
            betas=_merged_betas(prepared.betas),
            timeout=timeout,
            max_retries=max_retries,
        )
    except BaseException as error:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(_take_back, engine, prepared.batch_id, begun, error)
        raise
    return await anyio.to_thread.run_sync(_record_created, engine, prepared.batch_id, remote)


# -- collecting ----------------------------------------------------------------------------


def _collectable(engine: Engine, key: str) -> StoredBatch:
    batch = load(engine, key)
    if batch.state in ("submitted", "collected"):
        return batch
    raise StoreError(
        f"message batch {batch.name!r} cannot be collected: it is {batch.state}"
        + (f" ({batch.error})" if batch.error else "")
        + (
            "; its turns are pending (retry them, or batch_send them again with content None)"
            if batch.state in ("failed", "abandoned")
            else ""
        )
    )


def _store_results(
    engine: Engine, batch: StoredBatch, results: Sequence[BatchResult], tally: Counter[str]
) -> None:
    """Store a run of results in one transaction (each item's outcome with its reply)."""
    from clust.messages.batches import ErroredResult, SucceededResult

    started = batch.submitted_at or batch.created_at
    with transaction(engine) as connection:
        now = utcnow()
        finished = batch.ended_at or now
        latency_ms = max(0, round((finished - started).total_seconds() * 1000))
        for line in results:
            item = batch_rows.get_item(connection, batch.id, line.custom_id)
            if item is None or item.state != "open":
                continue  # not ours, or stored by an earlier collection
            result = line.result
            conversation_id = item.conversation_id
            if isinstance(result, SucceededResult):
                reply_position = item.position + 1
                if not batch_rows.finish_item(
                    connection,
                    batch.id,
                    line.custom_id,
                    state="succeeded",
                    reply_position=reply_position,
                    now=now,
                ):
                    continue  # another collector got there first
                stored = False
                if conversation_id is not None:
                    response = result.message
                    values = usage_values(
                        response,
                        conversation_id=conversation_id,
                        position=reply_position,
                        started_at=started,
                        finished_at=finished,
                        latency_ms=latency_ms,
                    )
                    values["service_tier"] = values["service_tier"] or "batch"
                    stored = batch_rows.store_batch_reply(
                        connection,
                        conversation_id=conversation_id,
                        position=item.position,
                        wire=assistant_wire(response),
                        usage_values=values,
                        now=now,
                    )
                if stored:
                    tally["stored"] += 1
                    continue
                batch_rows.finish_item(
                    connection,
                    batch.id,
                    line.custom_id,
                    state="skipped",
                    from_state="succeeded",
                    now=now,
                    error_type="conversation_changed",
                    error=(
                        "the conversation was deleted"
                        if conversation_id is None
                        else "the turn was no longer the conversation's newest"
                    ),
                )
                tally["skipped"] += 1
            elif isinstance(result, ErroredResult):
                if batch_rows.finish_item(
                    connection,
                    batch.id,
                    line.custom_id,
                    state="errored",
                    now=now,
                    error_type=result.error_type,
                    error=result.error_message,
                ):
                    tally["errored"] += 1
            else:
                kind = str(getattr(result, "type", "unknown"))
                state = kind if kind in ("expired", "canceled") else "errored"
                if batch_rows.finish_item(
                    connection,
                    batch.id,
                    line.custom_id,
                    state=state,
                    now=now,
                    error_type=None if state == kind else "unknown_result",
                    error=None if state == kind else f"a result of unknown type {kind!r}",
                ):
                    tally[state] += 1


def _finish_collection(engine: Engine, batch: StoredBatch, tally: Counter[str]) -> BatchCollection:
    with transaction(engine) as connection:
        now = utcnow()
        tally["missing"] += batch_rows.close_open_items(
            connection,
            batch.id,
            state="missing",
            error="the ended batch had no result for this request",
            now=now,
        )
        batch_rows.update_batch(connection, batch.id, {"state": "collected", "collected_at": now})
        row = batch_rows.get_batch(connection, batch.id)
        assert row is not None
        stored = _stored(connection, row, now)
    return BatchCollection(stored, ended=True, **{name: tally[name] for name in _TALLIED})


_TALLIED = ("stored", "errored", "expired", "canceled", "skipped", "missing")


@dataclass(frozen=True)
class WaitOptions:
    """How :func:`collect` waits for the batch to end (``wait=False``: it does not)."""

    wait: bool = False
    poll_interval: float | None = None
    max_interval: float | None = None
    timeout: float | None = None
    on_progress: Callable[[MessageBatch], object] | None = None

    def arguments(self) -> dict[str, Any]:
        """Keyword arguments of ``wait_for_message_batch``."""
        given = {
            "poll_interval": self.poll_interval,
            "max_interval": self.max_interval,
            "timeout": self.timeout,
            "on_progress": self.on_progress,
        }
        return {name: value for name, value in given.items() if value is not None}


def collect(engine: Engine, client: Client, key: str, waiting: WaitOptions) -> BatchCollection:
    """Store the results of an ended batch (see the module docstring)."""
    batch = _collectable(engine, key)
    if batch.state == "collected":
        return BatchCollection(batch, ended=True)
    assert batch.api_id is not None
    if waiting.wait:
        remote = client.wait_for_message_batch(batch.api_id, **waiting.arguments())
    else:
        remote = client.get_message_batch(batch.api_id)
    batch = _record_remote(engine, batch.id, remote)
    if not remote.ended:
        return BatchCollection(batch, ended=False)
    tally: Counter[str] = Counter()
    run: list[BatchResult] = []
    with client.message_batch_results(remote) as results:
        for line in results:
            run.append(line)
            if len(run) == _RESULTS_PER_TRANSACTION:
                _store_results(engine, batch, run, tally)
                run.clear()
    if run:
        _store_results(engine, batch, run, tally)
    return _finish_collection(engine, batch, tally)


async def acollect(
    engine: Engine, client: AsyncClient, key: str, waiting: WaitOptions
) -> BatchCollection:
    """:func:`collect` with an :class:`~clust.AsyncClient` (database work in a thread)."""
    import anyio.to_thread

    batch = await anyio.to_thread.run_sync(_collectable, engine, key)
    if batch.state == "collected":
        return BatchCollection(batch, ended=True)
    assert batch.api_id is not None
    if waiting.wait:
        remote = await client.wait_for_message_batch(batch.api_id, **waiting.arguments())
    else:
        remote = await client.get_message_batch(batch.api_id)
    batch = await anyio.to_thread.run_sync(_record_remote, engine, batch.id, remote)
    if not remote.ended:
        return BatchCollection(batch, ended=False)
    tally: Counter[str] = Counter()
    run: list[BatchResult] = []
    async with client.message_batch_results(remote) as results:
        async for line in results:
            run.append(line)
            if len(run) == _RESULTS_PER_TRANSACTION:
                await anyio.to_thread.run_sync(_store_results, engine, batch, list(run), tally)
                run.clear()
    if run:
        await anyio.to_thread.run_sync(_store_results, engine, batch, run, tally)
    return await anyio.to_thread.run_sync(_finish_collection, engine, batch, tally)
