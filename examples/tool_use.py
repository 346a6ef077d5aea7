"""A tool round trip by hand: ``ToolDefinition``, ``tool_use`` and ``ToolResultContentBlock``.

Claude asks for a tool call (stop reason ``tool_use``); you run the tool and send its
result back in a user turn; Claude answers with it. (``conv.run`` with ``@tool``
functions does this loop for you: see ``tool_loop.py``.)

Run: ``python examples/tool_use.py``. Offline against FakeClaude unless
``ANTHROPIC_API_KEY`` is set.
"""

from __future__ import annotations

import json
from typing import Any

from _offline import MODEL, connect

from clust.messages import (
    Message,
    MessagesRequestBody,
    StopReason,
    ToolDefinition,
    ToolResultContentBlock,
)
from clust.testing import Reply

GET_WEATHER = ToolDefinition.new(
    "get_weather",
    "Current weather for a city.",
    {
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": "City name, e.g. Paris"},
            "unit": {"type": "string", "enum": ["c", "f"]},
        },
        "required": ["city"],
    },
)


def get_weather(city: str, unit: str = "c") -> str:
    """The tool itself (a real one would call a weather service)."""
    return f"14 {unit.upper()} and light rain in {city}"


def run_tool(name: str, arguments: dict[str, Any]) -> tuple[str, bool]:
    """(output, is_error) of one call."""
    if name != "get_weather":
        return f"unknown tool {name}", True
    try:
        return get_weather(**arguments), False
    except TypeError as error:  # bad arguments: tell Claude, it can try again
        return str(error), True


def main() -> None:
    with connect(
        Reply.tool_use("get_weather", {"city": "Paris"}, text="Let me check the weather."),
        Reply.text("It is 14 C with light rain in Paris: take an umbrella."),
    ) as (client, _fake):
        messages = [Message.user("What's the weather in Paris? Should I take an umbrella?")]
        print(f"> {messages[0].text()}")
        while True:
            body = MessagesRequestBody(
                model=MODEL, max_tokens=1024, tools=[GET_WEATHER], messages=messages
            )
            response = client.create_a_message(body)
            if response.text():
                print(f"Claude: {response.text()}  [stop_reason={response.stop_reason}]")
            if response.stop_reason != StopReason.TOOL_USE:
                break
            # The assistant turn goes back verbatim, tool_use blocks included ...
            messages.append(response.to_message())
            # ... followed by one user turn holding a result per call, in order.
            results = []
            for call in response.tool_uses():
                output, is_error = run_tool(call.name, call.input)
                print(f"  tool_use {call.id}: {call.name}({json.dumps(call.input)}) -> {output!r}")
                results.append(ToolResultContentBlock.new(call.id, output, is_error=is_error))
            messages.append(Message.user(results))
        print(f"turns sent in the last request: {len(messages)}")


if __name__ == "__main__":
    main()
