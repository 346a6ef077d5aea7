"""A billed reply the database could not take is never dropped.

The turn's *finish* step (:func:`clust.conversation.turns.finish_turn`) runs as a
:class:`~clust.conversation.effects.Db` step with an ``applied`` check, so the effect
layer tries it again over reconnects for the store's ``reconnect_seconds``; when the
connection was lost with the reply's write in flight (its commit may have been applied
without the acknowledgement arriving) the check reads the conversation first and, if
the reply is there, the step is done: the reply is stored exactly once.

If the database stays away past that bound, :class:`~clust.messages.ReplyNotStored`
is raised holding the reply and its usage; the ledger's row for the attempt stays
``unknown`` and the user turn pending. The conversation object keeps the reply and
stores it first on its next send, retry or stream (so nothing is sent, or billed,
twice); another process finds the turn pending once the lease runs out.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from clust.conversation.effects import Db
from clust.conversation.history import assistant_wire
from clust.conversation.turns import sync_history
from clust.messages.errors import (
    ConversationDeleted,
    DatabaseUnavailable,
    LeaseLost,
    ReplyNotStored,
)
from clust.store.engine import reading

if TYPE_CHECKING:
    from clust.conversation.state import ConversationState
    from clust.conversation.turns import Turn
    from clust.messages.response import MessagesResponseBody
    from clust.protocol.plans import Plan

__all__ = ["Unstored", "keep_reply", "store_unstored"]


@dataclass(frozen=True)
class Unstored:
    """A reply billed and not stored yet: its turn, the reply, and the step that
    stores it (the turn's finish)."""

    turn: Turn
    response: MessagesResponseBody
    finish: Callable[[], None]


def keep_reply(
    state: ConversationState,
    turn: Turn,
    response: MessagesResponseBody,
    finish: Callable[[], None],
) -> Plan[None]:
    """Store ``turn``'s billed ``response`` with ``finish``, over reconnects.

    Raises:
        ReplyNotStored: the database stayed away (the reply is kept for this object's
            next turn) or refused the write (its usage recorded as billed if it could).
        LeaseLost / ConversationDeleted: as :func:`~clust.conversation.turns.finish_turn`.
    """
    held = Unstored(turn, response, finish)
    yield from _store(state, held, Db(finish, applied=partial(_stored, state, held)))


def store_unstored(state: ConversationState) -> Plan[None]:
    """Store the reply a send of this object could not store, if any, before the next
    turn (nothing new is sent before it is stored).

    Raises:
        ReplyNotStored: the database is still away, or refused it.
        LeaseLost / ConversationDeleted: another send took the conversation meanwhile
            (the reply's usage is recorded); the next call goes on.
    """
    held = state.unstored
    if held is None:
        return
    again = partial(_store_again, state, held)
    yield from _store(state, held, Db(again, applied=partial(_stored, state, held)))


def _store(state: ConversationState, held: Unstored, step: Db) -> Plan[None]:
    turn = held.turn
    try:
        yield step
    except (LeaseLost, ConversationDeleted):
        state.unstored = None
        raise
    except DatabaseUnavailable as failure:
        state.unstored = held
        advice = (
            f"the database stayed away: {failure}. This conversation object stores the "
            "reply first on its next send, retry or stream, once the database is back; "
            "elsewhere the user turn stays pending (resent by retry() once this send's "
            "lease runs out) and the ledger lists the attempt as of unknown outcome"
        )
        raise ReplyNotStored(
            turn.conversation_id, turn.reply_position, held.response, advice
        ) from failure
    except Exception as failure:
        state.unstored = None
        advice = (
            f"the database refused it: {failure}. The user turn stays pending: retry() "
            "resends it, discard_pending() drops it; the reply's usage is recorded as "
            "billed if the database took that"
        )
        raise ReplyNotStored(
            turn.conversation_id, turn.reply_position, held.response, advice
        ) from failure
    state.unstored = None


def _store_again(state: ConversationState, held: Unstored) -> None:
    if not _stored(state, held):
        held.finish()


def _stored(state: ConversationState, held: Unstored) -> bool:
    """Whether the reply is stored already (a commit whose acknowledgement was lost):
    the turns stored since are read, and if the reply is among them, what the finish
    would have done in memory is done."""
    turn, response = held.turn, held.response
    position = turn.reply_position
    with state.steps, reading(state.engine) as connection:
        sync_history(connection, state.id, state.history)
    history = state.history
    if len(history) <= position or history.roles[position] != "assistant":
        return False
    wire = history.wires[position]
    if wire != assistant_wire(response) and not (
        response.id and json.loads(wire).get("id") == response.id
    ):
        return False
    history.last_reply = (position, response.id or None)
    state.window.replied(response, len(wire))
    return True
