"""The turn engine: the rules of one turn, written once, as plans that do no I/O.

A turn (``send``, ``stream``, ``retry``, one request of ``run``) goes through:

1. **validate**: the content is a non-empty user turn; a new turn must answer the
   last reply's tool calls (:class:`~clust.messages.UnansweredToolCalls` otherwise,
   unless it abandons them). Nothing is stored or sent before this passes.
2. **begin**: claim the lease and store the user turn with the request's ledger row
   (:mod:`clust.conversation.turns`), waiting in line while the conversation is busy
   if the caller chose to ``wait`` (:mod:`clust.conversation.waiting`). Budgets are
   checked in that transaction, and the row reserves the request's estimate
   (:mod:`clust.usage.budget`); a refusal (:class:`~clust.messages.BudgetExceeded`)
   rolls it all back.
3. **prepare**: hold the request to the context window
   (:func:`clust.conversation.window.fit`: it may count tokens or summarize), splice
   the history into the body and place the cache breakpoints.
4. **request**: one message request, or a stream whose events pass to the caller.
5. **finish**: store the reply and its usage, release the lease (or keep it for the
   tool step that follows, in a tool loop); or **abort**: release it, record what
   was billed, leave the user turn pending; or **refuse** (the request cannot fit):
   release it and remove the user turn this send stored.

Each plan yields effects (:mod:`clust.conversation.effects`): database steps, HTTP
requests, sleeps. The blocking and async drivers (:mod:`clust.conversation.drivers`)
carry them out, so ``send`` and ``asend`` are the same code.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from clust.conversation.effects import (
    CallOptions,
    Count,
    Create,
    Db,
    OpenStream,
    StreamProgress,
)
from clust.conversation.history import History, RequestHead, user_wire
from clust.conversation.integrity import corrupt_turn
from clust.conversation.turns import Turn, abort_turn, begin_turn, drop_attempt, finish_turn
from clust.conversation.unstored import keep_reply, store_unstored
from clust.conversation.waiting import in_line
from clust.conversation.window import Fit, Summarize, current, fit, load_summary, refuse_turn
from clust.messages.errors import (
    ApiError,
    ContextWindowExceeded,
    DatabaseUnavailable,
    InvalidRequestError,
    PendingTurn,
    UnansweredToolCalls,
)
from clust.messages.response import MessagesResponseBody
from clust.protocol.plans import Plan
from clust.protocol.request import RequestSpec, count_tokens_request_for

if TYPE_CHECKING:
    from clust.conversation.state import ConversationState
    from clust.messages.message import Message, MessageContent
    from clust.messages.tokens import TokenCount

__all__ = [
    "Exchanged",
    "TurnRequest",
    "abandoning_wire",
    "begin",
    "count_plan",
    "exchange",
    "prepare",
    "unanswered_tool_calls",
]

_ABANDONED = "Error: this tool call was not run: the user went on without its result (abandoned)."


@dataclass(frozen=True)
class TurnRequest:
    """What one turn sends.

    ``wire`` is the new user turn (``None``: resend the pending one, or with ``resume``
    continue a ``pause_turn`` reply). ``after``: the turn is stored only right after
    the reply at that position (tool results answer it). ``held``: a turn whose lease
    this one takes over (a tool step). ``keep_for_tools``: if the reply asks for tools,
    keep the lease for the tool step.
    """

    wire: bytes | None
    head: RequestHead
    options: CallOptions
    wait: float = 0.0
    stream: bool = False
    resume: bool = False
    after: int | None = None
    held: Turn | None = None
    keep_for_tools: bool = False
    progress: StreamProgress | None = None
    """Where a streamed turn's shell finds the client stream (what arrived so far)."""


@dataclass(frozen=True)
class Exchanged:
    """A turn's reply, and the turn whose lease is kept for the tool step (if kept)."""

    response: MessagesResponseBody
    held: Turn | None


# -- validating ------------------------------------------------------------------------


def unanswered_tool_calls(history: History, wire: bytes | None, before: int = 0) -> list[str]:
    """The ids of the ``tool_use`` blocks of the reply ending ``history`` (``before``
    turns from its end) that ``wire``, the user turn after it, does not answer with a
    ``tool_result``; empty when that turn is no reply or asks for no tools."""
    index = len(history) - 1 - before
    if index < 0 or history.roles[index] != "assistant":
        return []
    reply_wire = history.wires[index]
    if b'"tool_use"' not in reply_wire:
        return []
    asked = [
        block["id"]
        for block in json.loads(reply_wire).get("content") or ()
        if isinstance(block, dict) and block.get("type") == "tool_use"
    ]
    answered: set[str] = set()
    if wire is not None:
        content = json.loads(wire).get("content")
        if isinstance(content, list):
            answered = {
                str(block.get("tool_use_id"))
                for block in content
                if isinstance(block, dict) and block.get("type") == "tool_result"
            }
    return [tool_use_id for tool_use_id in asked if tool_use_id not in answered]


