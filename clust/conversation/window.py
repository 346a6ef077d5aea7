"""Staying inside the model's context window: a conversation's truncation strategy.

Before each request (``send``, ``stream``, ``retry``, ``run`` and their async forms) a
conversation checks that the request fits the model's context window, and when it does
not, applies its strategy (``conversation.truncation``, set for all of a store's
conversations with ``Store(truncation=...)``):

- :class:`RaiseOnOverflow` (the default) raises
  :class:`~clust.messages.ContextWindowExceeded` with the numbers;
- :class:`DropOldest` sends only the newest turns that fit;
- :class:`Summarize` has the model summarize the older turns once, stores the summary,
  and sends it in their place;
- ``None`` checks nothing (the request goes out whole and the API judges it).

Stored turns are never deleted or changed: a strategy only chooses what is sent.
``conversation.history`` still returns every turn.

The check
---------
- The window is the models table's ``context_window`` for the request's model
  (:func:`~clust.messages.claude_models.model_limits`; add or refresh one with
  :func:`~clust.messages.claude_models.register_model`, e.g. from the Models API). For a
  model whose window is not known no check is made and count_tokens is never called:
  the request is sent as the strategy last left it.
- The limit is the window, less the request's ``max_tokens`` when the strategy
  reserves room for the reply (``reserve_output``). The API refuses only a prompt that
  is longer than the window (``prompt is too long: N tokens > M maximum``); a reply
  that runs into the window stops with ``model_context_window_exceeded``. So
  :class:`RaiseOnOverflow` reserves nothing by default (it raises exactly where the
  API would refuse), while :class:`DropOldest` and :class:`Summarize` reserve
  ``max_tokens``, so that the reply always has room.
- Tokens are estimated from what is known: the last reply's usage (input + cache
  writes + cache reads + output tokens: the prompt through that reply, exactly) plus
  the JSON bytes of the turns added since, times the conversation's measured tokens
  per byte (1/3 before anything was measured: more than most text needs). The
  count_tokens endpoint is called, and only then, when the estimate with its
  unmeasured part doubled passes the limit; a strategy acts only on an exact count
  (unless the endpoint answers with an error: then on the estimate).
  A conversation object keeps its measurements: the first request of a large
  conversation opened in a new process may cost one count_tokens call.

Cuts, tool pairs and the prompt cache
-------------------------------------
The turns sent start at a *cut*: a user turn of the user's own input (one without
``tool_result`` blocks). So the first message sent is a valid user message, and a
``tool_use`` is never sent without its ``tool_result`` nor a result without its call:
a tool loop in progress is kept whole. A cut is chosen on overflow only, and then in
one coarse step, down to ``target`` (a share of the limit, 60% by default), and kept
for the following turns: they send the same prefix, so the prompt cache written by one
turn is read by the next until the window fills again. Truncation happens before the
cache policy places its breakpoints, so those mark what is actually sent. A
:class:`DropOldest` cut lives on the conversation object (a reopened conversation cuts
afresh when it overflows, one cache write); a :class:`Summarize` summary is stored in
``clust_summaries`` and found again by any process.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from itertools import islice
from typing import TYPE_CHECKING, Any

from clust.conversation.effects import CallOptions, Count, Create, Db
from clust.conversation.history import History, RequestHead, merged_user_wire, user_wire
from clust.conversation.records import usage_values
from clust.conversation.turns import begin_attempt, finish_attempt, utcnow
from clust.messages.claude_models import model_limits
from clust.messages.errors import ApiError, ContextWindowExceeded, InvalidParameter
from clust.protocol.plans import Plan
from clust.protocol.request import RequestSpec, count_tokens_request_for
from clust.store import repository as rows
from clust.store.engine import transaction

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from clust.messages.response import MessagesResponseBody
    from clust.messages.tokens import TokenCount

__all__ = [
    "DEFAULT_SUMMARY_INSTRUCTION",
    "DEFAULT_SUMMARY_PREAMBLE",
    "DropOldest",
    "RaiseOnOverflow",
    "Summarize",
    "TruncationStrategy",
]

DEFAULT_SUMMARY_INSTRUCTION = (
    "Summarize our conversation so far for yourself, so that you can continue it without "
    "the earlier messages: keep every fact, name, number, decision, result of a tool, open "
    "question, and the user's instructions and preferences; leave out pleasantries. Answer "
    "with the summary only."
)
DEFAULT_SUMMARY_PREAMBLE = (
    "[The earlier part of this conversation no longer fits the context window. "
    "Your summary of it:]\n\n"
)

_UNMEASURED_RATIO = 1 / 3  # tokens per JSON byte assumed before anything is measured
_MARGIN = 0.1  # share of the limit an estimate calibrated a moment ago must stay below
_ROUNDS = 4  # counts (and cuts) one request may take before giving up
_HINT = "conversation.truncation = DropOldest() or Summarize() would send fewer turns"


def _share(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise InvalidParameter(name, value, "a share of the limit: 0 < value <= 1")


@dataclass(frozen=True)
class TruncationStrategy:
    """What a conversation does when its next request would not fit the context window
    (see :mod:`clust.conversation.window`). Use one of the subclasses.

    Attributes:
        reserve_output: keep the request's ``max_tokens`` free for the reply: the
            request must fit ``context_window - max_tokens``.
    """

    reserve_output: bool = False

    def limit(self, context_window: int, max_tokens: int) -> int:
        """The most input tokens a request may have under this strategy."""
        return context_window - (max_tokens if self.reserve_output else 0)


@dataclass(frozen=True)
class RaiseOnOverflow(TruncationStrategy):
    """The default: raise :class:`~clust.messages.ContextWindowExceeded` (the numbers in
    it) before anything is sent; the new user turn is not stored. With
    ``reserve_output=True`` it raises already when the reply's ``max_tokens`` would not
    fit beside the prompt."""


@dataclass(frozen=True)
class DropOldest(TruncationStrategy):
    """Send only the newest turns: on overflow, the oldest turns are left out, down to
    ``target`` of the limit, at a user turn of the user's own input (tool_use /
    tool_result pairs stay together, the first message sent is a user message). The
    cut is kept for the next turns (so the prompt cache keeps working) until the window
    fills again. Stored turns stay; only the request is shorter.

    Attributes:
        target: the share of the limit the request is cut down to (0.6: the next turns
            have 40% to grow into before the next cut).
        reserve_output: keep ``max_tokens`` free for the reply (default ``True``).
    """

    reserve_output: bool = True
    target: float = 0.6

    def __post_init__(self) -> None:
        _share("target", self.target)


@dataclass(frozen=True)
class Summarize(TruncationStrategy):
    """On overflow, have the model summarize the turns before a cut (one extra request,
    with the same client, model, system prompt and tools, sent with ``tool_choice``
    none) and send that summary, in the first user message, instead of them.

    The summary is stored (table ``clust_summaries``, with the turns it covers) and its
    usage recorded as a usage row with outcome ``"summary"``; later turns reuse it, and
    when the window fills again a new summary covers the old one and the turns after
    it. Cuts are placed as :class:`DropOldest` places them.

    Attributes:
        target: the share of the limit the request (summary included) is cut down to.
        max_tokens: the ``max_tokens`` of the summary request (room kept for it).
        instruction: the user turn that asks for the summary.
        preamble: text put before the summary in the message that carries it.
        reserve_output: keep ``max_tokens`` free for the reply (default ``True``).
    """

    reserve_output: bool = True
    target: float = 0.6
    max_tokens: int = 1024
    instruction: str = DEFAULT_SUMMARY_INSTRUCTION
    preamble: str = DEFAULT_SUMMARY_PREAMBLE

    def __post_init__(self) -> None:
        _share("target", self.target)
        if isinstance(self.max_tokens, bool) or not isinstance(self.max_tokens, int):
            raise InvalidParameter("max_tokens", self.max_tokens, "an integer >= 1")
        if self.max_tokens < 1:
            raise InvalidParameter("max_tokens", self.max_tokens, "an integer >= 1")
        if not self.instruction.strip():
            raise InvalidParameter("instruction", self.instruction, "a non-empty prompt")


# -- what a conversation object remembers --------------------------------------------------


@dataclass(frozen=True)
class _Measure:
    """Exact tokens of a request sent (and its reply): ``tokens`` for ``size`` bytes of
    the head and the turns before ``through``, sent from ``start`` (after ``lead``)."""

    head: bytes
    start: int
    lead: int | None
    through: int
    tokens: int
    size: int

    @property
    def ratio(self) -> float:
        return self.tokens / self.size


@dataclass(frozen=True)
class Fit:
    """What to send: ``view`` (the turns from ``start``, the summary through ``lead``
    merged in front), chosen by :func:`fit`."""

    view: History
    start: int
    lead: int | None


@dataclass
class WindowState:
    """A conversation object's memory for its strategy: the :class:`DropOldest` cut,
    the :class:`Summarize` summary in use, and the newest token measurement."""

    cut: int = 0
    summary: tuple[int, bytes] | None = None
    summary_loaded: bool = False
    measure: _Measure | None = None
    _sending: _Measure | None = None

    def sending(self, head: RequestHead, chosen: Fit, turns: int, spec: RequestSpec) -> None:
        """Note the request about to go out (measured when its reply comes)."""
        size = len(spec.content or b"")
        self._sending = _Measure(head.json, chosen.start, chosen.lead, turns, 0, size)

    def replied(self, response: MessagesResponseBody, reply_size: int) -> None:
        """Measure the request noted by :meth:`sending` with its reply's usage."""
        sent, self._sending = self._sending, None
        if sent is None:
            return
        usage = response.usage
        tokens = usage.total_input_tokens + usage.output_tokens
        size = sent.size + reply_size
        if tokens > 0 and size > 0:
            self.measure = _Measure(
                sent.head, sent.start, sent.lead, sent.through + 1, tokens, size
            )


