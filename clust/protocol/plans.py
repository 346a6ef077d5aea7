"""Plans: logic written once as a generator of effects, run by a blocking or an async driver.

A *plan* is a generator that yields the effects it needs done (an HTTP request, a
database step, a sleep, ...) and is sent each effect's result, or thrown the
exception the effect raised; its return value is the plan's result. It does no I/O
itself, in the spirit of h11, so the rules live in one place and the sync and the
async APIs are two small drivers over the same code:

>>> def plan():                                  # doctest: +SKIP
...     reply = yield Request(spec)
...     yield Store(partial(save, reply))
...     return reply

:func:`run_plan` executes each effect with a plain function; :func:`arun_plan` awaits
it. When an effect fails, its exception is thrown into the plan at the ``yield``,
so a plan cleans up with ``try``/``except`` as ordinary code would; effects it
yields while handling a cancellation are run shielded from that cancellation, so
a cancelled task still gives back what it holds.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator
from contextlib import closing
from typing import Any, Generic, TypeVar

import anyio

__all__ = ["DONE", "Plan", "Stepper", "arun_plan", "run_plan"]

T = TypeVar("T")

Plan = Generator[Any, Any, T]
"""A generator of effects that returns ``T``."""

DONE: Any = object()
"""What :meth:`Stepper.next` returns once the plan has returned."""


class Stepper(Generic[T]):
    """Steps a plan for a driver: :meth:`next` gives the next effect (sending the last
    answer, or throwing the last failure, in); :attr:`result` holds what it returned.

    ``shielded``: an async driver sets it once it threw a cancellation in; the effects
    the plan yields after it are cleanup, to run shielded from that cancellation.
    """

    __slots__ = ("_answer", "_failure", "plan", "result", "shielded")

    def __init__(self, plan: Plan[T]) -> None:
        self.plan = plan
        self.result: T | None = None
        self.shielded = False
        self._answer: Any = None
        self._failure: BaseException | None = None

    def next(self) -> Any:
        """The next effect, or :data:`DONE`; raises what the plan raises."""
        failure, self._failure = self._failure, None
        try:
            return self.plan.send(self._answer) if failure is None else self.plan.throw(failure)
        except StopIteration as done:
            self.result = done.value
            return DONE

    def answer(self, value: Any) -> None:
        """The last effect's result."""
        self._answer = value

    def fail(self, failure: BaseException) -> None:
        """The last effect raised ``failure``."""
        self._answer, self._failure = None, failure


def run_plan(plan: Plan[T], execute: Callable[[Any], Any]) -> T:
    """Run ``plan``, doing each effect with ``execute`` (which returns its result or
    raises); return what the plan returns, or raise what it raises."""
    stepper = Stepper(plan)
    with closing(plan):
        while (effect := stepper.next()) is not DONE:
            try:
                stepper.answer(execute(effect))
            except BaseException as exc:  # handed to the plan, which decides
                stepper.fail(exc)
    return stepper.result  # type: ignore[return-value]


async def arun_plan(plan: Plan[T], execute: Callable[[Any], Awaitable[Any]]) -> T:
    """:func:`run_plan` with an async ``execute``. Once the task is cancelled, the
    effects the plan yields to clean up run in a shielded scope."""
    stepper = Stepper(plan)
    cancelled = anyio.get_cancelled_exc_class()
    with closing(plan):
        while (effect := stepper.next()) is not DONE:
            try:
                with anyio.CancelScope(shield=stepper.shielded):
                    stepper.answer(await execute(effect))
            except BaseException as exc:
                stepper.fail(exc)
                stepper.shielded = stepper.shielded or isinstance(exc, cancelled)
    return stepper.result  # type: ignore[return-value]
