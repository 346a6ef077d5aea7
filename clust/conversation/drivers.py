"""The two drivers of the turn engine: blocking and async, for calls and for streams.

A conversation's public methods are written once, as a function that validates its
arguments and returns the engine's plan; :func:`blocking_call` and
:func:`async_call` make the ``send``/``asend`` pair of it, with the same parameters
(mypy sees them) and a check that the right kind of client was given, before
anything is stored or sent.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncGenerator, Callable, Coroutine, Generator
from contextlib import closing
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, Protocol, TypeVar

import anyio

from clust.client import AsyncClient, Client
from clust.conversation.effects import AsyncContext, BlockingContext, OpenStream
from clust.messages.errors import WrongClient
from clust.protocol.plans import DONE, Plan, Stepper, arun_plan, run_plan

if TYPE_CHECKING:
    from clust.conversation.offload import Offload
    from clust.messages.events import StreamEvent

__all__ = [
    "LeftEarly",
    "Offloading",
    "astream_events",
    "async_call",
    "blocking_call",
    "expect_client",
    "stream_events",
]

P = ParamSpec("P")
T = TypeVar("T")


class Offloading(Protocol):
    """An object whose database work an async caller runs through ``offload``."""

    @property
    def offload(self) -> Offload: ...


S = TypeVar("S", bound=Offloading)


def expect_client(client: object, kind: type[Client] | type[AsyncClient], method: str) -> None:
    """Raise :class:`WrongClient` unless ``client`` is a ``kind``."""
    if not isinstance(client, kind):
        raise WrongClient(method, type(client).__name__, kind.__name__)


def blocking_call(
    build: Callable[Concatenate[S, Any, P], Plan[T]],
) -> Callable[Concatenate[S, Client, P], T]:
    """The blocking method of a plan-building function (e.g. ``send`` of ``_send``)."""
    name = build.__name__.lstrip("_")

    @functools.wraps(build)
    def method(self: S, client: Client, /, *args: P.args, **kwargs: P.kwargs) -> T:
        expect_client(client, Client, name)
        return run_plan(build(self, client, *args, **kwargs), BlockingContext(client).execute)

    method.__name__ = method.__qualname__ = name
    return method


def async_call(
    build: Callable[Concatenate[S, Any, P], Plan[T]],
) -> Callable[Concatenate[S, AsyncClient, P], Coroutine[Any, Any, T]]:
    """The awaitable method of a plan-building function (e.g. ``asend`` of ``_send``):
    database work runs in worker threads, so the event loop never waits on it."""
    name = "a" + build.__name__.lstrip("_")

    @functools.wraps(build)
    async def method(self: S, client: AsyncClient, /, *args: P.args, **kwargs: P.kwargs) -> T:
        expect_client(client, AsyncClient, name)
        plan = build(self, client, *args, **kwargs)
        return await arun_plan(plan, AsyncContext(client, self.offload).execute)

    method.__name__ = method.__qualname__ = name
    method.__doc__ = f"The awaitable form of ``{name[1:]}``, for an ``AsyncClient``.\n\n" + (
        build.__doc__ or ""
    )
    return method


class LeftEarly(BaseException):
    """Thrown into a streamed turn's plan when its caller stopped iterating (closed
    the stream): a generator's own ``GeneratorExit`` would close the plan instead of
    letting it give the turn back."""


def stream_events(stepper: Stepper[Any], client: Client) -> Generator[StreamEvent, None, None]:
    """Run a streamed turn's plan, passing the stream's events to the caller; the
    plan's result is left in ``stepper.result``. Leaving early (closing this
    generator) is thrown into the plan, which gives the turn back."""
    context = BlockingContext(client)
    with closing(stepper.plan):
        try:
            while (effect := stepper.next()) is not DONE:
                try:
                    if isinstance(effect, OpenStream):
                        with effect.open(client) as stream:
                            yield from stream
                            stepper.answer(stream.get_final_message())
                    else:
                        stepper.answer(context.execute(effect))
                except GeneratorExit:
                    stepper.fail(LeftEarly())
                except BaseException as exc:
                    stepper.fail(exc)
        except LeftEarly:
            raise GeneratorExit from None


async def astream_events(
    stepper: Stepper[Any], client: AsyncClient, offload: Offload
) -> AsyncGenerator[StreamEvent, None]:
    """:func:`stream_events` for an async client. Once cancelled or closed, the plan's
    cleanup effects run shielded."""
    context = AsyncContext(client, offload)
    cancelled = anyio.get_cancelled_exc_class()
    with closing(stepper.plan):
        try:
            while (effect := stepper.next()) is not DONE:
                try:
                    if isinstance(effect, OpenStream):
                        async with effect.aopen(client) as stream:
                            async for event in stream:
                                yield event
                            stepper.answer(await stream.get_final_message())
                    else:
                        with anyio.CancelScope(shield=stepper.shielded):
                            stepper.answer(await context.execute(effect))
                except GeneratorExit:
                    stepper.fail(LeftEarly())
                    stepper.shielded = True
                except BaseException as exc:
                    stepper.fail(exc)
                    stepper.shielded = stepper.shielded or isinstance(exc, cancelled)
        except LeftEarly:
            raise GeneratorExit from None