def current(
    strategy: TruncationStrategy | None, state: WindowState, history: History
) -> tuple[int, bytes | None, int | None]:
    """``(start, lead wire, lead position)`` of what the strategy sends now."""
    if isinstance(strategy, DropOldest) and _is_cut(history, state.cut):
        return state.cut, None, None
    if isinstance(strategy, Summarize) and state.summary is not None:
        through, wire = state.summary
        if _is_cut(history, through):
            return through, wire, through
    return 0, None, None


def _is_cut(history: History, position: int) -> bool:
    """Whether the turn at ``position`` (> 0) may be the first one sent."""
    if not 0 < position < len(history):
        return False
    return history.roles[position] == "user" and b'"tool_result"' not in history.wires[position]


def _cut_points(history: History, start: int) -> list[int]:
    return [i for i in range(start + 1, len(history)) if _is_cut(history, i)]


def _estimate(
    measure: _Measure | None,
    head: RequestHead,
    history: History,
    start: int,
    lead: bytes | None,
    key: int | None,
    ratio: float,
) -> tuple[float, float]:
    """``(measured, estimated)`` tokens of the request from ``start`` with ``lead``."""
    wires = history.wires
    if (
        measure is not None
        and (measure.start, measure.lead) == (start, key)
        and measure.through <= len(wires)
        and measure.head == head.json
    ):
        return measure.tokens, ratio * sum(map(len, islice(wires, measure.through, None)))
    size = len(head.json) + len(lead or b"") + sum(map(len, islice(wires, start, None)))
    return 0.0, ratio * size


