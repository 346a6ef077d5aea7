"""The documented token-count rule, via count_tokens and usage."""

from __future__ import annotations

import json

import httpx

from clust.testing import FakeClaude, Reply, count_tokens, text_tokens


def test_text_tokens_is_ceil_of_utf8_bytes_over_4() -> None:
    assert [text_tokens(s) for s in ("", "a", "abcd", "abcde", "é", "🎉🎉")] == [0, 1, 1, 2, 1, 2]


def test_count_tokens_endpoint_matches_the_docs_example(http: httpx.Client) -> None:
    body = {
        "model": "claude-sonnet-5-5",
        "system": "You are terse.",
        "messages": [{"role": "user", "content": "Hello, Claude"}],
    }
    # 4 (system) + 4 (message text) + 3 (per message) + 3 (per request)
    assert http.post("/v1/messages/count_tokens", json=body).json() == {"input_tokens": 14}
    assert count_tokens(body) == 14


def test_tools_and_blocks_are_counted(http: httpx.Client) -> None:
    tool = {"name": "get_weather", "input_schema": {"type": "object"}}
    tool_json = json.dumps(tool, sort_keys=True, separators=(",", ":"))
    body = {
        "model": "m",
        "tools": [{**tool, "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "abcdefgh"}]},
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "toolu_1", "name": "get", "input": {"a": 1}}
                ],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "12345"}],
            },
        ],
    }
    expected = (
        text_tokens(tool_json)  # tool definition without cache_control
        + 2  # "abcdefgh"
        + 1  # "get"
        + 2  # '{"a":1}'
        + 2  # "12345"
        + 3 * 3  # three messages
        + 3  # the request
    )
    assert http.post("/v1/messages/count_tokens", json=body).json()["input_tokens"] == expected


def test_output_tokens_count_the_reply(fake: FakeClaude, http: httpx.Client) -> None:
    fake.enqueue(Reply.thinking("12345678", then=Reply.tool_use("tool", {"k": "v"}, text="abcd")))
    body = {"model": "m", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}
    usage = http.post("/v1/messages", json=body).json()["usage"]
    # thinking 2 + text 1 + tool name 1 + '{"k":"v"}' 3
    assert usage["output_tokens"] == 7
    assert usage["output_tokens_details"] == {"thinking_tokens": 2}
