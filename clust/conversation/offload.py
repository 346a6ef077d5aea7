"""Blocking database work for async callers: worker threads, as many as a setting says.

The store's queries are synchronous (SQLAlchemy Core over psycopg or sqlite3). An
async caller runs them through an :class:`Offload`, which hands each call to an
anyio worker thread under a :class:`~anyio.CapacityLimiter` of its own, so how many
run at once is the ``threads`` setting of the :class:`~clust.Store`, not anyio's
process-wide default limiter (40 threads, shared with everything else that uses
``anyio.to_thread``).

:func:`awaitable` turns a sync method into its awaitable form, with the same
parameters, run through the object's ``offload``::

    class Store:
        def get_conversation(self, conversation_id: str) -> Conversation: ...
        aget_conversation = awaitable(get_conversation)
"""

from __future__ import annotations

import functools
import inspect
import weakref
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, Protocol, TypeVar

import anyio
import anyio.lowlevel
import anyio.to_thread

from clust.messages.errors import InvalidParameter

if TYPE_CHECKING:
    from typing_extensions import TypeVarTuple, Unpack

    Ts = TypeVarTuple("Ts")

__all__ = ["DEFAULT_THREADS", "Offload", "awaitable"]

DEFAULT_THREADS = 16
"""Worker threads per store and event loop unless ``threads=`` says otherwise.

A database step takes about a millisecond, so a few threads keep up with hundreds of
conversations; more threads than cores mostly contend for the GIL with the event
loop. Measured with 500 conversations advanced at once on 2 cores: 8 threads gave
more turns per second and half the longest event-loop stall of 64. Each thread may
hold one pooled connection, and the pool is sized to match."""

P = ParamSpec("P")
R = TypeVar("R")

# One map per running event loop (a RunVar is scoped to its loop): Offload -> its
# limiter there. Weak keys, so a dropped Offload does not linger in a long-lived loop.
_LIMITERS: anyio.lowlevel.RunVar[weakref.WeakKeyDictionary[Offload, anyio.CapacityLimiter]] = (
    anyio.lowlevel.RunVar("clust_offload_limiters")
)


class Offload:
    """Runs blocking calls in worker threads, at most ``threads`` at once per event loop.

    anyio limiters belong to the event loop that made them, so each event loop (asyncio
    or trio, in whichever thread it runs) gets its own, made on first use.
    """

    def __init__(self, threads: int = DEFAULT_THREADS) -> None:
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise InvalidParameter("threads", threads, "a number of threads >= 1")
        self._threads = threads

    def __repr__(self) -> str:
        return f"Offload(threads={self._threads})"

    @property
    def threads(self) -> int:
        """How many calls may run at once in each event loop."""
        return self._threads

    def limiter(self) -> anyio.CapacityLimiter:
        """This offload's limiter in the running event loop (made on first use)."""
        limiters = _LIMITERS.get(None)
        if limiters is None:
            limiters = weakref.WeakKeyDictionary()
            _LIMITERS.set(limiters)
        limiter = limiters.get(self)
        if limiter is None:
            limiter = limiters[self] = anyio.CapacityLimiter(self._threads)
        return limiter

    async def run(self, fn: Callable[[Unpack[Ts]], R], *args: Unpack[Ts]) -> R:
        """``fn(*args)`` in a worker thread; its result, or what it raised.

        Once started, the call runs to its end even if the awaiting task is cancelled
        (a database write is never cut in half); the cancellation is raised after.
        """
        return await anyio.to_thread.run_sync(fn, *args, limiter=self.limiter())


class _Offloaded(Protocol):
    @property
    def offload(self) -> Offload: ...


S = TypeVar("S", bound=_Offloaded)


def awaitable(
    method: Callable[Concatenate[S, P], R],
) -> Callable[Concatenate[S, P], Coroutine[Any, Any, R]]:
    """The awaitable form of a sync ``method``: the same parameters, run in a worker
    thread of the object's ``offload``. Use it in the class body::

        aget_conversation = awaitable(get_conversation)
    """
    name = f"a{method.__name__}"

    @functools.wraps(method)
    async def run(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return await self.offload.run(functools.partial(method, self, *args, **kwargs))

    run.__name__ = name
    run.__qualname__ = f"{method.__qualname__.rpartition('.')[0]}.{name}".lstrip(".")
    summary = (
        f"Awaitable form of :meth:`{method.__name__}`: the same call, run in a worker "
        "thread of ``self.offload`` (see :class:`~clust.conversation.offload.Offload`)."
    )
    original = inspect.getdoc(method)
    run.__doc__ = f"{summary}\n\n{original}" if original else summary
    return run
