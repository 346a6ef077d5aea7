"""The effects a conversation's turn engine asks for, and how each is carried out.

The engine (:mod:`clust.conversation.engine`) is a set of plans
(:mod:`clust.protocol.plans`): generators that yield these effects and are sent their
results. Each effect knows how to run itself twice, once blocking (``run``, given a
:class:`BlockingContext`) and once awaited (``arun``, given an :class:`AsyncContext`),
in a few lines each; every decision stays in the engine.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Future
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import anyio
import anyio.lowlevel

from clust.messages.errors import DatabaseUnavailable
from clust.protocol.plans import Plan, arun_plan, run_plan

if TYPE_CHECKING:
    from clust.client import AsyncClient, Client
    from clust.client.streaming import AsyncMessageStream, MessageStream
    from clust.conversation.offload import Offload
    from clust.messages.response import MessagesResponseBody
    from clust.messages.tokens import TokenCount
    from clust.protocol.request import RequestSpec
    from clust.tools import Tool

__all__ = [
    "AsyncContext",
    "BlockingContext",
    "CallOptions",
    "CallTool",
    "Count",
    "Create",
    "Db",
    "Hook",
    "OpenStream",
    "Parallel",
    "Sleep",
    "StreamProgress",
]

T = TypeVar("T")


@dataclass(frozen=True)
class CallOptions:
    """Per-call HTTP options passed through to the client."""

    betas: Sequence[str] | None = None
    extra_headers: dict[str, str] | None = None
    timeout: Any = None
    max_retries: int | None = None

    def http(self) -> dict[str, Any]:
        """The keywords the client's ``*_from_spec`` methods take."""
        return {"timeout": self.timeout, "max_retries": self.max_retries}


@dataclass
class BlockingContext:
    """What the blocking driver runs effects with."""

    client: Client

    def execute(self, effect: Any) -> Any:
        return effect.run(self)


@dataclass
class AsyncContext:
    """What the async driver runs effects with: database work goes through ``offload``
    (worker threads under the store's limit)."""

    client: AsyncClient
    offload: Offload

    async def execute(self, effect: Any) -> Any:
        return await effect.arun(self)


class _Handoff(Generic[T]):
    """A result made in a worker thread for an awaiting caller who may be gone
    (cancelled) by the time it is made: exactly one side then undoes it."""

    __slots__ = ("_abandoned", "_lock", "_result")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._result: list[T] = []
        self._abandoned = False

    def deliver(self, result: T) -> bool:
        """From the thread: hand ``result`` over; ``False`` if the caller is gone."""
        with self._lock:
            if self._abandoned:
                return False
            self._result.append(result)
            return True

    def abandon(self) -> list[T]:
        """From the cancelled caller: the result already delivered (to undo), if any."""
        with self._lock:
            self._abandoned = True
            return self._result


@dataclass(frozen=True)
class Db:
    """Blocking database work. ``undo`` gives back what ``call`` made when the caller
    that awaited it was cancelled meanwhile (e.g. a lease taken for nobody).

    When the database cannot be reached (:class:`~clust.messages.DatabaseUnavailable`)
    the step is tried again, with growing pauses, for the store's
    ``reconnect_seconds``: at once when nothing had reached the database (connecting
    failed), and after a connection lost with a write in flight only if ``applied``
    is given: it is asked first (once the database answers) whether that write was
    applied; ``True`` ends the step (its result is then ``None``). A step with
    ``applied`` (a billed reply) also goes on with its tries when its caller is
    cancelled.
    """

    call: Callable[[], Any]
    undo: Callable[[Any], None] | None = None
    applied: Callable[[], bool] | None = None

    def run(self, context: BlockingContext) -> Any:
        tries = _Tries(self)
        while True:
            try:
                return tries.once()
            except DatabaseUnavailable as lost:
                pause = tries.pause(lost)
            time.sleep(pause)

    async def arun(self, context: AsyncContext) -> Any:
        if self.applied is None:
            return await self._arun(context)
        with anyio.CancelScope(shield=True):
            result = await self._arun(context)
        await anyio.lowlevel.checkpoint_if_cancelled()  # as an unshielded step would
        return result

    async def _arun(self, context: AsyncContext) -> Any:
        tries = _Tries(self)
        while True:
            try:
                return await self._arun_once(context, tries)
            except DatabaseUnavailable as lost:
                pause = tries.pause(lost)
            await anyio.sleep(pause)

    async def _arun_once(self, context: AsyncContext, tries: _Tries) -> Any:
        if self.undo is None:
            return await context.offload.run(tries.once)
        undo, handoff = self.undo, _Handoff[Any]()

        def call() -> Any:
            result = tries.once()
            if not handoff.deliver(result):
                undo(result)  # the caller is gone: nobody else will
            return result

        try:
            return await context.offload.run(call)
        except BaseException:
            for made in handoff.abandon():
                with anyio.CancelScope(shield=True):
                    await context.offload.run(undo, made)
            raise


