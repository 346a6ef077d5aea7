"""Tools Claude can call: typed Python functions, custom and server tool definitions.

::

    from clust.tools import tool, tool_definitions

    @tool
    def get_weather(city: str, unit: Literal["c", "f"] = "c") -> str:
        \"\"\"Current weather for a city.

        Args:
            city: The city name, e.g. "Paris".
        \"\"\"
        ...

    body = MessagesRequestBody(..., tools=tool_definitions([get_weather, web_search]))

``get_weather.definition`` is its ``ToolDefinition`` (JSON Schema from the signature),
``get_weather.validate(input)`` checks Claude's input, ``call`` / ``acall`` run it, and
``tool_result_content(value)`` turns what it returns into ``tool_result`` content.
"""

from __future__ import annotations

from clust.messages.errors import ToolError, ToolInputError, ToolTimeout, UnknownTool
from clust.messages.tools import ServerToolDefinition, ToolDefinition
from clust.tools.decorator import Tool, tool
from clust.tools.definitions import tool_definitions
from clust.tools.results import tool_result_content

__all__ = [
    "ServerToolDefinition",
    "Tool",
    "ToolDefinition",
    "ToolError",
    "ToolInputError",
    "ToolTimeout",
    "UnknownTool",
    "tool",
    "tool_definitions",
    "tool_result_content",
]
