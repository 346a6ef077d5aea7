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

import inspect
import json
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import Future, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread

from clust.conversation.history import RequestHead, user_wire
from clust.conversation.turns import utcnow
from clust.messages.blocks import ToolResultContentBlock, ToolUseContentBlock
from clust.messages.errors import InvalidParameter, ToolInputError
from clust.messages.message import Message
from clust.store import repository as rows
from clust.store.engine import transaction
from clust.tools import Tool, tool_definitions, tool_result_content

if TYPE_CHECKING:
    from clust.client import AsyncClient, Client
    from clust.conversation.conversation import CallOptions, Conversation
    from clust.messages.message import MessageContent
    from clust.messages.response import MessagesResponseBody

__all__ = ["RunResult", "Step", "ToolCallOutcome", "arun", "run"]

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


@dataclass
class _Plan:
    """What to do next: send (``wire``), resend (``retry``), continue a paused reply
    (``resume``), or run the tools of the reply at ``tools_at``."""

    wire: bytes | None = None
    resume: bool = False
    tools_at: int | None = None
    tool_uses: list[ToolUseContentBlock] = field(default_factory=list)
    answers: int | None = None
    """The position of the reply whose tool calls ``wire`` answers: it is stored only
    right after it (another process may have answered them meanwhile)."""


