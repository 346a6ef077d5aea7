"""``Conversation``: a persisted chat that sends its stored history with each turn.

Each public operation is written once, as a method that checks its arguments and
returns the turn engine's plan (:mod:`clust.conversation.engine`); ``send`` and
``asend`` (and ``stream``/``astream``, ``run``/``arun``, ...) are that one method
run by the blocking or the async driver (:mod:`clust.conversation.drivers`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypedDict, cast

from typing_extensions import Unpack

from clust.conversation.caching import CachePolicy
from clust.conversation.drivers import async_call, blocking_call
from clust.conversation.effects import CallOptions, Db, StreamProgress
from clust.conversation.engine import (
    Exchanged,
    TurnRequest,
    abandoning_wire,
    count_plan,
    exchange,
    unanswered_tool_calls,
)
from clust.conversation.history import user_wire
from clust.conversation.integrity import stored_head, typed_messages
from clust.conversation.offload import Offload, awaitable
from clust.conversation.records import TurnUsage, UsageTotals
from clust.conversation.state import ConversationState
from clust.conversation.streams import StreamingTurn, async_stream, blocking_stream
from clust.conversation.turns import discard_pending
from clust.conversation.window import RaiseOnOverflow, TruncationStrategy
from clust.store import repository as rows
from clust.usage.report import usage_report

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from clust.client import TimeoutTypes
    from clust.conversation.loop import Approve, OnStep, RunResult
    from clust.messages.message import Message, MessageContent
    from clust.messages.response import MessagesResponseBody
    from clust.messages.tokens import TokenCount
    from clust.protocol.plans import Plan
    from clust.usage.budget import Spending
    from clust.usage.pricing import PriceTable

__all__ = ["Conversation", "RunOptions", "TurnOptions"]

_DEFAULT_CACHE = CachePolicy()
_DEFAULT_TRUNCATION = RaiseOnOverflow()


class RunOptions(TypedDict, total=False):
    """The keywords every sending method takes (``run`` and ``arun`` take only these)."""

    wait: float
    """Seconds to wait for a busy conversation before raising ``ConversationBusy``."""
    params: Mapping[str, Any] | None
    """Body fields overriding the stored defaults for this call."""
    betas: Iterable[str] | None
    extra_headers: Mapping[str, str] | None
    timeout: TimeoutTypes | None
    max_retries: int | None


class TurnOptions(RunOptions, total=False):
    """The keywords of ``send``, ``retry``, ``stream`` and ``count_tokens``."""

    model: str | None
    max_tokens: int | None
    system: Any
    tools: Sequence[Any] | None


_TURN_KEYWORDS = TurnOptions.__required_keys__ | TurnOptions.__optional_keys__
_RUN_KEYWORDS = RunOptions.__required_keys__ | RunOptions.__optional_keys__


def _check_keywords(options: Mapping[str, Any], allowed: frozenset[str], method: str) -> None:
    """Refuse a keyword the method does not take, as Python would for a named one."""
    for name in options.keys() - allowed:
        raise TypeError(f"{method}() got an unexpected keyword argument {name!r}")


class Conversation:
    """One stored conversation. Get it from :class:`~clust.Store`, never build it.

    ``send``/``asend`` append a user turn, send the whole history (system prompt,
    tools and defaults included), and store the reply with its usage in one
    transaction; ``stream``/``astream`` do the same while yielding events. A failed
    send stores no reply and leaves the user turn pending: ``retry``/``aretry``
    resend it. One send may be in flight per conversation, across processes: another
    raises :class:`~clust.messages.ConversationBusy` (or waits ``wait`` seconds).
    Each request is held to the model's context window first (``truncation``, see
    :mod:`clust.conversation.window`): by default one that would not fit raises
    :class:`~clust.messages.ContextWindowExceeded` before anything is sent.

    A reply that asks for tools must be answered before the next turn: ``run`` runs
    them, or send their ``tool_result`` blocks, or send with ``abandon_tool_calls=True``
    (:class:`~clust.messages.UnansweredToolCalls` otherwise). Every method that sends
    takes the matching client (``Client`` for ``send``, ``AsyncClient`` for ``asend``:
    :class:`~clust.messages.WrongClient` otherwise), checked before anything is stored.

    Attributes are the stored row: ``id``, ``title``, ``model``, ``max_tokens``,
    ``system``/``tools`` (wire JSON), ``params`` (the other request defaults),
    ``metadata``, ``parent_id``/``fork_position`` (for a fork), ``created_at``.
    """

    def __init__(
        self,
        engine: Engine,
        row: Mapping[str, Any],
        *,
        lease: timedelta,
        spending: Spending | None = None,
        cache: CachePolicy | None = _DEFAULT_CACHE,
        prices: PriceTable | None = None,
        truncation: TruncationStrategy | None = _DEFAULT_TRUNCATION,
        offload: Offload | None = None,
    ) -> None:
        self.state = ConversationState(
            engine=engine,
            id=row["id"],
            head=stored_head(row["id"], row["request_head"]),
            lease=lease,
            cache=cache,
            truncation=truncation,
            spending=spending,
            prices=prices,
            metadata=dict(row["metadata"] or {}),
        )
        """The turn engine's working state of this object (history read so far, ...)."""
        self.offload = offload if offload is not None else Offload()
        """Where the async methods run database work (the store's worker threads)."""
        self.id: str = row["id"]
        self.title: str | None = row["title"]
        self.parent_id: str | None = row["parent_id"]
        self.fork_position: int | None = row["fork_position"]
        self.created_at: datetime = row["created_at"]

    def __repr__(self) -> str:
        return f"Conversation(id={self.id!r}, model={self.model!r}, title={self.title!r})"

    # -- settings -----------------------------------------------------------------------

    @property
    def cache(self) -> CachePolicy | None:
        """Automatic cache breakpoints added to each request (not stored); ``None``: none."""
        return self.state.cache

    @cache.setter
    def cache(self, policy: CachePolicy | None) -> None:
        self.state.cache = policy

    @property
    def truncation(self) -> TruncationStrategy | None:
        """What to do when a request would not fit the model's context window
        (:mod:`clust.conversation.window`); ``None``: no check."""
        return self.state.truncation

    @truncation.setter
    def truncation(self, strategy: TruncationStrategy | None) -> None:
        self.state.truncation = strategy

    @property
    def metadata(self) -> dict[str, Any]:
        """Your JSON metadata (as stored when this object was opened)."""
        return self.state.metadata

    @metadata.setter
    def metadata(self, value: dict[str, Any]) -> None:
        self.state.metadata = value

    # -- what is stored -------------------------------------------------------------------

    @property
    def model(self) -> str:
        """The model every turn is sent to (unless overridden per call)."""
        return str(self.state.head.wire["model"])

    @property
    def max_tokens(self) -> int:
        """The default ``max_tokens``."""
        return int(self.state.head.wire["max_tokens"])

    @property
    def system(self) -> Any:
        """The ``system`` field as wire JSON (a string or text blocks), or ``None``."""
        return self.state.head.wire.get("system")

    @property
    def tools(self) -> list[Any] | None:
        """The tool definitions as wire JSON, or ``None``."""
        tools = self.state.head.wire.get("tools")
        return None if tools is None else list(tools)

    @property
    def params(self) -> dict[str, Any]:
        """The other request defaults (temperature, thinking, ...) as wire JSON."""
        return {
            key: value
            for key, value in self.state.head.wire.items()
            if key not in ("model", "max_tokens", "system", "tools")
        }

    @property
    def history(self) -> list[Message]:
        """Every stored turn, oldest first, as typed messages (read from the store if
        needed); a truncation strategy leaves turns out of requests, never out of this.
        Async code: ``await conv.ahistory()``."""
        return self.read_history()

    def read_history(self) -> list[Message]:
        """:attr:`history` as a method (its awaitable form is :meth:`ahistory`).

        Raises:
            CorruptConversation: a stored turn is not a valid message (its position
                is named); so do ``send`` and ``export`` then, sending nothing.
        """
        self.state.load()
        return typed_messages(self.id, self.state.history)

    ahistory = awaitable(read_history)

    @property
    def pending(self) -> bool:
        """Whether the last turn is a user turn still waiting for its reply.
        Async code: ``await conv.apending()``."""
        return self.is_pending()

    def is_pending(self) -> bool:
        """:attr:`pending` as a method (its awaitable form is :meth:`apending`)."""
        self.state.load()
        return self.state.history.last_role == "user"

    apending = awaitable(is_pending)

    def refresh(self) -> None:
        """Read turns other processes added since this object last looked."""
        self.state.refresh()

    arefresh = awaitable(refresh)

    def usage(self) -> UsageTotals:
        """Token counts summed over every request of this conversation, how many read
        from the prompt cache (``cache_hits``, ``cache_hit_ratio``), and the cost and
        what caching saved, in USD at the store's prices."""
        with self.state.engine.connect() as connection, connection.begin():
            counts = rows.usage_totals(connection, self.id)
            (priced,) = usage_report(connection, conversation_id=self.id, prices=self.state.prices)
        return UsageTotals.from_mapping(
            counts, cost=priced.cost, cache_savings=priced.cache_savings
        )

    ausage = awaitable(usage)

    def usage_by_turn(self) -> list[TurnUsage]:
        """One entry per request, oldest first: its tokens, whether it read from the
        prompt cache, and why it missed when the API said (see :class:`TurnUsage`)."""
        with self.state.engine.connect() as connection, connection.begin():
            found = rows.load_usage(connection, self.id)
        return [TurnUsage.from_row(row._mapping) for row in found]

    ausage_by_turn = awaitable(usage_by_turn)

    def discard_pending(self) -> None:
        """Drop a pending user turn (after a failed send) instead of retrying it."""
        state = self.state
        with state.steps:
            discard_pending(state.engine, self.id, state.history, state.lease)

    adiscard_pending = awaitable(discard_pending)

    # -- sending --------------------------------------------------------------------------

    def _request(
        self, wire: bytes | None, options: TurnOptions, *, stream: bool = False
    ) -> TurnRequest:
        """A turn's request, its overrides validated (before anything is stored)."""
        _check_keywords(options, _TURN_KEYWORDS, "send")
        head = self.state.head_for(
            options.get("model"),
            options.get("max_tokens"),
            options.get("system"),
            options.get("tools"),
            options.get("params"),
        )
        betas, headers = options.get("betas"), options.get("extra_headers")
        call = CallOptions(
            None if betas is None else list(betas),
            None if headers is None else dict(headers),
            options.get("timeout"),
            options.get("max_retries"),
        )
        progress = StreamProgress() if stream else None
        wait = options.get("wait", 0.0)
        return TurnRequest(wire, head, call, wait, stream=stream, progress=progress)

    def _turn(
        self, content: MessageContent | Message | None, abandon: bool, request: TurnRequest
    ) -> Plan[Exchanged]:
        """The plan of one turn; with ``abandon`` the last reply's unanswered tool calls
        are answered first with error results saying they were not run."""
        if abandon and content is not None:
            state = self.state
            yield Db(state.refresh)
            missing = unanswered_tool_calls(state.history, request.wire)
            if missing:
                request = replace(request, wire=abandoning_wire(content, missing))
        return (yield from exchange(self.state, request))

    def _reply(
        self, content: MessageContent | Message | None, abandon: bool, request: TurnRequest
    ) -> Plan[MessagesResponseBody]:
        exchanged = yield from self._turn(content, abandon, request)
        return exchanged.response

    def _send(
        self,
        client: Any,
        content: MessageContent | Message,
        *,
        abandon_tool_calls: bool = False,
        **options: Unpack[TurnOptions],
    ) -> Plan[MessagesResponseBody]:
        """Add a user turn, send the conversation, store and return the reply.

        Keywords: ``model``, ``max_tokens``, ``system``, ``tools`` and ``params`` (any
        other body field) override the stored defaults for this call only; ``betas``,
        ``extra_headers``, ``timeout`` and ``max_retries`` go to the client. ``wait``:
        seconds to wait for a busy conversation before raising ``ConversationBusy``.
        ``abandon_tool_calls``: if the last reply asked for tools that have no results,
        answer them with error results saying they were not run, then send ``content``.

        Raises:
            InvalidParameter: bad content or override (before anything is stored).
            UnansweredToolCalls: the last reply's tool calls need results first.
            ConversationBusy / PendingTurn: see the class docstring.
            ApiError / ClientError: the request failed; the user turn stays pending.
        """
        request = self._request(user_wire(content), options)
        return self._reply(content, abandon_tool_calls, request)

    send = blocking_call(_send)
    asend = async_call(_send)

    def _retry(self, client: Any, **options: Unpack[TurnOptions]) -> Plan[MessagesResponseBody]:
        """Resend the pending user turn left by a failed send; store and return the reply
        (the keywords of :meth:`send`).

        Raises:
            NothingToRetry: the last turn already has its reply.
        """
        return self._reply(None, False, self._request(None, options))

    retry = blocking_call(_retry)
    aretry = async_call(_retry)

    def _stream(
        self,
        client: Any,
        content: MessageContent | Message | None,
        *,
        abandon_tool_calls: bool = False,
        **options: Unpack[TurnOptions],
    ) -> StreamingTurn:
        """Like :meth:`send`, streaming: iterate the events; the reply is stored when the
        stream completes (``content=None`` resends the pending turn, like :meth:`retry`).

        The turn starts on first iteration. A stream that breaks off, or that the
        caller leaves early, stores no reply and leaves the user turn pending.
        """
        wire = None if content is None else user_wire(content)
        request = self._request(wire, options, stream=True)
        assert request.progress is not None
        return StreamingTurn(self._turn(content, abandon_tool_calls, request), request.progress)

    stream = blocking_stream(_stream)
    astream = async_stream(_stream)

    # -- the context window -----------------------------------------------------------------

    def _count_tokens(
        self,
        client: Any,
        content: MessageContent | Message | None = None,
        **options: Unpack[TurnOptions],
    ) -> Plan[TokenCount]:
        """Count the input tokens of the request :meth:`send` would make next (POST
        /v1/messages/count_tokens): the stored history with ``content`` as the new user
        turn (``None``: the history as it is, e.g. a pending turn :meth:`retry` resends),
        the overrides as :meth:`send` takes them, and the turns the truncation strategy
        sends now (its cut, or its summary). Nothing is stored, no strategy decision is
        taken (a new cut or summary is made by a send that needs one).

        Raises:
            PendingTurn: ``content`` was given but the last turn still waits for its reply.
        """
        wire = None if content is None else user_wire(content)
        request = self._request(wire, options)
        return count_plan(self.state, wire, request.head, request.options)

    count_tokens = blocking_call(_count_tokens)
    acount_tokens = async_call(_count_tokens)

    # -- the tool loop ------------------------------------------------------------------------

    def _run(
        self,
        client: Any,
        content: MessageContent | Message | None = None,
        *,
        tools: Sequence[Any],
        max_steps: int = 10,
        approve: Approve | None = None,
        on_step: OnStep | None = None,
        tool_timeout: float | None = None,
        **options: Unpack[RunOptions],
    ) -> Plan[RunResult]:
        """Send ``content`` and run the tools Claude asks for until it is done.

        While the reply stops for ``tool_use``, every requested tool is executed (in
        order by ``run``; concurrently by ``arun``, sync tools in worker threads) and
        one user turn of ``tool_result`` blocks goes back; ``pause_turn`` is continued.
        The run stops at ``end_turn``, ``max_tokens``, ``stop_sequence``, ``refusal`` or
        after ``max_steps`` requests. The conversation's lease is held from a reply
        that asks for tools until their results are stored, so no other send comes in
        between. Each step is committed before the next request, and a run that died
        is picked up by calling ``run`` again without ``content`` (see
        :mod:`clust.conversation.loop`).

        Args:
            tools: ``@tool`` functions (executed here) and tool definitions or server
                tools (sent only); they replace the stored ``tools`` for these requests.
            approve: called with each ``ToolUseContentBlock`` before it runs; ``False``
                sends an error result saying the call was denied (``arun``: may be a
                coroutine function).
            on_step: called with each :class:`~clust.conversation.loop.Step`.
            tool_timeout: seconds a tool may run (a tool's own ``timeout`` wins).
            Other keywords: those of :meth:`send` but ``tools``.
        """
        from clust.conversation.loop import ToolLoop

        _check_keywords(options, _RUN_KEYWORDS, "run")
        loop = ToolLoop(
            self.state,
            tools,
            max_steps=max_steps,
            tool_timeout=tool_timeout,
            approve=approve,
            on_step=on_step,
        )
        turn_options = cast("TurnOptions", {**options, "tools": loop.definitions or None})
        request = self._request(None, turn_options)
        wire = None if content is None else user_wire(content)
        return loop.plan(content, wire, request)

    run = blocking_call(_run)
    arun = async_call(_run)