Build = Callable[[History, RequestHead], RequestSpec]


# -- the planner ------------------------------------------------------------------------


def fit(
    strategy: TruncationStrategy | None,
    state: WindowState,
    history: History,
    head: RequestHead,
    build: Build,
    options: CallOptions,
    *,
    engine: Engine,
    conversation_id: str,
) -> Plan[Fit]:
    """Choose what the next request sends (see the module docstring).

    ``history`` holds every stored turn, the new one included; ``build`` makes the
    message request of a view (with the call's cache policy, betas and headers).

    Raises:
        ContextWindowExceeded: the strategy could not (or may not) make it fit.
    """
    if strategy is None:
        return Fit(history, 0, None)
    if isinstance(strategy, Summarize) and not state.summary_loaded:
        state.summary = yield Db(partial(load_summary, engine, conversation_id))
        state.summary_loaded = True
    start, lead, key = current(strategy, state, history)
    model = str(head.wire["model"])
    limits = model_limits(model)
    window = None if limits is None else limits.context_window
    if window is None:
        return Fit(history.window(start, lead), start, key)
    max_tokens = int(head.wire["max_tokens"])
    reserved = max_tokens if strategy.reserve_output else 0
    limit = strategy.limit(window, max_tokens)

    counted = True

    def exceeded(tokens: int, detail: str | None = None) -> ContextWindowExceeded:
        return ContextWindowExceeded(
            model=model,
            tokens=tokens,
            counted=counted,
            context_window=window,
            reserved=reserved,
            detail=detail,
        )

    ratio = state.measure.ratio if state.measure is not None else _UNMEASURED_RATIO
    calibrated = False  # ratio measured on this very request a moment ago
    tokens = 0
    for _ in range(_ROUNDS):
        view = history.window(start, lead)
        measured, estimated = _estimate(state.measure, head, history, start, lead, key, ratio)
        if calibrated:
            if measured + estimated <= (1 - _MARGIN) * limit:
                return Fit(view, start, key)
        elif measured + 2 * estimated <= limit:
            return Fit(view, start, key)
        spec = build(view, head)
        answer = yield from _count(spec, options)
        size = len(spec.content or b"")
        if answer is None:  # no count to be had: go by the estimate
            tokens, counted = round(measured + estimated), False
        else:
            tokens, counted = answer, True
            state.measure = _Measure(head.json, start, key, len(history), tokens, size)
            ratio, calibrated = state.measure.ratio, True
        if tokens <= limit:
            return Fit(view, start, key)
        if not isinstance(strategy, (DropOldest, Summarize)) or limit <= 0:
            raise exceeded(tokens, _HINT if isinstance(strategy, RaiseOnOverflow) else None)
        if isinstance(strategy, Summarize):
            # Another process may have summarized since this object looked.
            state.summary = yield Db(partial(load_summary, engine, conversation_id))
            newer = current(strategy, state, history)
            if newer[0] > start:
                start, lead, key = newer
                continue
        cuts = _cut_points(history, start)
        if not cuts:
            raise exceeded(tokens, _nothing_to_cut(strategy, start))
        # Bytes of the request without the turns before each cut (and without the lead,
        # which a new summary replaces); tokens follow at the measured ratio.
        kept = size - len(lead or b"")
        sizes: list[int] = []
        position = start
        for cut in cuts:
            kept -= sum(map(len, islice(history.wires, position, cut)))
            position = cut
            sizes.append(kept)
        extra = 0.0
        if isinstance(strategy, Summarize):
            extra = strategy.max_tokens + ratio * len(strategy.preamble.encode())
        estimates = [ratio * left + extra for left in sizes]
        goal = strategy.target * limit
        choice = next((i for i, value in enumerate(estimates) if value <= goal), len(cuts) - 1)
        cut = cuts[choice]
        if isinstance(strategy, Summarize):
            if estimates[choice] > (1 - _MARGIN) * limit:
                raise exceeded(
                    tokens,
                    f"with every turn before position {cut} summarized the request would "
                    f"still need about {round(estimates[choice]):,} tokens",
                )
            previous = start
            state.summary = yield from _summarize(
                strategy,
                history,
                start,
                lead,
                cut,
                head,
                build,
                options,
                engine=engine,
                conversation_id=conversation_id,
            )
            start, lead, key = current(strategy, state, history)
            if start <= previous:  # the summary stored is not usable here
                raise exceeded(tokens, "the new summary could not be used")
        else:
            state.cut = start = cut
    raise exceeded(tokens, f"the strategy did not make it fit in {_ROUNDS} attempts")


