"""The ``tools`` list of a request, from decorated tools and definitions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import TypeAdapter, ValidationError

from clust.messages.errors import InvalidParameter
from clust.messages.tools import ServerToolDefinition, ToolDefinition, ToolUnion
from clust.tools.decorator import Tool

__all__ = ["tool_definitions"]

_TOOL_UNION: TypeAdapter[ToolDefinition | ServerToolDefinition] = TypeAdapter(ToolUnion)


def tool_definitions(
    tools: Iterable[Tool[Any, Any] | ToolDefinition | ServerToolDefinition | Mapping[str, Any]],
) -> list[ToolDefinition | ServerToolDefinition]:
    """The request's ``tools``: custom tools, server tools and decorated tools side by side.

    A :class:`Tool` gives its ``definition``; definitions go through as they are; a
    mapping (raw wire JSON) is parsed into a definition that dumps back exactly its keys.

    Raises:
        InvalidParameter: two tools share a name, or a mapping is not a tool definition.
    """
    definitions: list[ToolDefinition | ServerToolDefinition] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(tools):
        definition = _definition(index, item)
        name = definition.name
        if name is not None:
            if name in seen:
                raise InvalidParameter(
                    f"tools.{index}.name",
                    name,
                    f"a name no other tool has ({name!r} is also the name of tools.{seen[name]})",
                )
            seen[name] = index
        definitions.append(definition)
    return definitions


def _definition(index: int, item: object) -> ToolDefinition | ServerToolDefinition:
    if isinstance(item, Tool):
        return item.definition
    if isinstance(item, (ToolDefinition, ServerToolDefinition)):
        return item
    if isinstance(item, Mapping):
        try:
            return _TOOL_UNION.validate_python(dict(item))
        except ValidationError as error:
            problem = error.errors(include_url=False)[0]
            where = ".".join(str(part) for part in problem["loc"][1:])
            raise InvalidParameter(
                f"tools.{index}{'.' + where if where else ''}", item, problem["msg"]
            ) from error
    raise InvalidParameter(
        f"tools.{index}", item, "a Tool, ToolDefinition, ServerToolDefinition or mapping"
    )
