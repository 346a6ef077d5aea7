"""``Conversation``: a persisted chat that sends its stored history with each turn."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread

from clust.conversation.caching import CachePolicy
from clust.conversation.history import History, RequestHead, user_wire
from clust.conversation.records import TurnUsage, UsageTotals
from clust.conversation.turns import (
    Turn,
    abort_turn,
    begin_turn,
    discard_pending,
    finish_turn,
    renew_turn,
    sync_history,
)
from clust.conversation.window import (
    Fit,
    Plan,
    RaiseOnOverflow,
    Summarize,
    TruncationStrategy,
    WindowState,
    adrive,
    current,
    drive,
    fit,
    load_summary,
    refuse_turn,
)
from clust.messages.errors import ContextWindowExceeded, ConversationBusy, PendingTurn
from clust.messages.message import Message, MessageContent
from clust.protocol.request import RequestSpec, count_tokens_request_for
from clust.store import repository as rows
from clust.store.engine import reading

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from clust.client import AsyncClient, Client
    from clust.client._settings import TimeoutTypes
    from clust.conversation.loop import Approve, OnStep, RunResult
    from clust.conversation.streams import AsyncConversationStream, ConversationStream
    from clust.messages.response import MessagesResponseBody
    from clust.messages.tokens import TokenCount
    from clust.usage.budget import Spending
    from clust.usage.pricing import PriceTable

__all__ = ["CallOptions", "Conversation"]

_DEFAULT_CACHE = CachePolicy()
_DEFAULT_TRUNCATION = RaiseOnOverflow()
_POLL = 0.05  # seconds between lease checks when a send waits for a busy conversation


@dataclass(frozen=True)
class CallOptions:
    """Per-call HTTP options passed through to the client."""

    betas: Iterable[str] | None = None
    extra_headers: Mapping[str, str] | None = None
    timeout: TimeoutTypes | None = None
    max_retries: int | None = None


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
    ) -> None:
        self._engine = engine
        self.truncation: TruncationStrategy | None = truncation
        """What to do when a request would not fit the model's context window
        (:mod:`clust.conversation.window`); ``None``: no check."""
        self._window = WindowState()
        self._prices = prices
        self.cache: CachePolicy | None = cache
        """Automatic cache breakpoints added to each request (not stored); ``None``: none."""
        self._lease = lease
        self._spending = spending
        self.id: str = row["id"]
        self.title: str | None = row["title"]
        self.metadata: dict[str, Any] = dict(row["metadata"] or {})
        self.parent_id: str | None = row["parent_id"]
        self.fork_position: int | None = row["fork_position"]
        self.created_at: datetime = row["created_at"]
        self._head = RequestHead(row["request_head"])
        self._history = History()
        # Held while a step reads the store and updates the history held here, so
        # threads sharing this object (a waiting send, a refresh) see each step whole.
        self._steps = threading.RLock()

    def __repr__(self) -> str:
        return f"Conversation(id={self.id!r}, model={self.model!r}, title={self.title!r})"

    # -- what is stored ---------------------------------------------------------------

    @property
    def model(self) -> str:
        """The model every turn is sent to (unless overridden per call)."""
        return str(self._head.wire["model"])

    @property
    def max_tokens(self) -> int:
        """The default ``max_tokens``."""
        return int(self._head.wire["max_tokens"])

    @property
    def system(self) -> Any:
        """The ``system`` field as wire JSON (a string or text blocks), or ``None``."""
        return self._head.wire.get("system")

    @property
    def tools(self) -> list[Any] | None:
        """The tool definitions as wire JSON, or ``None``."""
        tools = self._head.wire.get("tools")
        return None if tools is None else list(tools)

    @property
    def params(self) -> dict[str, Any]:
        """The other request defaults (temperature, thinking, ...) as wire JSON."""
        return {
            key: value
            for key, value in self._head.wire.items()
            if key not in ("model", "max_tokens", "system", "tools")
        }

    @property
    def history(self) -> list[Message]:
        """Every stored turn, oldest first, as typed messages (read from the store if
        needed); a truncation strategy leaves turns out of requests, never out of this."""
        self._load()
        return self._history.messages()

    @property
    def pending(self) -> bool:
        """Whether the last turn is a user turn still waiting for its reply."""
        self._load()
        return self._history.last_role == "user"

    def refresh(self) -> None:
        """Read turns other processes added since this object last looked."""
        with self._steps, reading(self._engine) as connection:
            sync_history(connection, self.id, self._history)

    def _load(self) -> None:
        if not self._history.wires:
            self.refresh()

    def usage(self) -> UsageTotals:
        """Token counts summed over every request of this conversation, how many read
        from the prompt cache (``cache_hits``, ``cache_hit_ratio``), and the cost and
        what caching saved, in USD at the store's prices."""
        from clust.usage.report import usage_report

        with self._engine.connect() as connection, connection.begin():
            counts = rows.usage_totals(connection, self.id)
            (priced,) = usage_report(connection, conversation_id=self.id, prices=self._prices)
        return UsageTotals.from_mapping(
            counts, cost=priced.cost, cache_savings=priced.cache_savings
        )

    def usage_by_turn(self) -> list[TurnUsage]:
        """One entry per request, oldest first: its tokens, whether it read from the
        prompt cache, and why it missed when the API said (see :class:`TurnUsage`)."""
        with self._engine.connect() as connection, connection.begin():
            found = rows.load_usage(connection, self.id)
        return [TurnUsage.from_row(row._mapping) for row in found]

    def discard_pending(self) -> None:
        """Drop a pending user turn (after a failed send) instead of retrying it."""
        with self._steps:
            discard_pending(self._engine, self.id, self._history, self._lease)

    # -- sending ----------------------------------------------------------------------

    def send(
        self,
        client: Client,
        content: MessageContent | Message,
        *,
        wait: float = 0.0,
        model: str | None = None,
        max_tokens: int | None = None,
        system: Any = None,
        tools: Sequence[Any] | None = None,
        params: Mapping[str, Any] | None = None,
        betas: Iterable[str] | None = None,
        extra_headers: Mapping[str, str] | None = None,
        timeout: TimeoutTypes | None = None,
        max_retries: int | None = None,
    ) -> MessagesResponseBody:
        """Add a user turn, send the conversation, store and return the reply.

        ``model``, ``max_tokens``, ``system``, ``tools`` and ``params`` (any other body
        field) override the stored defaults for this call only. ``wait``: seconds to
        wait for a busy conversation before raising ``ConversationBusy``.

        Raises:
            InvalidParameter: bad content or override (before anything is stored).
            ConversationBusy / PendingTurn: see the class docstring.
            ApiError / ClientError: the request failed; the user turn stays pending.
        """
        wire = user_wire(content)
        head = self._head_for(model, max_tokens, system, tools, params)
        options = CallOptions(betas, extra_headers, timeout, max_retries)
        return self._exchange(client, wire, head, options, wait)

    def retry(
        self,
        client: Client,
        *,
        wait: float = 0.0,
        model: str | None = None,
        max_tokens: int | None = None,
        system: Any = None,
        tools: Sequence[Any] | None = None,
        params: Mapping[str, Any] | None = None,
        betas: Iterable[str] | None = None,
        extra_headers: Mapping[str, str] | None = None,
        timeout: TimeoutTypes | None = None,
        max_retries: int | None = None,
    ) -> MessagesResponseBody:
        """Resend the pending user turn left by a failed send; store and return the reply.

        Raises:
            NothingToRetry: the last turn already has its reply.
        """
        head = self._head_for(model, max_tokens, system, tools, params)
        options = CallOptions(betas, extra_headers, timeout, max_retries)
        return self._exchange(client, None, head, options, wait)

    def stream(
        self,
        client: Client,
        content: MessageContent | Message | None,
        *,
        wait: float = 0.0,
        model: str | None = None,
        max_tokens: int | None = None,
        system: Any = None,
        tools: Sequence[Any] | None = None,
        params: Mapping[str, Any] | None = None,
        betas: Iterable[str] | None = None,
        extra_headers: Mapping[str, str] | None = None,
        timeout: TimeoutTypes | None = None,
        max_retries: int | None = None,
    ) -> ConversationStream:
        """Like :meth:`send`, streaming: iterate the events; the reply is stored when the
        stream completes (``content=None`` resends the pending turn, like :meth:`retry`).

        The turn starts on first iteration. A stream that breaks off, or that the
        caller leaves early, stores no reply and leaves the user turn pending.
        """
        from clust.conversation.streams import ConversationStream

        wire = None if content is None else user_wire(content)
        head = self._head_for(model, max_tokens, system, tools, params)
        options = CallOptions(betas, extra_headers, timeout, max_retries)
        return ConversationStream(self, client, wire, head, options, wait)

    async def asend(
        self,
        client: AsyncClient,
        content: MessageContent | Message,
        *,
        wait: float = 0.0,
        model: str | None = None,
        max_tokens: int | None = None,
        system: Any = None,
        tools: Sequence[Any] | None = None,
        params: Mapping[str, Any] | None = None,
        betas: Iterable[str] | None = None,
        extra_headers: Mapping[str, str] | None = None,
        timeout: TimeoutTypes | None = None,
        max_retries: int | None = None,
    ) -> MessagesResponseBody:
        """:meth:`send` for :class:`~clust.AsyncClient`; database work runs in worker
        threads, so the event loop never waits on it."""
        wire = user_wire(content)
        head = self._head_for(model, max_tokens, system, tools, params)
        options = CallOptions(betas, extra_headers, timeout, max_retries)
        return await self._aexchange(client, wire, head, options, wait)

    async def aretry(
        self,
        client: AsyncClient,
        *,
        wait: float = 0.0,
        model: str | None = None,
        max_tokens: int | None = None,
        system: Any = None,
        tools: Sequence[Any] | None = None,
        params: Mapping[str, Any] | None = None,
        betas: Iterable[str] | None = None,
        extra_headers: Mapping[str, str] | None = None,
        timeout: TimeoutTypes | None = None,
        max_retries: int | None = None,
    ) -> MessagesResponseBody:
        """:meth:`retry` for :class:`~clust.AsyncClient`."""
        head = self._head_for(model, max_tokens, system, tools, params)
        options = CallOptions(betas, extra_headers, timeout, max_retries)
        return await self._aexchange(client, None, head, options, wait)

    def astream(
        self,
        client: AsyncClient,
        content: MessageContent | Message | None,
        *,
        wait: float = 0.0,
        model: str | None = None,
        max_tokens: int | None = None,
        system: Any = None,
        tools: Sequence[Any] | None = None,
        params: Mapping[str, Any] | None = None,
        betas: Iterable[str] | None = None,
        extra_headers: Mapping[str, str] | None = None,
        timeout: TimeoutTypes | None = None,
        max_retries: int | None = None,
    ) -> AsyncConversationStream:
        """:meth:`stream` for :class:`~clust.AsyncClient` (``async with`` / ``async for``)."""
        from clust.conversation.streams import AsyncConversationStream

        wire = None if content is None else user_wire(content)
        head = self._head_for(model, max_tokens, system, tools, params)
        options = CallOptions(betas, extra_headers, timeout, max_retries)
        return AsyncConversationStream(self, client, wire, head, options, wait)

    # -- the context window ---------------------------------------------------------------

    def count_tokens(
        self,
        client: Client,
        content: MessageContent | Message | None = None,
        *,
        model: str | None = None,
        max_tokens: int | None = None,
        system: Any = None,
        tools: Sequence[Any] | None = None,
        params: Mapping[str, Any] | None = None,
        betas: Iterable[str] | None = None,
        extra_headers: Mapping[str, str] | None = None,
        timeout: TimeoutTypes | None = None,
        max_retries: int | None = None,
    ) -> TokenCount:
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
        head = self._head_for(model, max_tokens, system, tools, params)
        options = CallOptions(betas, extra_headers, timeout, max_retries)
        spec = self._count_request(wire, head, options)
        return client._count_tokens_from_spec(spec, timeout, max_retries)

    async def acount_tokens(
        self,
        client: AsyncClient,
        content: MessageContent | Message | None = None,
        *,
        model: str | None = None,
        max_tokens: int | None = None,
        system: Any = None,
        tools: Sequence[Any] | None = None,
        params: Mapping[str, Any] | None = None,
        betas: Iterable[str] | None = None,
        extra_headers: Mapping[str, str] | None = None,
        timeout: TimeoutTypes | None = None,
        max_retries: int | None = None,
    ) -> TokenCount:
        """:meth:`count_tokens` for :class:`~clust.AsyncClient` (database reads run in a
        worker thread)."""
        wire = None if content is None else user_wire(content)
        head = self._head_for(model, max_tokens, system, tools, params)
        options = CallOptions(betas, extra_headers, timeout, max_retries)
        spec = await anyio.to_thread.run_sync(self._count_request, wire, head, options)
        return await client._count_tokens_from_spec(spec, timeout, max_retries)

    # -- the tool loop ----------------------------------------------------------------------

    def run(
        self,
        client: Client,
        content: MessageContent | Message | None = None,
        *,
        tools: Sequence[Any],
        max_steps: int = 10,
        approve: Approve | None = None,
        on_step: OnStep | None = None,
        tool_timeout: float | None = None,
        wait: float = 0.0,
        params: Mapping[str, Any] | None = None,
        betas: Iterable[str] | None = None,
        extra_headers: Mapping[str, str] | None = None,
        timeout: TimeoutTypes | None = None,
        max_retries: int | None = None,
    ) -> RunResult:
        """Send ``content`` and run the tools Claude asks for until it is done.

        While the reply stops for ``tool_use``, every requested tool is executed (in
        order here; concurrently in :meth:`arun`) and one user turn of ``tool_result``
        blocks goes back; ``pause_turn`` is continued. The run stops at ``end_turn``,
        ``max_tokens``, ``stop_sequence``, ``refusal`` or after ``max_steps`` requests.
        Each step is committed before the next request, and a run that died is picked
        up by calling ``run`` again without ``content`` (see :mod:`clust.conversation.loop`).

        Args:
            tools: ``@tool`` functions (executed here) and tool definitions or server
                tools (sent only); they replace the stored ``tools`` for these requests.
            approve: called with each ``ToolUseContentBlock`` before it runs; ``False``
                sends an error result saying the call was denied.
            on_step: called with each :class:`~clust.conversation.loop.Step`.
            tool_timeout: seconds a tool may run (a tool's own ``timeout`` wins).
        """
        from clust.conversation.loop import run

        options = CallOptions(betas, extra_headers, timeout, max_retries)
        return run(
            self,
            client,
            content,
            tools=tools,
            max_steps=max_steps,
            approve=approve,
            on_step=on_step,
            tool_timeout=tool_timeout,
            params=params,
            options=options,
            wait=wait,
        )

    async def arun(
        self,
        client: AsyncClient,
        content: MessageContent | Message | None = None,
        *,
        tools: Sequence[Any],
        max_steps: int = 10,
        approve: Approve | None = None,
        on_step: OnStep | None = None,
        tool_timeout: float | None = None,
        wait: float = 0.0,
        params: Mapping[str, Any] | None = None,
        betas: Iterable[str] | None = None,
        extra_headers: Mapping[str, str] | None = None,
        timeout: TimeoutTypes | None = None,
        max_retries: int | None = None,
    ) -> RunResult:
        """:meth:`run` for :class:`~clust.AsyncClient`: the tool calls of one reply run
        concurrently (sync tools in worker threads), each under its timeout; ``approve``
        and ``on_step`` may be coroutines."""
        from clust.conversation.loop import arun

        options = CallOptions(betas, extra_headers, timeout, max_retries)
        return await arun(
            self,
            client,
            content,
            tools=tools,
            max_steps=max_steps,
            approve=approve,
            on_step=on_step,
            tool_timeout=tool_timeout,
            params=params,
            options=options,
            wait=wait,
        )

    # -- the turn, in steps shared with the streams ------------------------------------

    def _head_for(
        self,
        model: str | None,
        max_tokens: int | None,
        system: Any,
        tools: Sequence[Any] | None,
        params: Mapping[str, Any] | None,
    ) -> RequestHead:
        overrides: dict[str, Any] = dict(params or {})
        for name, value in (
            ("model", model),
            ("max_tokens", max_tokens),
            ("system", system),
            ("tools", tools),
        ):
            if value is not None:
                overrides[name] = value
        return self._head.with_overrides(overrides) if overrides else self._head

    def _check_budgets(self, head: RequestHead, wire: bytes | None) -> None:
        """Refuse a request that would pass a budget, before anything is stored or sent."""
        if self._spending is None:
            return
        self._load()
        size = len(head.json) + sum(map(len, self._history.wires)) + len(wire or b"")
        self._spending.check(
            self._engine,
            conversation_id=self.id,
            metadata=self.metadata,
            model=str(head.wire["model"]),
            body_size=size,
            max_tokens=int(head.wire["max_tokens"]),
        )

    def _try_begin(
        self, wire: bytes | None, resume: bool = False, after: int | None = None
    ) -> Turn:
        with self._steps:
            return begin_turn(
                self._engine,
                self.id,
                self._history,
                wire,
                self._lease,
                resume=resume,
                after=after,
                reply_id=self.cache is not None and self.cache.explain_misses,
            )

    def _begin(
        self, wire: bytes | None, wait: float, resume: bool = False, after: int | None = None
    ) -> Turn:
        """Start a turn, polling up to ``wait`` seconds while the conversation is busy
        (``after``: see :func:`~clust.conversation.turns.begin_turn`)."""
        deadline = time.monotonic() + wait
        while True:
            try:
                return self._try_begin(wire, resume, after)
            except ConversationBusy:
                if time.monotonic() >= deadline:
                    raise
            time.sleep(_POLL)

    async def _abegin(
        self, wire: bytes | None, wait: float, resume: bool = False, after: int | None = None
    ) -> Turn:
        deadline = time.monotonic() + wait
        while True:
            handoff = _Handoff()
            try:
                begin = partial(self._begin_for, handoff, wire, resume, after)
                return await anyio.to_thread.run_sync(begin)
            except ConversationBusy:
                if time.monotonic() >= deadline:
                    raise
            except BaseException:
                # Cancelled (asyncio's cancel does not wait for the worker thread): the
                # turn the thread began, or is still beginning, is given back.
                begun = handoff.abandon()
                if begun is not None:
                    with anyio.CancelScope(shield=True):
                        await anyio.to_thread.run_sync(self._abort, begun)
                raise
            await anyio.sleep(_POLL)

    def _begin_for(
        self, handoff: _Handoff, wire: bytes | None, resume: bool, after: int | None
    ) -> Turn:
        """:meth:`_try_begin` in a worker thread for :meth:`_abegin`; if the caller gave
        up meanwhile, the turn is released here, since nobody will send it."""
        turn = self._try_begin(wire, resume, after)
        if not handoff.deliver(turn):
            self._abort(turn)
        return turn

    def _finish(self, turn: Turn, response: MessagesResponseBody, started: float) -> None:
        """Store the reply; if that fails (the lease ran out and another send took the
        conversation, or the database failed), give the lease back and raise. The
        reply was billed all the same: its usage is recorded, flagged interrupted."""
        latency_ms = round((time.monotonic() - started) * 1000)
        try:
            with self._steps:
                finish_turn(self._engine, turn, self._history, response, latency_ms)
                self._window.replied(response, len(self._history.wires[-1]))
        except BaseException:
            self._abort(turn, response, started)
            raise

    def _renew(self, turn: Turn) -> None:
        """Extend the lease of a long stream (a lost lease shows at finish)."""
        renew_turn(self._engine, turn, self._lease)

    def _abort(
        self,
        turn: Turn,
        billed: MessagesResponseBody | None = None,
        started: float | None = None,
    ) -> None:
        """Release the turn; the billed partial message of a broken stream is recorded."""
        latency_ms = 0 if started is None else round((time.monotonic() - started) * 1000)
        abort_turn(self._engine, turn, billed, latency_ms)

    def _count_request(
        self, wire: bytes | None, head: RequestHead, options: CallOptions
    ) -> RequestSpec:
        """The count_tokens request of what a send of ``wire`` would send now."""
        self.refresh()
        if wire is not None and self._history.last_role == "user":
            raise PendingTurn(self.id, len(self._history) - 1)
        state = self._window
        if isinstance(self.truncation, Summarize) and not state.summary_loaded:
            state.summary = load_summary(self._engine, self.id)
            state.summary_loaded = True
        start, lead, _ = current(self.truncation, state, self._history)
        view = self._history.window(start, lead, then=wire)
        return count_tokens_request_for(self._build(view, head, options, stream=False))

    def _fit(self, head: RequestHead, options: CallOptions) -> Plan[Fit]:
        """The truncation strategy's plan for this turn's request (the turn is begun)."""

        def build(view: History, request_head: RequestHead) -> RequestSpec:
            return self._build(view, request_head, options, stream=False)

        return fit(
            self.truncation,
            self._window,
            self._history,
            head,
            build,
            engine=self._engine,
            conversation_id=self.id,
        )

    def _build(
        self, view: History, head: RequestHead, options: CallOptions, *, stream: bool
    ) -> RequestSpec:
        """The message request of ``view`` (turns as sent) with this call's options and
        the conversation's cache policy."""
        return view.request(
            head,
            stream=stream,
            betas=options.betas,
            extra_headers=options.extra_headers,
            cache=self.cache,
        )

    def _request(
        self, chosen: Fit, head: RequestHead, options: CallOptions, stream: bool
    ) -> RequestSpec:
        spec = self._build(chosen.view, head, options, stream=stream)
        self._window.sending(head, chosen, len(self._history), spec)
        return spec

    def _prepare(
        self, client: Client, head: RequestHead, options: CallOptions, *, stream: bool
    ) -> RequestSpec:
        """The request of the begun turn, after the truncation strategy (which may count
        tokens, or summarize, with ``client``).

        Raises:
            ContextWindowExceeded: it does not fit and the strategy cannot make it.
        """
        chosen = drive(self._fit(head, options), client, options)
        return self._request(chosen, head, options, stream)

    async def _aprepare(
        self, client: AsyncClient, head: RequestHead, options: CallOptions, *, stream: bool
    ) -> RequestSpec:
        """:meth:`_prepare` with an async client (database work in worker threads)."""
        chosen = await adrive(self._fit(head, options), client, options)
        return self._request(chosen, head, options, stream)

    def _refuse(self, turn: Turn, *, new_turn: bool) -> None:
        """Release a turn the strategy refused; the user turn it stored is removed."""
        drop_from = turn.reply_position - 1 if new_turn else None
        with self._steps:
            refuse_turn(self._engine, self.id, turn.holder, drop_from, self._history)

    def _exchange(
        self,
        client: Client,
        wire: bytes | None,
        head: RequestHead,
        options: CallOptions,
        wait: float,
        resume: bool = False,
        after: int | None = None,
    ) -> MessagesResponseBody:
        self._check_budgets(head, wire)
        turn = self._begin(wire, wait, resume, after)
        started = time.monotonic()
        try:
            spec = self._prepare(client, head, options, stream=False)
            response = client._create_from_spec(spec, options.timeout, options.max_retries)
        except ContextWindowExceeded:
            self._refuse(turn, new_turn=wire is not None)
            raise
        except BaseException:
            self._abort(turn)
            raise
        self._finish(turn, response, started)
        return response

    async def _aexchange(
        self,
        client: AsyncClient,
        wire: bytes | None,
        head: RequestHead,
        options: CallOptions,
        wait: float,
        resume: bool = False,
        after: int | None = None,
    ) -> MessagesResponseBody:
        await anyio.to_thread.run_sync(self._check_budgets, head, wire)
        turn = await self._abegin(wire, wait, resume, after)
        started = time.monotonic()
        try:
            spec = await self._aprepare(client, head, options, stream=False)
            response = await client._create_from_spec(spec, options.timeout, options.max_retries)
        except ContextWindowExceeded:
            with anyio.CancelScope(shield=True):
                refuse = partial(self._refuse, turn, new_turn=wire is not None)
                await anyio.to_thread.run_sync(refuse)
            raise
        except BaseException:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self._abort, turn)
            raise
        await anyio.to_thread.run_sync(partial(self._finish, turn, response, started))
        return response


class _Handoff:
    """A turn begun in a worker thread, passed to an awaiting caller who may be gone
    (cancelled) by the time it is begun: exactly one side then gives it back."""

    __slots__ = ("_abandoned", "_lock", "_turn")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._turn: Turn | None = None
        self._abandoned = False

    def deliver(self, turn: Turn) -> bool:
        """From the thread: hand ``turn`` over; ``False`` if the caller is gone."""
        with self._lock:
            if self._abandoned:
                return False
            self._turn = turn
            return True

    def abandon(self) -> Turn | None:
        """From the cancelled caller: the turn already delivered, which the caller must
        give back, or ``None`` (the thread will, if it begins one)."""
        with self._lock:
            self._abandoned = True
            return self._turn
