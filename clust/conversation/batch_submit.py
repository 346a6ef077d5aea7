"""Submitting a Message Batch of conversations' next turns (``Store.batch_send``).

Written once, as the plan :func:`submit` (the rules are in
:mod:`clust.conversation.batching`): database steps are :class:`Db` effects, each
conversation's turn is begun by :func:`~clust.conversation.turns.begin_turn` and its
request assembled by the turn engine's ``prepare`` plan, as ``send`` does both, and
the create request is a :class:`CreateBatch` effect.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from clust.conversation.batch_effects import CreateBatch
from clust.conversation.batching import COUNTS, StoredBatch, custom_id_for, record_remote
from clust.conversation.conversation import Conversation
from clust.conversation.effects import CallOptions, Db
from clust.conversation.engine import TurnRequest, prepare, unanswered_tool_calls
from clust.conversation.history import RequestHead, user_wire
from clust.conversation.turns import Turn, begin_turn, sync_history, utcnow
from clust.messages.errors import (
    ConversationBusy,
    ConversationNotFound,
    InvalidParameter,
    NothingToRetry,
    PendingTurn,
    TurnInBatch,
    UnansweredToolCalls,
)
from clust.protocol.plans import Plan
from clust.store import batches as batch_rows
from clust.store import repository as rows
from clust.store.engine import transaction
from clust.store.keeper import KEEPER

if TYPE_CHECKING:
    from clust.conversation.state import ConversationState
    from clust.messages.batches import MessageBatch
    from clust.protocol.request import RequestSpec

__all__ = ["Overrides", "submit"]

_MAX_REQUESTS = 100_000


@dataclass(frozen=True)
class Overrides:
    """Per-call request overrides, applied to every conversation of a batch."""

    model: str | None = None
    max_tokens: int | None = None
    system: Any = None
    tools: Sequence[Any] | None = None
    params: Mapping[str, Any] | None = None


@dataclass
class _Entry:
    """One conversation of a batch being submitted."""

    state: ConversationState
    wire: bytes | None  # the new user turn (None: resend the pending one)
    head: RequestHead
    position: int = -1  # of the user turn, once stored
    custom_id: str = ""
    turn: Turn | None = None  # holds our lease, from storing the turn to recording the item


@dataclass
class _Prepared:
    """A batch being submitted: its row's id, its entries, the requests assembled."""

    batch_id: str
    entries: list[_Entry]
    requests: list[tuple[str, bytes]] = field(default_factory=list)
    betas: list[str] = field(default_factory=list)


# -- step 1: everything checked (database steps, blocking) ---------------------------------


def _entries(
    engine: Engine,
    pairs: Iterable[tuple[Conversation | str, Any]],
    open_conversation: Callable[[str], Conversation],
    overrides: Overrides,
) -> list[_Entry]:
    """The pairs as entries: shape, duplicates, content and heads checked (no I/O but
    opening conversations given by id)."""
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
        state = conversation.state
        if state.engine is not engine:
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
        head = state.head_for(
            overrides.model,
            overrides.max_tokens,
            overrides.system,
            overrides.tools,
            overrides.params,
        )
        entries.append(_Entry(state, wire, head))
    if not entries:
        raise InvalidParameter("requests", [], "at least one (conversation, content) pair")
    return entries


def _check_states(engine: Engine, entries: Sequence[_Entry]) -> None:
    """Refuse, before anything is written, a conversation that is gone, busy, in
    another open batch, pending when content is given, or not pending when not, or
    whose new turn leaves the last reply's tool calls unanswered; then budgets."""
    with engine.connect() as connection, connection.begin():
        now = utcnow()
        for entry in entries:
            state = entry.state
            exists, held_until = batch_rows.conversation_lease(connection, state.id)
            if not exists:
                raise ConversationNotFound(state.id)
            if held_until is not None and held_until > now:
                raise ConversationBusy(state.id, expires_at=held_until)
            history = state.history
            with state.steps:
                sync_history(connection, state.id, history)
            if history.last_role == "user":
                position = len(history) - 1
                batch = batch_rows.open_batch_of(connection, state.id, position, now)
                if batch is not None:
                    raise TurnInBatch(state.id, position, batch)
                if entry.wire is not None:
                    raise PendingTurn(state.id, position)
            elif entry.wire is None:
                raise NothingToRetry(
                    f"conversation {state.id!r} has no pending user turn to resend"
                )
            elif missing := unanswered_tool_calls(history, entry.wire):
                raise UnansweredToolCalls(state.id, missing)
    for entry in entries:
        entry.state.check_budgets(entry.head, entry.wire)


def _start(engine: Engine, lease: timedelta, entries: list[_Entry]) -> _Prepared:
    """The rest of step 1, and the batch row: everything checked, nothing else written."""
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
                **dict.fromkeys(COUNTS, 0),
                "error": None,
                "created_at": now,
                "submitted_at": None,
                "ended_at": None,
                "expires_at": None,
                "collected_at": None,
            },
        )
    return prepared


