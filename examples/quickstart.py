"""A persisted multi-turn chat with a tool call, offline, against the bundled FakeClaude.

Run: ``python examples/quickstart.py [DATABASE_URL]`` (default: ``sqlite:///clust_demo.db``,
a file in the current directory). No API key and no network: FakeClaude is a real HTTP
server on 127.0.0.1 that speaks the Messages API. Point the same code at the real API
with ``Client.from_env()``.

The chat is stored as it goes (turns, system prompt blocks with their cache markers,
tools, usage); the second half reopens the database and resumes the chat by id, as
another process would days later.
"""

from __future__ import annotations

import json
import sys

from clust import Client, Conversation, Store
from clust.messages import (
    CacheControl,
    CacheTtl,
    ClaudeModel,
    MessageContent,
    MessagesResponseBody,
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


def say(conv: Conversation, client: Client, content: MessageContent) -> MessagesResponseBody:
    """Send one turn, streaming the reply to the terminal; the reply is stored."""
    with conv.stream(client, content) as stream:
        for text in stream.text_stream:
            print(text, end="", flush=True)
        reply = stream.get_final_message()
    print(
        f"\n  [stop_reason={reply.stop_reason}, tokens in/out={reply.usage.input_tokens}"
        f"/{reply.usage.output_tokens}]"
    )
    return reply


def main(url: str) -> None:
    with FakeClaude() as fake, Client(api_key="offline", base_url=fake.base_url) as client:
        # Script what the fake model answers: a tool call, an answer, then a follow-up.
        fake.enqueue(
            Reply.tool_use("get_weather", {"city": "Paris"}, text="Let me check."),
            Reply.text("It is 14 C with light rain in Paris: take an umbrella."),
            Reply.text("Tomorrow looks drier; the umbrella can stay home."),
        )

        with Store(url) as store:  # creates or upgrades the schema on open
            conv = store.create_conversation(
                model=ClaudeModel.CLAUDE_SONNET_5_5,
                max_tokens=1024,
                system=SystemPrompt.from_text_blocks_with_cache_control(
                    [("You are a terse weather assistant.", CacheControl(ttl=CacheTtl.ONE_HOUR))]
                ),
                tools=[WEATHER_TOOL],
                title="Paris weather",
            )
            print(f"conversation {conv.id} in {url}\n> What's the weather in Paris?")
            reply = say(conv, client, "What's the weather in Paris?")
            while reply.stop_reason == StopReason.TOOL_USE:
                results = []
                for call in reply.tool_uses():
                    output = get_weather(**call.input)
                    print(f"  -> ran {call.name}({json.dumps(call.input)}) = {output!r}")
                    results.append(ToolResultContentBlock.new(call.id, output))
                reply = say(conv, client, results)

        # Later, elsewhere: open the database again and resume the chat by its id.
        with Store(url) as store:
            resumed = store.get_conversation(conv.id)
            print(f"\nresumed {resumed.id} with {len(resumed.history)} stored turns")
            print("> And tomorrow?")
            say(resumed, client, "And tomorrow?")
            sent = fake.last_request.body
            usage = resumed.usage()
            print(
                f"\nthe resumed request carried {len(sent['messages'])} messages, the system "
                f"prompt and {len(sent['tools'])} tool; anthropic-beta: "
                f"{fake.last_request.headers.get('anthropic-beta')}"
            )
            print(
                f"stored: {len(resumed.history)} turns, {usage.requests} replies, "
                f"{usage.input_tokens} input + {usage.output_tokens} output tokens"
            )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "sqlite:///clust_demo.db")