def abandoning_wire(content: MessageContent | Message, tool_use_ids: list[str]) -> bytes:
    """A user turn that answers ``tool_use_ids`` with error results saying they were
    not run, followed by ``content``'s blocks."""
    wire = json.loads(user_wire(content))
    blocks = wire["content"]
    if isinstance(blocks, str):
        blocks = [{"type": "text", "text": blocks}]
    results = [
        {"type": "tool_result", "tool_use_id": tool_use_id, "content": _ABANDONED, "is_error": True}
        for tool_use_id in tool_use_ids
    ]
    wire["content"] = results + blocks
    return json.dumps(wire, separators=(",", ":"), ensure_ascii=False).encode()


def _check_answers(state: ConversationState, wire: bytes | None) -> None:
    if wire is None:
        return
    missing = unanswered_tool_calls(state.history, wire)
    if missing:
        raise UnansweredToolCalls(state.id, missing)


# -- the database steps (blocking; the drivers run them) ----------------------------------


def _try_begin(state: ConversationState, request: TurnRequest) -> Turn:
    with state.steps:
        turn = begin_turn(
            state.engine,
            state.id,
            state.history,
            request.wire,
            state.lease,
            resume=request.resume,
            after=request.after,
            reply_id=state.cache is not None and state.cache.explain_misses,
            holder=None if request.held is None else request.held.holder,
            model=str(request.head.wire["model"]),
            reserve=None
            if state.spending is None
            else partial(state.reserve, request.head, request.wire),
        )
    return turn


def _abort(
    state: ConversationState,
    turn: Turn,
    failure: BaseException | None = None,
    progress: StreamProgress | None = None,
    started: float | None = None,
) -> None:
    """Release the turn; record what the failed request was billed (see :func:`_outcome`).
    ``started`` is ``None`` when the request was never sent."""
    latency_ms = 0 if started is None else round((time.monotonic() - started) * 1000)
    billed, outcome = _outcome(failure, progress, sent=started is not None)
    discarded = () if progress is None else progress.discarded()
    abort_turn(state.engine, turn, billed, latency_ms, discarded=discarded, outcome=outcome)


def _outcome(
    failure: BaseException | None, progress: StreamProgress | None, *, sent: bool
) -> tuple[MessagesResponseBody | None, str | None]:
    """What a request that stored no reply was billed: the partial message of the
    failure, or what arrived before the caller left. Else nothing (it was never sent,
    or the API answered with an error), or it is not known (``"unknown"``: it may have
    reached the API: a timeout, a cut connection, a cancelled caller)."""
    partial_message = getattr(failure, "partial_message", None)
    if isinstance(partial_message, MessagesResponseBody):
        return partial_message, None
    billed = None if progress is None else progress.billed()
    if billed is not None:
        return billed, None
    if not sent or isinstance(failure, ApiError):
        return None, None
    return None, "unknown"


def _finish(
    state: ConversationState,
    turn: Turn,
    response: MessagesResponseBody,
    started: float,
    *,
    keep_lease: bool,
    progress: StreamProgress | None,
) -> None:
    """Store the reply (keeping the lease for a tool step if asked). If that fails,
    the lease is given back; the reply was billed all the same and is recorded
    (:func:`finish_turn` records it when it refuses the reply; the abort records it
    when the database failed before)."""
    latency_ms = round((time.monotonic() - started) * 1000)
    discarded = () if progress is None else progress.discarded()
    try:
        with state.steps:
            finish_turn(
                state.engine,
                turn,
                state.history,
                response,
                latency_ms,
                keep_lease=keep_lease,
                discarded=discarded,
            )
            state.window.replied(response, len(state.history.wires[-1]))
    except DatabaseUnavailable:
        raise  # tried again over reconnects, then kept (clust.conversation.unstored)
    except BaseException:
        abort_turn(state.engine, turn, response, latency_ms)
        raise


def _refuse(state: ConversationState, turn: Turn, *, new_turn: bool) -> None:
    """Release a turn that may not be sent; the user turn it stored is removed, and
    the ledger's intent row of its request (never sent)."""
    drop_from = turn.reply_position - 1 if new_turn else None
    drop_attempt(state.engine, turn)
    with state.steps:
        refuse_turn(state.engine, state.id, turn.holder, drop_from, state.history)


# -- the plans ------------------------------------------------------------------------------


