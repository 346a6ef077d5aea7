"""The tool-use loop: send, run the tools Claude asks for, send their results, until done.

Every step commits before the next request: the reply (with its usage row), then
each tool call as a row that goes pending -> running -> succeeded/failed, then the
user turn of ``tool_result`` blocks as the next send. A run that dies anywhere is
picked up by the next ``run`` on the same conversation:

- a pending user turn (tool results or the first question) is resent;
- the tool calls of the last reply are read back: stored results are reused,
  calls that never started are executed, and a call found ``running`` (its process
  died inside it) is executed again only if its tool is ``idempotent``; otherwise
  it gets an error result saying it was interrupted. A completed call is never
  executed twice.

A tool that raises, gets invalid input, is unknown, is denied by the ``approve``
hook or times out becomes a ``tool_result`` with ``is_error: true`` and a message
the model can act on; the loop goes on and the exception is recorded.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import TYPE_CHECKING, Any

from clust.conversation.effects import CallTool, Db, Hook, Parallel
from clust.conversation.engine import Exchanged, TurnRequest, exchange
from clust.conversation.history import user_wire
from clust.conversation.turns import Turn, hold_lease, release_turn, utcnow
from clust.conversation.waiting import in_line
from clust.messages.blocks import ToolResultContentBlock, ToolUseContentBlock
from clust.messages.errors import InvalidParameter, ToolInputError
from clust.messages.message import Message
from clust.messages.storable import lone_surrogate
from clust.store import repository as rows
from clust.store.engine import transaction
from clust.tools import Tool, tool_definitions, tool_result_content

if TYPE_CHECKING:
    from clust.conversation.state import ConversationState
    from clust.messages.response import MessagesResponseBody
    from clust.protocol.plans import Plan

__all__ = ["Approve", "OnStep", "RunResult", "Step", "ToolCallOutcome", "ToolLoop"]

Approve = Callable[[ToolUseContentBlock], "bool | Awaitable[bool]"]
OnStep = Callable[["Step"], "Awaitable[None] | None"]

_DONE = ("succeeded", "failed")


@dataclass(frozen=True)
class ToolCallOutcome:
    """What one tool call gave (``content`` is the ``tool_result`` content as wire JSON)."""

    tool_use_id: str
    name: str
    input: Any
    content: Any
    is_error: bool
    error: str | None
    status: str
    attempts: int
    reused: bool
    """The result was stored by an earlier run (the tool did not run again now)."""


@dataclass(frozen=True)
class Step:
    """One request and the tools run on its reply (``response`` is ``None`` for the tools
    left unfinished by an earlier run and completed now)."""

    index: int
    response: MessagesResponseBody | None
    tool_calls: list[ToolCallOutcome] = field(default_factory=list)


@dataclass(frozen=True)
class RunResult:
    """How a run ended: the last reply, every step, and why it stopped.

    ``stop`` is the last reply's stop reason (``end_turn``, ``max_tokens``,
    ``stop_sequence``, ``refusal``, ...), or ``"max_steps"`` when the step budget ran
    out first (the tool results, if any, are stored and the next ``run`` sends them).
    """

    response: MessagesResponseBody | None
    steps: list[Step]
    stop: str

    @property
    def text(self) -> str:
        """The text of the last reply (empty if none)."""
        return "" if self.response is None else self.response.text()


class _Next:
    """What to do next: send (``wire``), resend (``retry``), continue a paused reply
    (``resume``), or run the tools of the reply at ``tools_at``."""

    def __init__(
        self,
        wire: bytes | None = None,
        *,
        resume: bool = False,
        tools_at: int | None = None,
        tool_uses: Sequence[ToolUseContentBlock] = (),
        answers: int | None = None,
    ) -> None:
        self.wire = wire
        self.resume = resume
        self.tools_at = tools_at
        self.tool_uses = list(tool_uses)
        self.answers = answers
        """The position of the reply whose tool calls ``wire`` answers: it is stored only
        right after it (another process may have answered them meanwhile)."""


class ToolLoop:
    """One ``run``: its tools, its limits, the steps so far, and its plan."""

    def __init__(
        self,
        state: ConversationState,
        tools: Sequence[Any],
        *,
        max_steps: int,
        tool_timeout: float | None,
        approve: Approve | None,
        on_step: OnStep | None,
    ) -> None:
        if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
            raise InvalidParameter("max_steps", max_steps, "an integer >= 1")
        if tool_timeout is not None and tool_timeout <= 0:
            raise InvalidParameter("tool_timeout", tool_timeout, "seconds > 0, or None")
        self.state = state
        self.registry = {tool.name: tool for tool in tools if isinstance(tool, Tool)}
        self.definitions: list[Any] = [
            item.to_wire() if hasattr(item, "to_wire") else dict(item)
            for item in tool_definitions(tools)
        ]
        self.max_steps = max_steps
        self.tool_timeout = tool_timeout
        self.approve = approve
        self.on_step = on_step
        self.steps: list[Step] = []

    # -- the plan ------------------------------------------------------------------------

    def plan(self, content: object, wire: bytes | None, request: TurnRequest) -> Plan[RunResult]:
        """Send, run the tools asked for, send their results, until the run is over.

        The lease taken by a request whose reply asks for tools is kept (``held``)
        until the tool results are stored by the next request, or given back when the
        run stops in between.
        """
        upcoming: _Next | None
        upcoming, held = yield from self._start(content, wire, request.wait)
        response: MessagesResponseBody | None = None
        requests = 0
        try:
            while upcoming is not None:
                if upcoming.tools_at is not None:
                    outcomes = yield from self._tool_step(upcoming)
                    step = self._finish_tools(response, outcomes)
                    if self.on_step is not None:
                        yield Hook(self.on_step, step)
                    results = _results_turn(outcomes)
                    upcoming = _Next(results, answers=upcoming.tools_at)
                    continue
                if requests >= self.max_steps:
                    if held is not None:
                        yield Db(partial(release_turn, self.state.engine, held))
                        held = None
                    return RunResult(response, self.steps, "max_steps")
                turn_request = replace(
                    request,
                    wire=upcoming.wire,
                    resume=upcoming.resume,
                    after=upcoming.answers,
                    held=held,
                    keep_for_tools=True,
                )
                # A failure before the turn took the held lease over leaves it ours:
                # the handler below gives it back (a no-op once the turn released it).
                exchanged: Exchanged = yield from exchange(self.state, turn_request)
                response, held = exchanged.response, exchanged.held
                requests += 1
                upcoming = self._after_reply(response)
                if (upcoming is None or upcoming.resume) and self.on_step is not None:
                    yield Hook(self.on_step, self.steps[-1])
        except GeneratorExit:
            raise  # closed with its driver gone: no effect can run now (see engine.exchange)
        except BaseException:
            if held is not None:
                yield Db(partial(release_turn, self.state.engine, held))
            raise
        if held is not None:  # pragma: no cover (a reply that kept the lease runs tools)
            yield Db(partial(release_turn, self.state.engine, held))
        assert response is not None
        return RunResult(response, self.steps, str(response.stop_reason))

    def _tool_step(self, upcoming: _Next) -> Plan[list[ToolCallOutcome]]:
        """Run the tool calls of the reply at ``upcoming.tools_at`` (concurrently under an
        async driver); a completed call is reused, never run again."""
        position = upcoming.tools_at
        assert position is not None
        stored = yield Db(partial(self._record_calls, position, upcoming.tool_uses))
        calls = [self._call(position, block, stored[block.id]) for block in upcoming.tool_uses]
        outcomes: list[ToolCallOutcome] = yield Parallel(calls)
        return outcomes

    def _call(self, position: int, block: ToolUseContentBlock, row: Any) -> Plan[ToolCallOutcome]:
        """One tool call: reuse its stored result, refuse it, or claim and run it."""
        if row.status in _DONE:
            return _reused(row)
        refused = self._refusal(block, row)
        if refused is None and self.approve is not None and not (yield Hook(self.approve, block)):
            refused = (f"Error: the call to {block.name} was denied by the user.", "denied")
        if refused is not None:
            message, reason = refused
            settle = partial(self._settle, position, block, message, True, reason, row.attempts)
            settled: ToolCallOutcome = yield Db(settle)
            return settled
        if not (yield Db(partial(self._claim, position, block.id, row.status))):
            again = yield Db(partial(self._record_calls, position, [block]))
            return _reused(again[block.id])
        tool = self.registry[block.name]
        timeout = tool.timeout if tool.timeout is not None else self.tool_timeout
        attempts = row.attempts + 1
        error: str | None = None
        try:
            finished, value = yield CallTool(tool, block.input, timeout)
            if finished:
                content, is_error, error = _content_of(value), False, None
            else:
                content = f"Error: {block.name} timed out after {timeout:g} s."
                is_error, error = True, "timed out"
        except Exception as exc:  # a tool's failure is a result for the model, not ours
            error = f"{type(exc).__name__}: {_describe(exc)}"
            content, is_error = f"Error: {block.name} failed: {error}", True
        where = lone_surrogate(content)
        if where is not None:  # no UTF-8 for it: neither the store nor the API takes it
            error = f"InvalidResult: a lone surrogate in the result{where or ''}"
            content = f"Error: {block.name} returned text that is not valid Unicode."
            is_error = True
        outcome: ToolCallOutcome = yield Db(
            partial(self._settle, position, block, content, is_error, error, attempts)
        )
        return outcome

    # -- deciding where to start and what follows ------------------------------------------

    def _start(
        self, content: object, wire: bytes | None, wait: float
    ) -> Plan[tuple[_Next, Turn | None]]:
        """Where the run starts, and the lease it holds when it starts by running the
        last reply's tools (waiting in line up to ``wait`` seconds while another send
        holds the conversation)."""
        claim = Db(partial(self._first, content, wire), undo=self._give_back)
        first: tuple[_Next, Turn | None] = yield from in_line(
            self.state.engine, self.state.id, wait, claim
        )
        return first

    def _give_back(self, first: tuple[_Next, Turn | None]) -> None:
        if first[1] is not None:
            release_turn(self.state.engine, first[1])

    def _first(self, content: object, wire: bytes | None) -> tuple[_Next, Turn | None]:
        state = self.state
        state.refresh()
        upcoming = self._decide(content, wire)
        if upcoming.tools_at is None:
            return upcoming, None
        # The tools run under the lease: no other send may come between the reply and
        # their results. Under it the history is read again: another process may
        # have answered the calls before the lease was ours.
        held = hold_lease(state.engine, state.id, state.history, state.lease)
        try:
            upcoming = self._decide(content, wire)
        except BaseException:
            release_turn(state.engine, held)
            raise
        if upcoming.tools_at is None:
            release_turn(state.engine, held)
            return upcoming, None
        return upcoming, held

    def _decide(self, content: object, wire: bytes | None) -> _Next:
        """The first step, on the history as read."""
        state = self.state
        history = state.history
        position = len(history) - 1
        tool_uses: list[ToolUseContentBlock] = []
        if history.last_role == "assistant":
            last = Message.model_validate_json(history.wires[position])
            tool_uses = [b for b in last.content if isinstance(b, ToolUseContentBlock)]
        if wire is not None:
            return _Next(wire)  # the engine checks it answers any tool calls
        if history.last_role == "user":
            return _Next()  # a pending turn: resend it
        if history.last_role is None:
            raise InvalidParameter("content", None, "a first user turn (the conversation is empty)")
        if tool_uses:
            return _Next(tools_at=position, tool_uses=tool_uses)
        with state.engine.connect() as connection:
            stop = rows.stop_reason_at(connection, state.id, position)
        if stop == "pause_turn":
            return _Next(resume=True)
        raise InvalidParameter(
            "content", content, "a new user turn (the last reply is complete; nothing to resume)"
        )

    def _after_reply(self, response: MessagesResponseBody) -> _Next | None:
        """What follows a reply, or ``None`` when the run is over."""
        stop = response.stop_reason
        if stop == "tool_use" and response.tool_uses():
            return _Next(tools_at=len(self.state.history) - 1, tool_uses=response.tool_uses())
        self.steps.append(Step(len(self.steps), response))
        if stop == "pause_turn":
            return _Next(resume=True)
        return None

    def _finish_tools(
        self, response: MessagesResponseBody | None, outcomes: list[ToolCallOutcome]
    ) -> Step:
        step = Step(len(self.steps), response, outcomes)
        self.steps.append(step)
        return step

    def _refusal(self, block: ToolUseContentBlock, row: Any) -> tuple[str, str] | None:
        """Why a call cannot run at all (message for the model, recorded error), or None."""
        tool = self.registry.get(block.name)
        if tool is None:
            known = ", ".join(sorted(self.registry)) or "none"
            return (
                f"Error: there is no tool named {block.name!r} (tools: {known}).",
                f"UnknownTool: {block.name}",
            )
        if row.status == "running" and not tool.idempotent:
            return (
                f"Error: the call to {block.name} was interrupted (the process running it "
                "stopped) and was not run again because the tool is not marked idempotent; "
                "its effects are unknown.",
                "interrupted while running",
            )
        try:
            tool.validate(block.input if isinstance(block.input, Mapping) else {})
        except ToolInputError as exc:
            return f"Error: {exc}", f"ToolInputError: {exc}"
        return None

    # -- tool call rows (blocking; run as Db effects) ----------------------------------------

    def _record_calls(
        self, position: int, tool_uses: Sequence[ToolUseContentBlock]
    ) -> dict[str, Any]:
        """Make sure every call has its row; return the rows by tool_use id."""
        state = self.state
        with transaction(state.engine) as connection:
            rows.insert_tool_calls(
                connection,
                state.id,
                position,
                [(block.id, block.name, block.input) for block in tool_uses],
                utcnow(),
            )
            stored = rows.load_tool_calls(connection, state.id, position)
        return {row.tool_use_id: row for row in stored}

    def _claim(self, position: int, tool_use_id: str, expected: str) -> bool:
        with transaction(self.state.engine) as connection:
            return rows.start_tool_call(
                connection, self.state.id, position, tool_use_id, expected, utcnow()
            )

    def _settle(
        self,
        position: int,
        block: ToolUseContentBlock,
        content: Any,
        is_error: bool,
        error: str | None,
        attempts: int,
    ) -> ToolCallOutcome:
        """Store a call's outcome (one commit) and return it."""
        status = "failed" if is_error else "succeeded"
        with transaction(self.state.engine) as connection:
            rows.finish_tool_call(
                connection,
                self.state.id,
                position,
                block.id,
                status=status,
                result=json.dumps(content, separators=(",", ":"), ensure_ascii=False),
                is_error=is_error,
                error=error,
                now=utcnow(),
            )
        return ToolCallOutcome(
            block.id, block.name, block.input, content, is_error, error, status, attempts, False
        )


