"""Methods written once for the blocking and the async side of the client.

Every rule of the client lives in one method, shared by :class:`~clust.Client` and
:class:`~clust.AsyncClient` (or by ``MessageStream`` and ``AsyncMessageStream``, ...).
The method returns a plan (see :mod:`clust.protocol.plans` and
:mod:`clust.client._io`), or an object the side wraps; a decorator makes it a
:class:`Twin`, which gives each class the form of its side:

>>> class MessagesApi:                                         # doctest: +SKIP
...     @operation
...     def create_a_message(self, body, *, timeout=None) -> Plan[MessagesResponseBody]:
...         ...

On a :class:`Blocking` class ``create_a_message(body)`` runs the plan to its end and
returns its result; on an :class:`Awaiting` class it is a coroutine function with the
same parameters. Type checkers see both forms with their real parameters.
"""

from __future__ import annotations

import inspect
import types
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, TypeVar, overload

from clust.protocol.plans import Plan, arun_plan, run_plan

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = [
    "Awaiting",
    "AwaitingItems",
    "Blocking",
    "BlockingItems",
    "Form",
    "Twin",
    "operation",
    "same",
    "shelled",
    "wrapped_in",
]

P = ParamSpec("P")
T = TypeVar("T")
A = TypeVar("A")
S = TypeVar("S")
AS = TypeVar("AS")
ItemT = TypeVar("ItemT")

Form = Callable[[Callable[..., Any]], Callable[..., Any]]
"""Makes one side's function out of a method written once."""


def same(step: Any) -> Any:
    """The ``execute`` of both plan drivers: a blocking step is done already (its result
    is sent back as it is); an async step is an awaitable, which ``arun_plan`` awaits."""
    return step


def _nothing() -> Plan[None]:
    """A plan that does nothing."""
    return
    yield


class _Side:
    """The hooks of ``with`` blocks, for :class:`Blocking` and :class:`Awaiting`."""

    def _entering(self) -> Plan[None]:
        """What entering a ``with`` block does (nothing unless overridden)."""
        return _nothing()

    def _exiting(self) -> Plan[None]:
        """What leaving the ``with`` block does."""
        raise NotImplementedError


class Blocking(_Side):
    """Base of the blocking classes: their twins run to completion; ``with`` closes them.

    Put it last among the bases, so the hooks of the shared class win.
    """

    def __enter__(self) -> Self:
        run_plan(self._entering(), same)
        return self

    def __exit__(self, *exc_info: object) -> None:
        run_plan(self._exiting(), same)


class Awaiting(_Side):
    """Base of the async classes (asyncio or trio): their twins are awaited; ``async
    with`` closes them. Put it last among the bases."""

    async def __aenter__(self) -> Self:
        await arun_plan(self._entering(), same)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await arun_plan(self._exiting(), same)


class Twin(Generic[P, S, AS]):
    """A method written once, in the form of its owner's side: ``Callable[P, S]`` on a
    :class:`Blocking` class, ``Callable[P, AS]`` on an :class:`Awaiting` one. Read on
    the shared class that defines it, it is that method as written."""

    def __init__(
        self, method: Callable[Concatenate[Any, P], Any], blocking: Form, awaiting: Form
    ) -> None:
        self._method = method
        self._makers = (blocking, awaiting)
        self._forms: dict[type, Callable[..., Any]] = {}
        self._name: str = method.__name__
        self.__doc__ = method.__doc__
        self.__wrapped__ = method

    def __set_name__(self, owner: type, name: str) -> None:
        if self._name.startswith("_") and not name.startswith("_"):
            self._name = name  # `close = operation(_exiting)`: the public name

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> Any: ...
    @overload
    def __get__(self, obj: Blocking, owner: type[Any] | None = None) -> Callable[P, S]: ...
    @overload
    def __get__(self, obj: Awaiting, owner: type[Any] | None = None) -> Callable[P, AS]: ...
    def __get__(self, obj: object, owner: type[Any] | None = None) -> Any:
        cls = type(obj) if owner is None else owner
        form = self._forms.get(cls)
        if form is None:
            if not issubclass(cls, _Side):
                return self
            form = self._forms[cls] = self._form(cls, issubclass(cls, Awaiting))
        return form if obj is None else types.MethodType(form, obj)

    def _form(self, cls: type, awaits: bool) -> Callable[..., Any]:
        method = self._method
        form = self._makers[awaits](method)
        form.__module__ = method.__module__
        form.__name__ = self._name
        form.__qualname__ = f"{cls.__qualname__}.{self._name}"
        form.__doc__ = method.__doc__
        # The method's return annotation (a plan, say) is not what the form returns.
        form.__annotations__ = {k: v for k, v in method.__annotations__.items() if k != "return"}
        form.__signature__ = inspect.signature(method).replace(  # type: ignore[attr-defined]
            return_annotation=inspect.Signature.empty
        )
        return form


def _run_to_end(method: Callable[..., Any]) -> Callable[..., Any]:
    def call(obj: object, /, *args: Any, **kwargs: Any) -> Any:
        return run_plan(method(obj, *args, **kwargs), same)

    return call


def _await_to_end(method: Callable[..., Any]) -> Callable[..., Any]:
    async def call(obj: object, /, *args: Any, **kwargs: Any) -> Any:
        return await arun_plan(method(obj, *args, **kwargs), same)

    return call


def wrapped_in(shell: Callable[[Any], Any]) -> Form:
    """The form that hands what the method returns to ``shell`` (a class, say)."""

    def form(method: Callable[..., Any]) -> Callable[..., Any]:
        def call(obj: object, /, *args: Any, **kwargs: Any) -> Any:
            return shell(method(obj, *args, **kwargs))

        return call

    return form


def operation(
    method: Callable[Concatenate[Any, P], Plan[T]],
) -> Twin[P, T, Coroutine[Any, Any, T]]:
    """Decorate a method that returns a plan: a blocking call that returns the plan's
    result, or a coroutine function, according to the class it is read from."""
    return Twin(method, _run_to_end, _await_to_end)


def shelled(
    blocking: Callable[[A], S], awaiting: Callable[[A], AS]
) -> Callable[[Callable[Concatenate[Any, P], A]], Twin[P, S, AS]]:
    """Decorate a method whose result each side wraps: ``blocking(result)`` on a
    blocking class, ``awaiting(result)`` on an async one (e.g. the two stream classes)."""

    def decorate(method: Callable[Concatenate[Any, P], A]) -> Twin[P, S, AS]:
        return Twin(method, wrapped_in(blocking), wrapped_in(awaiting))

    return decorate


class BlockingItems(Iterator[ItemT]):
    """An iterator whose items a plan reads: ``_fill`` reads until one is pending in
    ``_pending``, and returns False once there are no more."""

    _pending: deque[ItemT]

    def _fill(self) -> Plan[bool]:
        raise NotImplementedError

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> ItemT:
        if not self._pending and not run_plan(self._fill(), same):
            raise StopIteration
        return self._pending.popleft()


class AwaitingItems(AsyncIterator[ItemT]):
    """:class:`BlockingItems` for ``async for``."""

    _pending: deque[ItemT]

    def _fill(self) -> Plan[bool]:
        raise NotImplementedError

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> ItemT:
        if not self._pending and not await arun_plan(self._fill(), same):
            raise StopAsyncIteration
        return self._pending.popleft()
