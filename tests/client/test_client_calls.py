"""Both clients over real sockets against FakeClaude: replies, headers, beta rule, count_tokens."""

from __future__ import annotations

import json

import pytest
from support import simple_body

from clust import AsyncClient, Client
from clust.messages import (
    CacheControl,
    CacheTtl,
    Message,
    MessagesRequestBody,
    StopReason,
    StreamOptionMismatch,
    SystemPrompt,
    TextContentBlock,
    ToolDefinition,
    ToolResultContentBlock,
    ToolUseContentBlock,
)
from clust.testing import FakeClaude, Reply

ONE_HOUR = CacheControl(ttl=CacheTtl.ONE_HOUR)
FIVE_MIN = CacheControl(ttl=CacheTtl.FIVE_MINUTES)


def test_create_a_message_returns_typed_reply(client: Client, fake: FakeClaude) -> None:
    fake.enqueue(Reply.text("Hello! How can I help?"))
    response = client.create_a_message(simple_body())
    assert response.content[0].text == "Hello! How can I help?"  # type: ignore[union-attr]
    assert response.text() == "Hello! How can I help?"
    assert response.stop_reason == StopReason.END_TURN
    assert response.usage.input_tokens > 0
    assert fake.last_request.body == {
        "model": "claude-sonnet-5-5",
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": "Hello, Claude"}],
    }


@pytest.mark.anyio
async def test_async_create_a_message(aclient: AsyncClient, fake: FakeClaude) -> None:
    fake.enqueue(Reply.text("async hello"))
    response = await aclient.create_a_message(simple_body())
    assert response.text() == "async hello"


def test_headers_sent(client: Client, fake: FakeClaude) -> None:
    client.create_a_message(simple_body())
    headers = fake.last_request.headers
    assert headers["authorization"] == "Bearer test-key"
    assert "x-api-key" not in headers
    assert headers["anthropic-version"] == "2026-10-21"
    assert headers["content-type"] == "application/json"
    assert headers["accept"] == "application/json"
    assert headers["user-agent"].startswith("clust/")
    assert "anthropic-beta" not in headers


def test_x_api_key_scheme(fake: FakeClaude) -> None:
    with Client(api_key="k2", base_url=fake.base_url, auth_scheme="x-api-key") as client:
        client.create_a_message(simple_body())
    assert fake.last_request.headers["x-api-key"] == "k2"
    assert "authorization" not in fake.last_request.headers


def test_default_and_extra_headers(fake: FakeClaude) -> None:
    with Client(api_key="k", base_url=fake.base_url, default_headers={"X-Team": "a"}) as client:
        client.create_a_message(simple_body(), extra_headers={"X-Trace": "t1"})
    assert fake.last_request.headers["x-team"] == "a"
    assert fake.last_request.headers["x-trace"] == "t1"


def _beta_header(fake: FakeClaude) -> str | None:
    return fake.last_request.headers.get("anthropic-beta")


def test_no_one_hour_ttl_no_beta(client: Client, fake: FakeClaude) -> None:
    body = simple_body(system=SystemPrompt.from_text_blocks_with_cache_control([("sys", FIVE_MIN)]))
    client.create_a_message(body)
    assert _beta_header(fake) is None


def test_text_mentioning_1h_adds_no_beta(client: Client, fake: FakeClaude) -> None:
    client.create_a_message(simple_body('the "1h" slot and ttl 1h'))
    assert _beta_header(fake) is None


def test_one_hour_ttl_in_system_adds_beta(client: Client, fake: FakeClaude) -> None:
    body = simple_body(
        system=SystemPrompt.from_text_blocks_with_cache_control([("a", None), ("b", ONE_HOUR)])
    )
    client.create_a_message(body)
    assert _beta_header(fake) == "extended-cache-ttl-2025-04-11"


def test_one_hour_ttl_in_message_adds_beta(client: Client, fake: FakeClaude) -> None:
    block = TextContentBlock.new_with_cache_control("hi", ONE_HOUR)
    body = MessagesRequestBody(
        model="claude-sonnet-5-5", max_tokens=100, messages=[Message.user([block])]
    )
    client.create_a_message(body)
    assert _beta_header(fake) == "extended-cache-ttl-2025-04-11"


def test_one_hour_ttl_in_tool_result_content_adds_beta(client: Client, fake: FakeClaude) -> None:
    tool_use = ToolUseContentBlock(id="toolu_1", name="lookup", input={})
    result = ToolResultContentBlock(
        tool_use_id="toolu_1", content=[TextContentBlock.new_with_cache_control("r", ONE_HOUR)]
    )
    body = MessagesRequestBody(
        model="claude-sonnet-5-5",
        max_tokens=100,
        messages=[Message.user("q"), Message.assistant([tool_use]), Message.user([result])],
        tools=[ToolDefinition.new("lookup", "Look up")],
    )
    client.create_a_message(body)
    assert _beta_header(fake) == "extended-cache-ttl-2025-04-11"