def begin(state: ConversationState, request: TurnRequest) -> Plan[Turn]:
    """Claim the conversation and store the user turn, waiting in line up to
    ``request.wait`` seconds while it is busy (:mod:`clust.conversation.waiting`).

    Raises:
        UnansweredToolCalls: the new turn leaves the last reply's tool calls unanswered.
        ConversationBusy / PendingTurn / NothingToRetry: see :func:`begin_turn`.
        BudgetExceeded: the request would pass a budget (nothing stored).
        ReplyNotStored: a reply an earlier send could not store still cannot be.
    """
    yield from store_unstored(state)  # a billed reply kept from an earlier send goes first
    if request.wire is not None and unanswered_tool_calls(state.history, request.wire):
        # Refused on what is known, which may be behind (another object may have
        # answered the calls since): look again before refusing.
        yield Db(state.refresh)
        _check_answers(state, request.wire)
    claim = Db(partial(_try_begin, state, request), undo=partial(_abort, state))
    turn: Turn = yield from in_line(state.engine, state.id, request.wait, claim)
    if request.wire is not None:
        # The history held may have been behind: check again on what begin read.
        missing = unanswered_tool_calls(state.history, request.wire, before=1)
        if missing:
            yield Db(partial(_refuse, state, turn, new_turn=True))
            raise UnansweredToolCalls(state.id, missing)
    return turn


def prepare(state: ConversationState, request: TurnRequest) -> Plan[RequestSpec]:
    """The request of the begun turn, after the truncation strategy (which may count
    tokens, or summarize).

    Raises:
        ContextWindowExceeded: it does not fit and the strategy cannot make it.
    """
    head, options = request.head, request.options

    def build(view: History, request_head: RequestHead) -> RequestSpec:
        return _request_of(state, view, request_head, options, stream=False)

    chosen: Fit = yield from fit(
        state.truncation,
        state.window,
        state.history,
        head,
        build,
        options,
        engine=state.engine,
        conversation_id=state.id,
    )
    spec = _request_of(state, chosen.view, head, options, stream=request.stream)
    state.window.sending(head, chosen, len(state.history), spec)
    return spec


def _request_of(
    state: ConversationState,
    view: History,
    head: RequestHead,
    options: CallOptions,
    *,
    stream: bool,
) -> RequestSpec:
    """The message request of ``view`` with the call's options and the cache policy."""
    return view.request(
        head,
        stream=stream,
        betas=options.betas,
        extra_headers=options.extra_headers,
        cache=state.cache,
    )


def exchange(state: ConversationState, request: TurnRequest) -> Plan[Exchanged]:
    """One turn: validate, begin, prepare, request, then finish, abort or refuse.

    A failure after the turn began releases it (the user turn stays pending for
    ``retry``) and is raised; what the API billed is recorded either way.
    """
    # Budgets are checked by begin, in the transaction that writes the intent row.
    turn = yield from begin(state, request)
    started: float | None = None  # set once the request leaves
    progress: StreamProgress | None = None
    try:
        spec = yield from prepare(state, request)
        started = time.monotonic()
        if request.stream:
            progress = request.progress or StreamProgress()
            opening = OpenStream(spec, request.options, progress)
            response: MessagesResponseBody = yield opening
        else:
            response = yield Create(spec, request.options)
    except GeneratorExit:
        # The plan is closed with its driver gone (garbage collected, never finalized):
        # no effect can run now. Nothing refers to the turn any more, so the keeper
        # stops renewing its lease, which runs out within lease_seconds.
        raise
    except ContextWindowExceeded:
        yield Db(partial(_refuse, state, turn, new_turn=request.wire is not None))
        raise
    except BaseException as failure:
        yield Db(partial(_abort, state, turn, failure, progress, started))
        if isinstance(failure, InvalidRequestError):
            history = state.history  # a stored turn broken inside its JSON is named
            corrupt = corrupt_turn(state.id, history.roles, history.wires)
            if corrupt is not None:
                raise corrupt from failure
        raise
    keep = request.keep_for_tools and response.stop_reason == "tool_use" and response.tool_uses()
    assert started is not None
    finish = partial(_finish, state, turn, response, started, keep_lease=bool(keep))
    yield from keep_reply(state, turn, response, partial(finish, progress=progress))
    return Exchanged(response, turn if keep else None)


def count_plan(
    state: ConversationState, wire: bytes | None, head: RequestHead, options: CallOptions
) -> Plan[TokenCount]:
    """Count the input tokens of what a send of ``wire`` would send now (nothing stored,
    no strategy decision taken)."""
    yield Db(state.refresh)
    history = state.history
    if wire is not None and history.last_role == "user":
        raise PendingTurn(state.id, len(history) - 1)
    window = state.window
    if isinstance(state.truncation, Summarize) and not window.summary_loaded:
        window.summary = yield Db(partial(load_summary, state.engine, state.id))
        window.summary_loaded = True
    start, lead, _ = current(state.truncation, window, history)
    view = history.window(start, lead, then=wire)
    spec = _request_of(state, view, head, options, stream=False)
    counted: TokenCount = yield Count(count_tokens_request_for(spec), options)
    return counted
