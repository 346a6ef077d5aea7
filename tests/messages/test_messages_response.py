"""MessagesResponseBody, Usage, StopReason: parsing, unknown values, round trips."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anthropic.types as sdk
import pytest

from clust.messages import (
    CacheCreation,
    Message,
    MessagesRequestBody,
    MessagesResponseBody,
    Role,
    StopReason,
    TextContentBlock,
    ThinkingContentBlock,
    ToolResultContentBlock,
    ToolUseContentBlock,
    UnknownContentBlock,
    Usage,
)

EXAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "api-examples"
needs_examples = pytest.mark.skipif(
    not EXAMPLES.is_dir(), reason="tests/fixtures/api-examples missing"
)


def response(**fields: Any) -> dict[str, Any]:
    wire: dict[str, Any] = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-5-5",
        "content": [{"type": "text", "text": "Hi"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 3, "output_tokens": 1},
    }
    wire.update(fields)
    return wire


@needs_examples
@pytest.mark.parametrize("name", ["messages-response-text.json", "messages-response-tool-use.json"])
def test_response_examples_parse_and_dump_back_equal(name: str) -> None:
    raw = (EXAMPLES / name).read_bytes()
    parsed = MessagesResponseBody.model_validate_json(raw)
    assert parsed.to_wire() == json.loads(raw)
    assert json.loads(parsed.model_dump_json(exclude_unset=True)) == json.loads(raw)
    # The official SDK agrees with what we dump.
    assert sdk.Message.model_validate(parsed.to_wire()).id == parsed.id


@needs_examples
def test_text_response_fields() -> None:
    parsed = MessagesResponseBody.model_validate_json(
        (EXAMPLES / "messages-response-text.json").read_bytes()
    )
    assert parsed.content[0].text == "Hello! How can I help you today?"  # type: ignore[union-attr]
    assert parsed.text() == "Hello! How can I help you today?"
    assert parsed.role is Role.ASSISTANT
    assert parsed.stop_reason is StopReason.END_TURN
    usage = parsed.usage
    assert (usage.input_tokens, usage.output_tokens) == (12, 11)
    assert usage.cache_creation == CacheCreation(
        ephemeral_5m_input_tokens=0, ephemeral_1h_input_tokens=0
    )
    assert usage.output_tokens_details is not None
    assert usage.output_tokens_details.thinking_tokens == 0
    assert usage.server_tool_use is None
    assert (usage.service_tier, usage.inference_geo, usage.speed) == (
        "standard",
        "global",
        "standard",
    )


@needs_examples
def test_tool_use_response_fields() -> None:
    parsed = MessagesResponseBody.model_validate_json(
        (EXAMPLES / "messages-response-tool-use.json").read_bytes()
    )
    assert [type(block) for block in parsed.content] == [
        ThinkingContentBlock,
        TextContentBlock,
        ToolUseContentBlock,
    ]
    assert parsed.stop_reason == "tool_use"
    assert parsed.text() == "Let me check that for you."
    (call,) = parsed.tool_uses()
    assert call.input == {"location": "Paris, FR"}
    assert call.caller is not None and call.caller.type == "direct"
    usage = parsed.usage
    assert usage.cache_creation is not None
    assert usage.cache_creation.ephemeral_1h_input_tokens == 1800
    assert usage.cache_creation.ephemeral_5m_input_tokens == 0
    assert usage.cache_creation_input_tokens == 1800
    assert usage.total_input_tokens == 2095 + 1800
    assert usage.output_tokens_details is not None
    assert usage.output_tokens_details.thinking_tokens == 40

    # Echo the reply back in the next request, with the tool result.
    request = MessagesRequestBody(
        model=parsed.model,
        max_tokens=1024,
        messages=[
            Message.user("Weather in Paris?"),
            parsed.to_message(),
            Message.user(ToolResultContentBlock.new(call.id, "14 C")),
        ],
    )
    assistant = request.to_wire()["messages"][1]
    assert assistant == {"role": "assistant", "content": parsed.to_wire()["content"]}


@needs_examples
def test_batch_result_message_parses() -> None:
    line = (EXAMPLES / "batch-results.jsonl").read_text().splitlines()[0]
    message = json.loads(line)["result"]["message"]
    parsed = MessagesResponseBody.model_validate(message)
    assert parsed.usage.service_tier == "batch"
    assert parsed.to_wire() == message


@pytest.mark.parametrize("reason", list(StopReason))
def test_every_stop_reason_parses_into_the_enum(reason: StopReason) -> None:
    parsed = MessagesResponseBody.model_validate(response(stop_reason=reason.value))
    assert parsed.stop_reason is reason


def test_unknown_stop_reason_is_kept_as_its_string() -> None:
    wire = response(stop_reason="some_future_reason")
    parsed = MessagesResponseBody.model_validate_json(json.dumps(wire))
    assert parsed.stop_reason == "some_future_reason"
    assert not isinstance(parsed.stop_reason, StopReason)
    assert parsed.to_wire() == wire


def test_null_stop_reason_and_missing_optional_fields() -> None:
    wire = response(stop_reason=None)
    parsed = MessagesResponseBody.model_validate(wire)
    assert parsed.stop_reason is None
    assert parsed.to_wire() == wire
    assert "stop_details" not in parsed.to_wire()


def test_unknown_response_fields_blocks_and_usage_fields_are_kept() -> None:
    wire = response(
        content=[
            {"type": "text", "text": "a", "citations": None},
            {"type": "fallback", "from_model": "x", "payload": {"n": 1}},
            {"type": "text", "text": "b"},
        ],
        context_management={"applied_edits": [{"type": "clear_tool_uses_20250919"}]},
        usage={
            "input_tokens": 1,
            "output_tokens": 2,
            "iterations": [{"input_tokens": 1}],
            "server_tool_use": {"web_search_requests": 1, "web_fetch_requests": 0, "x_requests": 4},
        },
    )
    parsed = MessagesResponseBody.model_validate_json(json.dumps(wire))
    assert isinstance(parsed.content[1], UnknownContentBlock)
    assert parsed.text() == "ab"
    assert parsed.model_extra == {"context_management": wire["context_management"]}
    assert parsed.usage.model_extra == {"iterations": [{"input_tokens": 1}]}
    assert parsed.usage.server_tool_use is not None
    assert parsed.usage.server_tool_use.web_search_requests == 1
    assert parsed.to_wire() == wire


def test_stop_details_container_and_diagnostics() -> None:
    wire = response(
        stop_reason="refusal",
        stop_details={"type": "refusal", "category": "cyber", "explanation": None},
        container={
            "id": "cntr_1",
            "expires_at": "2026-11-20T18:37:24.100435Z",
            "skills": [{"skill_id": "pptx", "type": "anthropic", "version": "1"}],
        },
        diagnostics={
            "cache_miss_reason": {"type": "system_changed", "cache_missed_input_tokens": 1200}
        },
    )
    parsed = MessagesResponseBody.model_validate(wire)
    assert parsed.stop_details is not None and parsed.stop_details.category == "cyber"
    assert parsed.container is not None
    assert parsed.container.expires_at == "2026-11-20T18:37:24.100435Z"
    assert parsed.diagnostics is not None and parsed.diagnostics.cache_miss_reason is not None
    assert parsed.diagnostics.cache_miss_reason.cache_missed_input_tokens == 1200
    assert parsed.to_wire() == wire


def test_user_built_response_sends_its_type_tag() -> None:
    built = MessagesResponseBody(
        id="msg_1",
        role=Role.ASSISTANT,
        model="m",
        content=[TextContentBlock.new("x")],
        usage=Usage(input_tokens=1, output_tokens=1),
    )
    assert built.to_wire() == {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "m",
        "content": [{"type": "text", "text": "x"}],
        "usage": {"input_tokens": 1, "output_tokens": 1},
    }
    assert built.text() == "x"


def test_empty_content_is_allowed() -> None:
    parsed = MessagesResponseBody.model_validate(response(content=[]))
    assert parsed.text() == ""
    assert parsed.tool_uses() == []
