"""``@tool``: a typed Python function as a tool Claude can call."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any, Generic, ParamSpec, TypeVar, overload

import anyio.to_thread
from pydantic import BaseModel, ValidationError

from clust.messages.cache import CacheControl
from clust.messages.errors import InvalidParameter, ToolInputError
from clust.messages.tools import ToolDefinition
from clust.tools.signature import describe_problems, input_model

__all__ = ["Tool", "tool"]

P = ParamSpec("P")
R = TypeVar("R")


class Tool(Generic[P, R]):
    """A Python function Claude can call, with its definition and input validation.

    Made by :func:`tool`. Calling the object calls the function unchanged;
    :meth:`call` / :meth:`acall` take Claude's ``tool_use`` input instead and
    validate it first.

    Attributes:
        name: the tool name sent to the API (the function's name by default).
        description: what the tool does (the docstring's description by default).
        idempotent: running it twice for one call is harmless, so a tool loop may
            re-run a call that was interrupted by a crash.
        timeout: seconds a tool loop lets one call run (``None``: no limit). Not
            applied by :meth:`call` / :meth:`acall`.
        is_async: the function is an ``async def``.
        function: the decorated function.
        input_model: the pydantic model validating the input.
        definition: the ``ToolDefinition`` for the request's ``tools``.
    """

    __name__: str
    __qualname__: str
    __wrapped__: Callable[P, R]
    name: str
    description: str | None
    idempotent: bool
    timeout: float | None
    is_async: bool
    function: Callable[P, R]
    input_model: type[BaseModel]
    definition: ToolDefinition

    def __init__(
        self,
        function: Callable[P, R],
        *,
        name: str | None = None,
        description: str | None = None,
        idempotent: bool = False,
        timeout: float | None = None,
        cache_control: CacheControl | None = None,
        localns: Mapping[str, Any] | None = None,
    ) -> None:
        """Wrap ``function``; ``localns`` helps resolve string annotations of local types.

        Raises:
            TypeError: a parameter is ``*args``, ``**kwargs``, positional-only, not
                annotated, or of a type pydantic cannot validate.
            InvalidParameter: the name or timeout is not valid.
        """
        built = input_model(function, localns)
        functools.update_wrapper(self, function)
        if timeout is not None and (isinstance(timeout, bool) or not timeout > 0):
            raise InvalidParameter("timeout", timeout, "a positive number of seconds or None")
        self.function = function
        self.name = function.__name__ if name is None else name
        self.description = built.description if description is None else description
        self.idempotent = bool(idempotent)
        self.timeout = None if timeout is None else float(timeout)
        self.is_async = inspect.iscoroutinefunction(function)
        self.input_model = built.model
        self.definition = ToolDefinition.new(
            self.name, self.description, built.schema, cache_control=cache_control
        )
        self._parameters = built.parameters
        self._run: Callable[..., Any] = function  # called with validated keywords

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Call the function itself, unvalidated."""
        return self.function(*args, **kwargs)

    def __repr__(self) -> str:
        kind = "async " if self.is_async else ""
        return f"<{kind}Tool {self.name!r}>"

    def validate(self, input: Mapping[str, Any]) -> dict[str, Any]:
        """Claude's input checked against the signature: the keyword arguments to call with.

        Values are converted as pydantic's lax mode does (``"3"`` for an ``int`` is 3,
        nested models are built); every parameter is present, defaults filled in.

        Raises:
            ToolInputError: a field is missing, unknown or invalid; the message names
                each field and what is wrong with it.
        """
        if not isinstance(input, Mapping):
            raise ToolInputError(self.name, ["input: Input should be a JSON object"])
        try:
            parsed = self.input_model.model_validate(dict(input))
        except ValidationError as error:
            raise ToolInputError(self.name, describe_problems(error)) from error
        return {param: getattr(parsed, field) for field, param in self._parameters.items()}

    def call(self, input: Mapping[str, Any]) -> Any:
        """Validate ``input`` and call the (sync) function with it.

        Raises:
            TypeError: the tool is async (use :meth:`acall`).
            ToolInputError: the input does not match the signature.
        """
        if self.is_async:
            raise TypeError(f"tool {self.name!r} is async: use `await tool.acall(input)`")
        return self._run(**self.validate(input))

    async def acall(self, input: Mapping[str, Any]) -> Any:
        """Validate ``input`` and run the function: awaited if async, else in a worker thread.

        A sync function runs through ``anyio.to_thread.run_sync`` so it never blocks the
        event loop. If the caller is cancelled (a timeout), it stops waiting at once; the
        thread runs to its end in the background and its result is dropped.

        Raises:
            ToolInputError: the input does not match the signature.
        """
        arguments = self.validate(input)
        if self.is_async:
            return await self._run(**arguments)
        run = functools.partial(self._run, **arguments)
        return await anyio.to_thread.run_sync(run, abandon_on_cancel=True)


@overload
def tool(function: Callable[P, R], /) -> Tool[P, R]: ...


@overload
def tool(
    *,
    name: str | None = None,
    description: str | None = None,
    idempotent: bool = False,
    timeout: float | None = None,
    cache_control: CacheControl | None = None,
) -> Callable[[Callable[P, R]], Tool[P, R]]: ...


def tool(
    function: Callable[P, R] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    idempotent: bool = False,
    timeout: float | None = None,
    cache_control: CacheControl | None = None,
) -> Tool[P, R] | Callable[[Callable[P, R]], Tool[P, R]]:
    """Turn a typed function (``def`` or ``async def``) into a :class:`Tool`.

    Use bare (``@tool``) or with options (``@tool(name=..., idempotent=True)``). The
    input schema comes from the signature through pydantic (defaults make parameters
    optional; enums, ``Literal``, nested models, lists, ``Optional`` and
    ``Annotated[..., Field(...)]`` constraints and descriptions all carry over). The
    description defaults to the docstring's prose before its first section, and
    parameter descriptions may come from its ``Args:`` / ``Parameters`` section.

    Args:
        name: the tool name (default: the function's name).
        description: what the tool does (default: from the docstring).
        idempotent: re-running an interrupted call is safe.
        timeout: seconds a tool loop lets one call run.
        cache_control: a prompt-cache breakpoint on the tool's definition.
    """
    options: dict[str, Any] = {
        "name": name,
        "description": description,
        "idempotent": idempotent,
        "timeout": timeout,
        "cache_control": cache_control,
    }
    if function is not None:
        return Tool(function, localns=_caller_locals(), **options)

    def decorate(function: Callable[P, R]) -> Tool[P, R]:
        return Tool(function, localns=_caller_locals(), **options)

    return decorate


def _caller_locals() -> dict[str, Any]:
    """The locals of the scope applying the decorator (for local types in annotations)."""
    # This function's frame, then tool()/decorate(), then the code using the decorator.
    frame = inspect.currentframe()
    for _ in range(2):
        frame = frame.f_back if frame is not None else None
    return dict(frame.f_locals) if frame is not None else {}