class _Loop:
    """State shared by the sync and async loops."""

    def __init__(
        self,
        conversation: Conversation,
        tools: Sequence[Any],
        *,
        max_steps: int,
        tool_timeout: float | None,
        params: Mapping[str, Any] | None,
    ) -> None:
        if max_steps < 1:
            raise InvalidParameter("max_steps", max_steps, "an integer >= 1")
        if tool_timeout is not None and tool_timeout <= 0:
            raise InvalidParameter("tool_timeout", tool_timeout, "seconds > 0, or None")
        self.conversation = conversation
        self.registry = {tool.name: tool for tool in tools if isinstance(tool, Tool)}
        definitions = [
            item.to_wire() if hasattr(item, "to_wire") else dict(item)
            for item in tool_definitions(tools)
        ]
        self.head: RequestHead = conversation._head_for(
            None, None, None, definitions or None, params
        )
        self.max_steps = max_steps
        self.tool_timeout = tool_timeout
        self.steps: list[Step] = []

    # -- deciding where to start ---------------------------------------------------------

    def first_plan(self, content: MessageContent | Message | None) -> _Plan:
        conversation = self.conversation
        conversation.refresh()
        history = conversation._history
        position = len(history) - 1
        tool_uses: list[ToolUseContentBlock] = []
        if history.last_role == "assistant":
            last = Message.model_validate_json(history.wires[position])
            tool_uses = [b for b in last.content if isinstance(b, ToolUseContentBlock)]
        if content is not None:
            wire = user_wire(content)
            if tool_uses:
                _check_answers(content, wire, tool_uses)
            return _Plan(wire=wire)
        if history.last_role == "user":
            return _Plan(resume=False)  # a pending turn: resend it
        if history.last_role is None:
            raise InvalidParameter("content", None, "a first user turn (the conversation is empty)")
        if tool_uses:
            return _Plan(tools_at=position, tool_uses=tool_uses)
        with conversation._engine.connect() as connection:
            stop = rows.stop_reason_at(connection, conversation.id, position)
        if stop == "pause_turn":
            return _Plan(resume=True)
        raise InvalidParameter(
            "content", None, "a new user turn (the last reply is complete; nothing to resume)"
        )

    def after_reply(self, response: MessagesResponseBody) -> _Plan | None:
        """The plan after a reply, or ``None`` when the run is over."""
        stop = response.stop_reason
        if stop == "tool_use" and response.tool_uses():
            return _Plan(
                tools_at=len(self.conversation._history) - 1, tool_uses=response.tool_uses()
            )
        self.steps.append(Step(len(self.steps), response))
        if stop == "pause_turn":
            return _Plan(resume=True)
        return None

    # -- tool calls: rows and outcomes ----------------------------------------------------

    def record_calls(
        self, position: int, tool_uses: Sequence[ToolUseContentBlock]
    ) -> dict[str, Any]:
        """Make sure every call has its row; return the rows by tool_use id."""
        engine = self.conversation._engine
        with transaction(engine) as connection:
            rows.insert_tool_calls(
                connection,
                self.conversation.id,
                position,
                [(block.id, block.name, block.input) for block in tool_uses],
                utcnow(),
            )
            stored = rows.load_tool_calls(connection, self.conversation.id, position)
        return {row.tool_use_id: row for row in stored}

    def claim(self, tool_use_id: str, expected: str) -> bool:
        engine = self.conversation._engine
        with transaction(engine) as connection:
            return rows.start_tool_call(
                connection, self.conversation.id, tool_use_id, expected, utcnow()
            )

    def settle(
        self,
        block: ToolUseContentBlock,
        *,
        content: Any,
        is_error: bool,
        error: str | None,
        attempts: int,
    ) -> ToolCallOutcome:
        """Store a call's outcome (one commit) and return it."""
        status = "failed" if is_error else "succeeded"
        engine = self.conversation._engine
        with transaction(engine) as connection:
            rows.finish_tool_call(
                connection,
                self.conversation.id,
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

    def refusal(self, block: ToolUseContentBlock, row: Any) -> tuple[str, str] | None:
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

    @staticmethod
    def reused(row: Any) -> ToolCallOutcome:
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

    @staticmethod
    def failure(block: ToolUseContentBlock, exc: BaseException) -> tuple[str, str]:
        recorded = f"{type(exc).__name__}: {exc}"
        return f"Error: {block.name} failed: {recorded}", recorded

    def results_turn(self, outcomes: Sequence[ToolCallOutcome]) -> bytes:
        """The user turn of tool_result blocks, in the order of the tool_use blocks."""
        blocks = [
            ToolResultContentBlock.new(
                outcome.tool_use_id, outcome.content, is_error=True if outcome.is_error else None
            )
            for outcome in outcomes
        ]
        return user_wire(blocks)

    def finish_tools(
        self, response: MessagesResponseBody | None, outcomes: list[ToolCallOutcome]
    ) -> Step:
        step = Step(len(self.steps), response, outcomes)
        self.steps.append(step)
        return step


def _check_answers(content: object, wire: bytes, tool_uses: Sequence[ToolUseContentBlock]) -> None:
    """Refuse a new user turn that leaves tool calls of the last reply unanswered: the
    API would reject it, and stored as the pending turn it would block the conversation."""
    message = Message.model_validate_json(wire)
    blocks = [] if isinstance(message.content, str) else message.content
    answered = {b.tool_use_id for b in blocks if isinstance(b, ToolResultContentBlock)}
    missing = [block.id for block in tool_uses if block.id not in answered]
    if missing:
        raise InvalidParameter(
            "content",
            content,
            f"the tool_result blocks of the last reply's tool calls ({', '.join(missing)}), "
            "or no content: run() then runs those calls first",
        )


def _content_of(value: Any) -> Any:
    """A tool's return value as tool_result wire content (a string or block dicts)."""
    content = tool_result_content(value)
    if isinstance(content, str):
        return content
    return [block.to_wire() if hasattr(block, "to_wire") else block for block in content]


# -- sync ---------------------------------------------------------------------------------


def run(
    conversation: Conversation,
    client: Client,
    content: MessageContent | Message | None,
    *,
    tools: Sequence[Any],
    max_steps: int,
    approve: Approve | None,
    on_step: OnStep | None,
    tool_timeout: float | None,
    params: Mapping[str, Any] | None,
    options: CallOptions,
    wait: float,
) -> RunResult:
    """See :meth:`Conversation.run`."""
    loop = _Loop(conversation, tools, max_steps=max_steps, tool_timeout=tool_timeout, params=params)
    plan: _Plan | None = loop.first_plan(content)
    response: MessagesResponseBody | None = None
    requests = 0
    while plan is not None:
        if plan.tools_at is not None:
            outcomes = _run_tools(loop, plan, approve)
            step = loop.finish_tools(response, outcomes)
            if on_step is not None:
                on_step(step)
            plan = _Plan(wire=loop.results_turn(outcomes), answers=plan.tools_at)
            continue
        if requests >= max_steps:
            return RunResult(response, loop.steps, "max_steps")
        response = conversation._exchange(
            client, plan.wire, loop.head, options, wait, resume=plan.resume, after=plan.answers
        )
        requests += 1
        plan = loop.after_reply(response)
        if (plan is None or plan.resume) and on_step is not None:
            on_step(loop.steps[-1])
    assert response is not None
    return RunResult(response, loop.steps, str(response.stop_reason))


def _run_tools(loop: _Loop, plan: _Plan, approve: Approve | None) -> list[ToolCallOutcome]:
    assert plan.tools_at is not None
    stored = loop.record_calls(plan.tools_at, plan.tool_uses)
    outcomes = []
    for block in plan.tool_uses:
        row = stored[block.id]
        if row.status in _DONE:
            outcomes.append(loop.reused(row))
            continue
        refused = loop.refusal(block, row)
        if refused is None and approve is not None and not approve(block):
            refused = (f"Error: the call to {block.name} was denied by the user.", "denied")
        if refused is not None:
            message, error = refused
            outcomes.append(
                loop.settle(
                    block, content=message, is_error=True, error=error, attempts=row.attempts
                )
            )
            continue
        if not loop.claim(block.id, row.status):
            outcomes.append(loop.reused(loop.record_calls(plan.tools_at, [block])[block.id]))
            continue
        outcomes.append(_execute(loop, block, row.attempts + 1))
    return outcomes


def _execute(loop: _Loop, block: ToolUseContentBlock, attempts: int) -> ToolCallOutcome:
    tool = loop.registry[block.name]
    timeout = tool.timeout if tool.timeout is not None else loop.tool_timeout
    try:
        if tool.is_async:  # an event loop of its own, where a timeout cancels it
            finished, value = anyio.run(_acall_within, tool, block.input, timeout)
        elif timeout is None:
            finished, value = True, tool.call(block.input)
        else:
            finished, value = _call_within(tool, block.input, timeout)
        if not finished:
            message = f"Error: {block.name} timed out after {timeout:g} s."
            return loop.settle(
                block, content=message, is_error=True, error="timed out", attempts=attempts
            )
        content = _content_of(value)
    except Exception as exc:  # a tool's failure is a result for the model, not ours
        message, error = loop.failure(block, exc)
        return loop.settle(block, content=message, is_error=True, error=error, attempts=attempts)
    return loop.settle(block, content=content, is_error=False, error=None, attempts=attempts)


def _call_within(tool: Tool[Any, Any], input: Any, timeout: float) -> tuple[bool, Any]:
    """Call a sync tool, waiting at most ``timeout`` s: ``(False, None)`` if it did not end.

    Python cannot stop a thread: a late tool is left to finish in the background, in a
    daemon thread so that it never holds up the interpreter's exit (the workers of a
    ``ThreadPoolExecutor`` are joined at exit). The tool's own ``TimeoutError`` is a
    failure like any other, told apart from ours by the future being done.
    """
    future: Future[Any] = Future()

    def target() -> None:
        try:
            future.set_result(tool.call(input))
        except BaseException as exc:  # handed to the waiting thread, raised there
            future.set_exception(exc)

    threading.Thread(target=target, name=f"clust tool {tool.name}", daemon=True).start()
    done, _ = wait([future], timeout)
    return (True, future.result()) if done else (False, None)


async def _acall_within(
    tool: Tool[Any, Any], input: Any, timeout: float | None
) -> tuple[bool, Any]:
    """Await an async tool under ``timeout``: ``(False, None)`` if it was cancelled for it."""
    with anyio.move_on_after(timeout):
        return True, await tool.acall(input)
    return False, None


# -- async --------------------------------------------------------------------------------


async def arun(
    conversation: Conversation,
    client: AsyncClient,
    content: MessageContent | Message | None,
    *,
    tools: Sequence[Any],
    max_steps: int,
    approve: Approve | None,
    on_step: OnStep | None,
    tool_timeout: float | None,
    params: Mapping[str, Any] | None,
    options: CallOptions,
    wait: float,
) -> RunResult:
    """See :meth:`Conversation.arun`."""
    loop = _Loop(conversation, tools, max_steps=max_steps, tool_timeout=tool_timeout, params=params)
    plan: _Plan | None = await anyio.to_thread.run_sync(loop.first_plan, content)
    response: MessagesResponseBody | None = None
    requests = 0
    while plan is not None:
        if plan.tools_at is not None:
            outcomes = await _arun_tools(loop, plan, approve)
            step = loop.finish_tools(response, outcomes)
            await _maybe_await(on_step, step)
            plan = _Plan(wire=loop.results_turn(outcomes), answers=plan.tools_at)
            continue
        if requests >= max_steps:
            return RunResult(response, loop.steps, "max_steps")
        response = await conversation._aexchange(
            client, plan.wire, loop.head, options, wait, resume=plan.resume, after=plan.answers
        )
        requests += 1
        plan = loop.after_reply(response)
        if plan is None or plan.resume:
            await _maybe_await(on_step, loop.steps[-1])
    assert response is not None
    return RunResult(response, loop.steps, str(response.stop_reason))


async def _maybe_await(hook: Callable[..., Any] | None, *args: Any) -> Any:
    if hook is None:
        return None
    value = hook(*args)
    if inspect.isawaitable(value):
        value = await value
    return value


async def _arun_tools(loop: _Loop, plan: _Plan, approve: Approve | None) -> list[ToolCallOutcome]:
    assert plan.tools_at is not None
    position = plan.tools_at
    stored = await anyio.to_thread.run_sync(loop.record_calls, position, plan.tool_uses)
    outcomes: list[ToolCallOutcome | None] = [None] * len(plan.tool_uses)

    async def one(index: int, block: ToolUseContentBlock) -> None:
        row = stored[block.id]
        if row.status in _DONE:
            outcomes[index] = loop.reused(row)
            return
        refused = loop.refusal(block, row)
        if refused is None and approve is not None and not await _maybe_await(approve, block):
            refused = (f"Error: the call to {block.name} was denied by the user.", "denied")
        if refused is not None:
            message, error = refused
            outcomes[index] = await anyio.to_thread.run_sync(
                lambda: loop.settle(
                    block, content=message, is_error=True, error=error, attempts=row.attempts
                )
            )
            return
        if not await anyio.to_thread.run_sync(loop.claim, block.id, row.status):
            again = await anyio.to_thread.run_sync(loop.record_calls, position, [block])
            outcomes[index] = loop.reused(again[block.id])
            return
        outcomes[index] = await _aexecute(loop, block, row.attempts + 1)

    async with anyio.create_task_group() as group:  # parallel calls run concurrently
        for index, block in enumerate(plan.tool_uses):
            group.start_soon(one, index, block)
    return [outcome for outcome in outcomes if outcome is not None]


async def _aexecute(loop: _Loop, block: ToolUseContentBlock, attempts: int) -> ToolCallOutcome:
    tool = loop.registry[block.name]
    timeout = tool.timeout if tool.timeout is not None else loop.tool_timeout
    content: Any = None
    failed: tuple[str, str] | None = None
    try:
        finished, value = await _acall_within(tool, block.input, timeout)
        if finished:
            content = _content_of(value)
        else:
            failed = (f"Error: {block.name} timed out after {timeout:g} s.", "timed out")
    except Exception as exc:  # a tool's failure is a result for the model, not ours
        failed = loop.failure(block, exc)
    if failed is not None:
        message, error = failed
        return await anyio.to_thread.run_sync(
            lambda: loop.settle(
                block, content=message, is_error=True, error=error, attempts=attempts
            )
        )
    return await anyio.to_thread.run_sync(
        lambda: loop.settle(block, content=content, is_error=False, error=None, attempts=attempts)
    )