def _count(spec: RequestSpec, options: CallOptions) -> Plan[int | None]:
    """The input tokens of ``spec``'s prompt, or ``None`` when the endpoint answered
    with an error (then the planner goes by its estimate)."""
    try:
        counted: TokenCount = yield Count(count_tokens_request_for(spec), options)
    except ApiError:
        return None
    return counted.input_tokens


def _nothing_to_cut(strategy: TruncationStrategy, start: int) -> str:
    what = "summarized" if isinstance(strategy, Summarize) else "left out"
    where = f"position {start}" if start else "the first turn"
    return (
        f"no turn before the newest can be {what}: the turns from {where} on are one "
        "exchange (a user message and the tool_use/tool_result pairs after it)"
    )


def _summary_head(head: RequestHead, strategy: Summarize) -> RequestHead:
    """The request defaults of a summary: the same model, system prompt and tools (the
    history may hold tool calls), no tool call allowed, the summary's ``max_tokens``."""
    tools = head.wire.get("tools")
    return RequestHead.validated(
        model=str(head.wire["model"]),
        max_tokens=strategy.max_tokens,
        system=head.wire.get("system"),
        tools=tools,
        params={"tool_choice": {"type": "none"}} if tools else None,
    )


def _summarize(
    strategy: Summarize,
    history: History,
    start: int,
    lead: bytes | None,
    cut: int,
    head: RequestHead,
    build: Build,
    options: CallOptions,
    *,
    engine: Engine,
    conversation_id: str,
) -> Plan[tuple[int, bytes] | None]:
    """Summarize the turns before ``cut`` (and the summary ``lead`` they follow); store
    the summary and the request's usage. Returns the newest stored summary."""
    wires = history.wires[start:cut]
    if lead is not None:
        wires[0] = merged_user_wire(lead, wires[0])
    part = History()
    part.extend(history.roles[start:cut], wires)
    part.append("user", user_wire(strategy.instruction))
    summary_head = _summary_head(head, strategy)
    summary_request = build(part, summary_head)
    model = str(summary_head.wire["model"])
    # The ledger's intent row first: a crash while the summary is made leaves an
    # attempt of unknown outcome, never a billed request nobody can see.
    attempt: int = yield Db(partial(begin_attempt, engine, conversation_id, model))
    started_at = utcnow()
    started = time.monotonic()
    try:
        response: MessagesResponseBody = yield Create(summary_request, options)
    except GeneratorExit:
        raise  # closed with its driver gone: no effect can run now (see engine.exchange)
    except BaseException as failure:
        latency_ms = round((time.monotonic() - started) * 1000)
        outcome = "failed" if isinstance(failure, ApiError) else "unknown"
        if outcome == "failed":
            close = partial(
                finish_attempt,
                engine,
                attempt,
                conversation_id,
                None,
                outcome=outcome,
                latency_ms=latency_ms,
            )
            yield Db(close)
        raise
    latency_ms = round((time.monotonic() - started) * 1000)
    text = response.text().strip() or "(nothing to summarize)"
    wire = user_wire(strategy.preamble + text)
    store = partial(
        store_summary,
        engine,
        conversation_id,
        cut,
        wire,
        response,
        started_at,
        latency_ms,
        attempt,
    )
    stored: tuple[int, bytes] | None = yield Db(store)
    return stored