# -- step 2: each turn begun, its request assembled, its item recorded ---------------------


def _begin(entry: _Entry, begun: list[_Entry]) -> None:
    """Take the lease and store the user turn, as ``send`` does, but with no intent row
    in the usage ledger (a batch turn's usage is recorded when it is collected).

    The entry is noted as begun in this same step, so that a caller cancelled while
    it ran still takes the turn back (the turn engine's ``begin`` would give the lease
    back and leave the user turn pending, as a failed ``send`` does).
    """
    state = entry.state
    with state.steps:
        turn = begin_turn(
            state.engine,
            state.id,
            state.history,
            entry.wire,
            state.lease,
            reply_id=state.cache is not None and state.cache.explain_misses,
            attempt=False,
        )
    entry.turn = turn
    entry.position = turn.reply_position - 1
    entry.custom_id = custom_id_for(state.id, entry.position)
    begun.append(entry)
    if entry.wire is not None:
        # The history checked in step 1 may have moved on since: check what begin read.
        missing = unanswered_tool_calls(state.history, entry.wire, before=1)
        if missing:
            raise UnansweredToolCalls(state.id, missing)


def _record_item(engine: Engine, prepared: _Prepared, entry: _Entry, spec: RequestSpec) -> None:
    """Record the turn's item and release the lease (one transaction); keep its request."""
    turn = entry.turn
    assert turn is not None and spec.content is not None
    KEEPER.let_go(engine, turn)
    with transaction(engine) as connection:
        batch_rows.insert_items(
            connection,
            [
                {
                    "batch_id": prepared.batch_id,
                    "custom_id": entry.custom_id,
                    "conversation_id": entry.state.id,
                    "position": entry.position,
                    "state": "open",
                    "reply_position": None,
                    "error_type": None,
                    "error": None,
                    "finished_at": None,
                }
            ],
        )
        rows.release_lease(connection, entry.state.id, turn.holder)
    entry.turn = None
    prepared.requests.append((entry.custom_id, spec.content))
    given = spec.headers.get("anthropic-beta")
    if given:
        prepared.betas.extend(beta.strip() for beta in given.split(",") if beta.strip())


def _renew_claim(engine: Engine, batch_id: str, lease: timedelta) -> None:
    """The claim counts from now: the create request may take a while to send."""
    with transaction(engine) as connection:
        batch_rows.update_batch(connection, batch_id, {"claim_expires_at": utcnow() + lease})


# -- step 3, or taking it all back ------------------------------------------------------------


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
                conversation_id = entry.state.id
                if entry.wire is not None:
                    row = rows.get_conversation(connection, conversation_id)
                    if row is not None and row.next_position == entry.position + 1:
                        rows.delete_messages_from(connection, conversation_id, entry.position)
                if entry.turn is not None:
                    KEEPER.let_go(engine, entry.turn)
                    rows.release_lease(connection, conversation_id, entry.turn.holder)
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
        return  # the claim runs out instead (see clust.conversation.batching)
    for entry in begun:
        if entry.wire is not None:
            with entry.state.steps:
                entry.state.history.truncate(entry.position)


def _record_created(engine: Engine, batch_id: str, remote: MessageBatch) -> StoredBatch:
    """Step 3: the API's id and what it said of the new batch."""
    created = {
        "api_id": remote.id,
        "state": "submitted",
        "claim_expires_at": None,
        "submitted_at": utcnow(),
    }
    return record_remote(engine, batch_id, remote, created)


def submit(
    engine: Engine,
    lease: timedelta,
    pairs: Iterable[tuple[Conversation | str, Any]],
    open_conversation: Callable[[str], Conversation],
    overrides: Overrides,
    options: CallOptions,
) -> Plan[StoredBatch]:
    """Submit the next turn of each conversation as one batch (see
    :mod:`clust.conversation.batching`).

    Each request is assembled by the turn engine's ``prepare``, as ``send`` assembles
    it (the conversation's truncation strategy may count tokens or summarize).
    """
    entries = yield Db(partial(_entries, engine, pairs, open_conversation, overrides))
    prepared: _Prepared = yield Db(partial(_start, engine, lease, entries))
    begun: list[_Entry] = []
    try:
        for entry in prepared.entries:
            yield Db(partial(_begin, entry, begun))
            request = TurnRequest(entry.wire, entry.head, options)
            spec = yield from prepare(entry.state, request)
            yield Db(partial(_record_item, engine, prepared, entry, spec))
        yield Db(partial(_renew_claim, engine, prepared.batch_id, lease))
        betas = list(dict.fromkeys(prepared.betas)) or None
        remote = yield CreateBatch(prepared.requests, betas, options)
    except GeneratorExit:
        raise  # closed with its driver gone: no effect can run now (see engine.exchange)
    except BaseException as error:
        yield Db(partial(_take_back, engine, prepared.batch_id, begun, error))
        raise
    created: StoredBatch = yield Db(partial(_record_created, engine, prepared.batch_id, remote))
    return created