class _Tries:
    """The tries of one :class:`Db` step over a database that went away."""

    __slots__ = ("_deadline", "_delay", "_in_doubt", "_step")

    def __init__(self, step: Db) -> None:
        self._step = step
        self._deadline: float | None = None
        self._delay = 0.05
        self._in_doubt = False

    def once(self) -> Any:
        """One try: ask whether a write left in doubt was applied, else call."""
        if self._in_doubt:
            assert self._step.applied is not None
            if self._step.applied():  # a failure here leaves it in doubt
                return None
            self._in_doubt = False
        return self._step.call()

    def pause(self, lost: DatabaseUnavailable) -> float:
        """Seconds to wait before the next try; raises ``lost`` when there is none."""
        now = time.monotonic()
        if self._deadline is None:
            self._deadline = now + lost.reconnect_seconds
        self._in_doubt = self._in_doubt or lost.in_doubt
        if (self._in_doubt and self._step.applied is None) or now >= self._deadline:
            raise lost
        pause, self._delay = min(self._delay, self._deadline - now), min(self._delay * 2, 1.0)
        return pause


@dataclass(frozen=True)
class Create:
    """Send a message request; the answer is the reply."""

    spec: RequestSpec
    options: CallOptions

    def run(self, context: BlockingContext) -> MessagesResponseBody:
        return context.client.create_from_spec(self.spec, **self.options.http())

    async def arun(self, context: AsyncContext) -> MessagesResponseBody:
        return await context.client.create_from_spec(self.spec, **self.options.http())


@dataclass(frozen=True)
class Count:
    """Count a request's input tokens; the answer is the :class:`TokenCount`."""

    spec: RequestSpec
    options: CallOptions

    def run(self, context: BlockingContext) -> TokenCount:
        return context.client.count_tokens_from_spec(self.spec, **self.options.http())

    async def arun(self, context: AsyncContext) -> TokenCount:
        return await context.client.count_tokens_from_spec(self.spec, **self.options.http())


@dataclass
class StreamProgress:
    """The client stream of a streamed turn, once open (what arrived so far, and the
    billed attempts the client reopened)."""

    stream: MessageStream | AsyncMessageStream | None = None

    def billed(self) -> MessagesResponseBody | None:
        """The partial message of the open attempt (``None`` before ``message_start``)."""
        return None if self.stream is None else self.stream.current_message

    def discarded(self) -> list[MessagesResponseBody]:
        """The partial messages of attempts the client abandoned and reopened."""
        return [] if self.stream is None else list(self.stream.discarded_attempts)


@dataclass(frozen=True)
class OpenStream:
    """Stream a message request: the stream driver passes its events to the caller and
    answers the final message (only the stream drivers run it)."""

    spec: RequestSpec
    options: CallOptions
    progress: StreamProgress = field(default_factory=StreamProgress)

    def open(self, client: Client) -> MessageStream:
        stream = self.progress.stream = client.stream_from_spec(self.spec, **self.options.http())
        return stream

    def aopen(self, client: AsyncClient) -> AsyncMessageStream:
        stream = self.progress.stream = client.stream_from_spec(self.spec, **self.options.http())
        return stream


@dataclass(frozen=True)
class Sleep:
    """Wait (polling a busy conversation)."""

    seconds: float

    def run(self, context: BlockingContext) -> None:
        threading.Event().wait(self.seconds)

    async def arun(self, context: AsyncContext) -> None:
        await anyio.sleep(self.seconds)


@dataclass(frozen=True)
class Hook:
    """Call the caller's function (``approve``, ``on_step``); an async driver awaits
    what it returns if that is awaitable."""

    function: Callable[[Any], Any]
    argument: Any

    def run(self, context: BlockingContext) -> Any:
        return self.function(self.argument)

    async def arun(self, context: AsyncContext) -> Any:
        value = self.function(self.argument)
        return await value if isinstance(value, Awaitable) else value


@dataclass(frozen=True)
class Parallel:
    """Run several plans; the answer is their results, in order. The blocking driver
    runs them one after another, the async one concurrently."""

    plans: Sequence[Plan[Any]]

    def run(self, context: BlockingContext) -> list[Any]:
        return [run_plan(plan, context.execute) for plan in self.plans]

    async def arun(self, context: AsyncContext) -> list[Any]:
        results: list[Any] = [None] * len(self.plans)

        async def one(index: int) -> None:
            results[index] = await arun_plan(self.plans[index], context.execute)

        async with anyio.create_task_group() as group:
            for index in range(len(self.plans)):
                group.start_soon(one, index)
        return results


@dataclass(frozen=True)
class CallTool:
    """Call a tool the model asked for, under ``timeout`` seconds; the answer is
    ``(finished, value)``: ``(False, None)`` when it timed out. The tool's own
    exception is raised into the plan."""

    tool: Tool[Any, Any]
    input: Any
    timeout: float | None

    def run(self, context: BlockingContext) -> tuple[bool, Any]:
        tool, timeout = self.tool, self.timeout
        if tool.is_async:  # an event loop of its own, where a timeout cancels it
            return anyio.run(_acall_within, tool, self.input, timeout)
        if timeout is None:
            return True, tool.call(self.input)
        return _call_within(tool, self.input, timeout)

    async def arun(self, context: AsyncContext) -> tuple[bool, Any]:
        return await _acall_within(self.tool, self.input, self.timeout)


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
    done, _ = wait_futures([future], timeout)
    return (True, future.result()) if done else (False, None)


async def _acall_within(
    tool: Tool[Any, Any], input: Any, timeout: float | None
) -> tuple[bool, Any]:
    """Await a tool under ``timeout``: ``(False, None)`` if it was cancelled for it."""
    with anyio.move_on_after(timeout):
        return True, await tool.acall(input)
    return False, None
