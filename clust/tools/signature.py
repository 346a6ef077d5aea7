"""A function's signature as a pydantic model: its tool input schema and validator.

Every parameter becomes a field of a generated model (``extra="forbid"``). The
field's alias is the parameter's name, and the field itself has a neutral name
(``p0``, ``p1``, ...), so parameters may be called anything (``model_name``,
``schema``, ``_hidden``) without clashing with ``BaseModel`` attributes. A
``Field(alias=...)`` in the annotation still wins, to show the model another name.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, create_model
from pydantic.fields import FieldInfo
from pydantic.json_schema import GenerateJsonSchema

from clust.tools.docstrings import parse_docstring

__all__ = ["InputModel", "describe_problems", "input_model"]

_ANNOTATED: Any = Annotated  # subscripted with runtime values below


class _CompactJsonSchema(GenerateJsonSchema):
    """Pydantic's schema without the per-field ``title`` (the property name says it)."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


@dataclass(frozen=True)
class InputModel:
    """The pydantic model of a function's parameters and what it derives."""

    model: type[BaseModel]
    parameters: dict[str, str]
    """Field name -> parameter name, in signature order."""
    description: str | None
    """The docstring's description (prose before its first section)."""
    schema: dict[str, Any]
    """The tool's ``input_schema``."""


def input_model(function: Callable[..., Any], localns: Mapping[str, Any] | None) -> InputModel:
    """Build the input model of ``function``; ``TypeError`` names a parameter it cannot take.

    ``localns`` resolves string annotations naming local types (the decorator passes the
    defining scope's locals).
    """
    label = getattr(function, "__qualname__", repr(function))
    if not inspect.isfunction(function):
        raise TypeError(f"@tool needs a plain function (def or async def), got {function!r}")
    docs = parse_docstring(inspect.getdoc(function))
    fields: dict[str, Any] = {}
    parameters: dict[str, str] = {}
    for index, param in enumerate(inspect.signature(function).parameters.values()):
        _check_parameter(label, index, param)
        annotation = _resolve(function, label, param, localns)
        field_name = f"p{index}"
        parameters[field_name] = param.name
        metadata: list[Any] = [Field(alias=param.name)]
        doc = docs.params.get(param.name)
        if doc and not _has_description(annotation, param.default):
            metadata.append(Field(description=doc))
        base, extra = _split_annotated(annotation)
        typed = _ANNOTATED[tuple([base, *metadata, *extra])]
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[field_name] = (typed, default)
    try:
        model = create_model(function.__name__, __config__=ConfigDict(extra="forbid"), **fields)
        schema = model.model_json_schema(schema_generator=_CompactJsonSchema)
    except Exception as error:
        raise _explain(label, function, parameters, localns, error) from error
    return InputModel(model, parameters, docs.description, _tidy(schema))


def describe_problems(error: ValidationError) -> list[str]:
    """One ``"<field path>: <message>"`` line per validation error."""
    problems = []
    for detail in error.errors(include_url=False):
        where = ".".join(str(part) for part in detail["loc"]) or "input"
        problems.append(f"{where}: {detail['msg']}")
    return problems


def _check_parameter(label: str, index: int, param: inspect.Parameter) -> None:
    kind = param.kind
    if kind is inspect.Parameter.VAR_POSITIONAL:
        raise TypeError(
            f"{label}: parameter '*{param.name}' is not supported: tools take named parameters"
        )
    if kind is inspect.Parameter.VAR_KEYWORD:
        raise TypeError(
            f"{label}: parameter '**{param.name}' is not supported: tools take named parameters"
        )
    if kind is inspect.Parameter.POSITIONAL_ONLY:
        raise TypeError(
            f"{label}: parameter {param.name!r} is positional-only: tools are called with keywords"
        )
    if index == 0 and param.name in ("self", "cls"):
        raise TypeError(
            f"{label}: parameter {param.name!r}: @tool takes a plain function, not a method"
        )
    if param.annotation is inspect.Parameter.empty:
        raise TypeError(f"{label}: parameter {param.name!r} has no type annotation")


class _Annotations:
    """An object ``typing.get_type_hints`` reads one parameter's annotation from."""

    def __init__(self, name: str, annotation: Any) -> None:
        self.__annotations__ = {name: annotation}


def _resolve(
    function: Callable[..., Any],
    label: str,
    param: inspect.Parameter,
    localns: Mapping[str, Any] | None,
) -> Any:
    """The parameter's annotation, evaluated when it is a string (postponed annotations)."""
    annotation = param.annotation
    if not isinstance(annotation, str):
        return annotation
    try:
        hints = typing.get_type_hints(
            _Annotations(param.name, annotation),
            globalns=getattr(function, "__globals__", {}),
            localns=dict(localns) if localns is not None else None,
            include_extras=True,
        )
    except Exception as error:
        raise TypeError(
            f"{label}: cannot resolve the annotation {annotation!r} of parameter "
            f"{param.name!r}: {error}"
        ) from error
    return hints[param.name]


def _split_annotated(annotation: Any) -> tuple[Any, tuple[Any, ...]]:
    if typing.get_origin(annotation) is Annotated:
        return annotation.__origin__, tuple(annotation.__metadata__)
    return annotation, ()


def _has_description(annotation: Any, default: Any) -> bool:
    _, extra = _split_annotated(annotation)
    infos = [item for item in extra if isinstance(item, FieldInfo)]
    if isinstance(default, FieldInfo):
        infos.append(default)
    return any(info.description for info in infos)


def _explain(
    label: str,
    function: Callable[..., Any],
    parameters: dict[str, str],
    localns: Mapping[str, Any] | None,
    error: Exception,
) -> TypeError:
    """A ``TypeError`` naming the parameter pydantic could not turn into a schema."""
    signature = inspect.signature(function)
    for name in parameters.values():
        param = signature.parameters[name]
        try:
            TypeAdapter(_resolve(function, label, param, localns)).json_schema()
        except Exception as cause:
            return TypeError(f"{label}: parameter {name!r} cannot be a tool input: {_first(cause)}")
    return TypeError(f"{label}: cannot build the tool input schema: {_first(error)}")


def _first(error: Exception) -> str:
    """The first line of pydantic's message (the rest is a documentation link)."""
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


_ORDER = ("type", "properties", "required", "additionalProperties", "$defs")


def _tidy(schema: dict[str, Any]) -> dict[str, Any]:
    """The top-level schema in a fixed key order, without the generated model's title."""
    schema.pop("title", None)
    schema.setdefault("properties", {})
    tidy = {key: schema.pop(key) for key in _ORDER if key in schema}
    tidy.update(schema)
    return tidy