# -- the database ------------------------------------------------------------------------


def load_summary(engine: Engine, conversation_id: str) -> tuple[int, bytes] | None:
    """The newest stored summary of a conversation: ``(through_position, wire)``."""
    with engine.connect() as connection, connection.begin():
        row = rows.latest_summary(connection, conversation_id)
    return None if row is None else (row[0], row[1].encode())


def store_summary(
    engine: Engine,
    conversation_id: str,
    through: int,
    wire: bytes,
    response: MessagesResponseBody,
    started_at: Any,
    latency_ms: int,
    attempt_id: int,
) -> tuple[int, bytes] | None:
    """Store a summary and complete the ledger row of the request that made it, in
    one transaction; returns the newest summary (another one if one already covered
    ``through``)."""
    with transaction(engine) as connection:
        now = utcnow()
        values = usage_values(
            response,
            conversation_id=conversation_id,
            position=None,
            started_at=started_at,
            finished_at=now,
            latency_ms=latency_ms,
            outcome="summary",
        )
        rows.complete_attempt(connection, attempt_id, values)
        if rows.insert_summary(
            connection, conversation_id, through, wire.decode(), response.model, now
        ):
            return through, wire
        row = rows.latest_summary(connection, conversation_id)
    return None if row is None else (row[0], row[1].encode())


def refuse_turn(
    engine: Engine, conversation_id: str, holder: str, drop_from: int | None, history: History
) -> None:
    """Release the lease of a turn a strategy refused; ``drop_from``: the position of
    the user turn this send stored, removed in the same transaction (nothing stays)."""
    with transaction(engine) as connection:
        held = rows.release_lease(connection, conversation_id, holder)
        if held and drop_from is not None:
            rows.delete_messages_from(connection, conversation_id, drop_from)
    if held and drop_from is not None:
        history.truncate(drop_from)
