"""A multi-turn chat with a tool call, offline, against the bundled FakeClaude server.

Run: ``python examples/quickstart.py``. No API key and no network: FakeClaude is a
real HTTP server on 127.0.0.1 that speaks the Messages API. Point the same code at
the real API by using ``Client.from_env()`` instead.
"""

from __future__ import annotations

import json

from clust import Client
from clust.messages import (
    CacheControl,
    CacheTtl,
    ClaudeModel,
    Message,
    MessagesRequestBody,
    StopReason,
    SystemPrompt,
    ToolDefinition,
    ToolResultContentBlock,
)
from clust.testing import FakeClaude, Reply

WEATHER_TOOL = ToolDefinition.new(
    "get_weather",
    "Current weather for a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


def get_weather(city: str) -> str:
    return f"14 C and light rain in {city}"


def main() -> None:
    with FakeClaude() as fake, Client(api_key="offline", base_url=fake.base_url) as client:
        # Script what the fake model answers: a tool call, then a final answer.
        fake.enqueue(
            Reply.tool_use("get_weather", {"city": "Paris"}, text="Let me check."),
            Reply.text("It is 14 C with light rain in Paris: take an umbrella."),
        )
        system = SystemPrompt.from_text_blocks_with_cache_control(
            [("You are a terse weather assistant.", CacheControl(ttl=CacheTtl.ONE_HOUR))]
        )
        history = [Message.user("What's the weather in Paris?")]

        while True:
            body = MessagesRequestBody(
                model=ClaudeModel.CLAUDE_SONNET_5_5,
                max_tokens=1024,
                system=system,
                tools=[WEATHER_TOOL],
                messages=history,
            )
            with client.create_a_message_stream(body) as stream:
                for text in stream.text_stream:
                    print(text, end="", flush=True)
                reply = stream.get_final_message()
            print(
                f"\n  [stop_reason={reply.stop_reason}, usage in/out="
                f"{reply.usage.input_tokens}/{reply.usage.output_tokens}]"
            )
            history.append(reply.to_message())
            if reply.stop_reason != StopReason.TOOL_USE:
                break
            results = []
            for call in reply.tool_uses():
                output = get_weather(**call.input)
                print(f"  -> ran {call.name}({json.dumps(call.input)}) = {output!r}")
                results.append(ToolResultContentBlock.new(call.id, output))
            history.append(Message.user(results))

        print(
            f"\n{len(history)} messages in the conversation; "
            f"{len(fake.requests)} requests sent to {fake.base_url}"
        )
        beta = fake.last_request.headers.get("anthropic-beta")
        print(f"anthropic-beta sent for the 1-hour cache TTL: {beta}")


if __name__ == "__main__":
    main()
