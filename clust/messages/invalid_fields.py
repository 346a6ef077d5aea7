"""A pydantic ``ValidationError`` from building a model by keyword, as clust's
:class:`~clust.messages.errors.InvalidFields`: one line naming the field and what
was expected (an unknown field with the nearest known name), the pydantic error as
its ``__cause__``."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from clust.messages.errors import InvalidFields

__all__ = ["InvalidModelFields", "invalid_fields"]

_SHOWN = 60  # characters of a given value quoted in a message


class InvalidModelFields(InvalidFields, ValidationError):
    """What keyword construction raises: an :class:`InvalidFields` (so an
    ``InvalidParameter``, a ``ValueError`` and a ``MessagesError``) that is also the
    pydantic ``ValidationError`` it replaces (``errors()``, ``error_count()``), so
    code written against pydantic keeps working. Pickles as a plain
    :class:`InvalidFields`."""

    def __init__(self, *args: Any) -> None:
        """Called by pydantic-core with its own arguments; :func:`invalid_fields`
        sets the rest."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ValidationError.__str__(self)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


def _path(loc: Sequence[int | str]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else part
    return path


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


def _unknown(model: type[BaseModel], loc: Sequence[int | str]) -> str:
    known = f"a field of {model.__name__}" if len(loc) == 1 else "a known field"
    if len(loc) == 1 and isinstance(loc[0], str):
        names = list(model.model_fields)
        names += [f.alias for f in model.model_fields.values() if f.alias]
        near = difflib.get_close_matches(loc[0], names, n=1)
        if near:
            return f"{known} (did you mean {near[0]!r}?)"
    return known


def _allowed(model: type[BaseModel], detail: ErrorDetails) -> str:
    kind = detail["type"]
    if kind == "missing":
        return "a value (the field is required)"
    if kind == "extra_forbidden":
        return _unknown(model, detail["loc"])
    return detail["msg"]


def _problem(model: type[BaseModel], detail: ErrorDetails) -> str:
    path = _path(detail["loc"])
    where = f"{model.__name__}.{path}" if path else model.__name__
    allowed = _allowed(model, detail)
    if detail["type"] == "missing":
        return f"{where}: required, not given"
    if detail["type"] == "extra_forbidden":
        return f"{where}: unknown field, allowed {allowed}"
    return f"{where}={_shown(detail.get('input'))}: {allowed}"


def invalid_fields(model: type[BaseModel], error: ValidationError) -> InvalidFields:
    """``error`` (raised building ``model``) as an :class:`InvalidModelFields`, or a
    plain :class:`InvalidFields` for errors pydantic-core cannot rebuild."""
    details = error.errors(include_url=False)
    if not details:  # pragma: no cover - pydantic never raises an empty error
        return InvalidFields(model.__name__, None, "a valid value")
    first = details[0]
    arguments = (
        _path(first["loc"]) or model.__name__,
        None if first["type"] == "missing" else first.get("input"),
        _allowed(model, first),
        tuple(_problem(model, detail) for detail in details),
    )
    try:
        made = InvalidModelFields.from_exception_data(
            error.title,
            error.errors(),  # type: ignore[arg-type]  # what pickling a ValidationError uses
            "python",
        )
    except Exception:  # a custom error type it cannot rebuild: not a ValidationError then
        return InvalidFields(*arguments)
    InvalidFields.__init__(made, *arguments)
    return made