def test_one_hour_ttl_in_tool_adds_beta_once_merged(client: Client, fake: FakeClaude) -> None:
    tool = ToolDefinition.new("lookup", "Look up").model_copy(update={"cache_control": ONE_HOUR})
    body = simple_body(
        tools=[tool],
        system=SystemPrompt.from_text_blocks_with_cache_control([("s", ONE_HOUR)]),
    )
    client.create_a_message(
        body,
        betas=["my-beta-1", "extended-cache-ttl-2025-04-11"],
        extra_headers={"anthropic-beta": "other-2,my-beta-1"},
    )
    assert _beta_header(fake) == "my-beta-1,extended-cache-ttl-2025-04-11,other-2"


def test_top_level_one_hour_cache_control_adds_beta(client: Client, fake: FakeClaude) -> None:
    client.create_a_message(simple_body(cache_control=ONE_HOUR))
    assert _beta_header(fake) == "extended-cache-ttl-2025-04-11"
    assert fake.last_request.body["cache_control"] == {"type": "ephemeral", "ttl": "1h"}


def test_user_betas_alone(client: Client, fake: FakeClaude) -> None:
    client.create_a_message(simple_body(), betas=["b-1", "b-2", "b-1"])
    assert _beta_header(fake) == "b-1,b-2"


def test_stream_true_body_is_refused_before_sending(client: Client, fake: FakeClaude) -> None:
    with pytest.raises(StreamOptionMismatch, match="create_a_message_stream"):
        client.create_a_message(simple_body(stream=True))
    assert fake.requests == []


def test_stream_false_body_is_sent_as_is(client: Client, fake: FakeClaude) -> None:
    client.create_a_message(simple_body(stream=False))
    assert fake.last_request.body["stream"] is False


def test_extra_body_reaches_the_wire(client: Client, fake: FakeClaude) -> None:
    client.create_a_message(simple_body(extra_body={"brand_new_field": {"x": [1, 2]}}))
    assert fake.last_request.body["brand_new_field"] == {"x": [1, 2]}


def test_tool_use_reply(client: Client, fake: FakeClaude) -> None:
    fake.enqueue(Reply.tool_use("get_weather", {"city": "Paris"}))
    response = client.create_a_message(simple_body(tools=[ToolDefinition.new("get_weather")]))
    assert response.stop_reason == StopReason.TOOL_USE
    block = response.content[-1]
    assert isinstance(block, ToolUseContentBlock)
    assert block.name == "get_weather" and block.input == {"city": "Paris"}


def test_count_tokens_sends_only_prompt_fields(client: Client, fake: FakeClaude) -> None:
    body = simple_body(system="You are terse.", stop_sequences=["END"], temperature=0.5)
    count = client.count_tokens(body)
    assert count.input_tokens > 0
    assert fake.last_request.path == "/v1/messages/count_tokens"
    assert set(fake.last_request.body) == {"model", "messages", "system"}


@pytest.mark.anyio
async def test_async_count_tokens(aclient: AsyncClient, fake: FakeClaude) -> None:
    count = await aclient.count_tokens(simple_body())
    assert count.input_tokens > 0


def test_unknown_block_and_stop_reason_round_trip(client: Client, fake: FakeClaude) -> None:
    future_block = {"type": "hologram", "frames": [1, 2], "meta": None}
    fake.enqueue(
        Reply(content=({"type": "text", "text": "hi"}, future_block), stop_reason="daydream")
    )
    response = client.create_a_message(simple_body())
    assert response.stop_reason == "daydream"
    assert response.content[1].to_wire() == future_block
    # Sent back in the next turn, the block is unchanged on the wire.
    follow_up = MessagesRequestBody(
        model="claude-sonnet-5-5",
        max_tokens=10,
        messages=[Message.user("a"), Message.assistant(response.content), Message.user("b")],
    )
    client.create_a_message(follow_up)
    sent = fake.last_request.body["messages"][1]["content"]
    assert sent[1] == future_block
    assert json.dumps(sent[0]) == json.dumps({"type": "text", "text": "hi"})


def test_repr_and_context_manager(fake: FakeClaude) -> None:
    client = Client(api_key="secret-abc", base_url=fake.base_url + "/")
    assert client.base_url == fake.base_url
    assert "secret-abc" not in repr(client)
    with client:
        client.create_a_message(simple_body())


def test_reply_carries_request_id(client: Client, fake: FakeClaude) -> None:
    response = client.create_a_message(simple_body())
    assert response.request_id is not None and response.request_id.startswith("req_")
    assert "request_id" not in response.to_wire()
    with client.create_a_message_stream(simple_body()) as stream:
        final = stream.get_final_message()
    assert final.request_id == stream.request_id is not None
    assert final.request_id != response.request_id