def _reused(row: Any) -> ToolCallOutcome:
    content = json.loads(row.result) if row.result is not None else ""
    return ToolCallOutcome(
        row.tool_use_id,
        row.name,
        row.input,
        content,
        bool(row.is_error),
        row.error,
        row.status,
        row.attempts,
        True,
    )


def _describe(exc: Exception) -> str:
    """An exception's message, storable: lone surrogates written as escapes (they have
    no UTF-8), and a placeholder if ``str()`` itself fails."""
    try:
        text = str(exc)
    except Exception:  # a broken __str__ must not stop the call from being settled
        text = f"<{type(exc).__name__} whose message could not be read>"
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _results_turn(outcomes: Sequence[ToolCallOutcome]) -> bytes:
    """The user turn of tool_result blocks, in the order of the tool_use blocks."""
    blocks = [
        ToolResultContentBlock.new(
            outcome.tool_use_id, outcome.content, is_error=True if outcome.is_error else None
        )
        for outcome in outcomes
    ]
    return user_wire(blocks)


def _content_of(value: Any) -> Any:
    """A tool's return value as tool_result wire content (a string or block dicts)."""
    content = tool_result_content(value)
    if isinstance(content, str):
        return content
    return [block.to_wire() if hasattr(block, "to_wire") else block for block in content]
