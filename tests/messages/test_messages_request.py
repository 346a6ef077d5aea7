"""MessagesRequestBody and MessagesRequestBuilder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from anthropic.types import message_create_params as sdk_params
from pydantic import TypeAdapter, ValidationError

from clust.messages import (
    CacheControl,
    CacheTtl,
    ClaudeModel,
    ContainerParams,
    DiagnosticsParams,
    DocumentContentBlock,
    Effort,
    ImageContentBlock,
    ImageMediaType,
    InvalidParameter,
    Message,
    MessagesRequestBody,
    MessagesRequestBuilder,
    Metadata,
    OutputConfig,
    OutputFormat,
    ServerToolDefinition,
    ServiceTier,
    SkillParams,
    Speed,
    StreamOption,
    SystemPrompt,
    TextContentBlock,
    ThinkingConfig,
    ThinkingContentBlock,
    ThinkingDisplay,
    ToolChoice,
    ToolDefinition,
    ToolResultContentBlock,
    ToolUseContentBlock,
    UserId,
)

EXAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "api-examples"
needs_examples = pytest.mark.skipif(
    not EXAMPLES.is_dir(), reason="tests/fixtures/api-examples missing"
)


def example(name: str) -> Any:
    return json.loads((EXAMPLES / name).read_text())


def minimal(**fields: Any) -> MessagesRequestBody:
    values: dict[str, Any] = {
        "model": ClaudeModel.CLAUDE_SONNET_5_5,
        "max_tokens": 1024,
        "messages": [Message.user("Hello, Claude")],
    }
    values.update(fields)
    return MessagesRequestBody(**values)


# --- the full example through the typed API --------------------------------------------------

WEATHER_TOOL = ToolDefinition(
    name="get_weather",
    description="Current weather for a city.",
    input_schema={
        "type": "object",
        "properties": {"location": {"type": "string", "description": "City and country"}},
        "required": ["location"],
    },
    cache_control=CacheControl(ttl=CacheTtl.ONE_HOUR),
)
TOOL_USE_ID = "toolu_01A09q90qw90lq917835lq9"


def full_system() -> SystemPrompt:
    return SystemPrompt.from_text_blocks_with_cache_control(
        [
            ("You are a terse weather assistant.", None),
            ("<long reference text here>", CacheControl(ttl=CacheTtl.ONE_HOUR)),
        ]
    )


def full_messages() -> list[Message]:
    return [
        Message.user(
            [
                ImageContentBlock.from_base64(ImageMediaType.PNG, "iVBORw0KGgo..."),
                DocumentContentBlock.from_pdf_url(
                    "https://example.com/report.pdf", title="Report", citations=True
                ),
                TextContentBlock.new_with_cache_control(
                    "What's the weather in Paris right now?", CacheControl()
                ),
            ]
        ),
        Message.assistant(
            [
                ThinkingContentBlock(
                    thinking="I should call the tool.", signature="EqQBCgIYAhIM..."
                ),
                ToolUseContentBlock.new(TOOL_USE_ID, "get_weather", {"location": "Paris, FR"}),
            ]
        ),
        Message.user(
            [
                ToolResultContentBlock.new(
                    TOOL_USE_ID, [TextContentBlock.new("14 C, light rain")], is_error=False
                )
            ]
        ),
    ]


@needs_examples
def test_full_example_through_the_typed_api() -> None:
    body = MessagesRequestBody(
        model=ClaudeModel.CLAUDE_OPUS_5_5,
        max_tokens=4096,
        system=full_system(),
        messages=full_messages(),
        tools=[
            WEATHER_TOOL,
            ServerToolDefinition(type="web_search_20260318", name="web_search", max_uses=3),
        ],
        tool_choice=ToolChoice.auto(disable_parallel_tool_use=True),
        thinking=ThinkingConfig.adaptive(display=ThinkingDisplay.SUMMARIZED),
        output_config=OutputConfig(effort=Effort.HIGH),
        metadata=Metadata(UserId("3f6c2a9e-user-hash")),
        stop_sequences=["\n\nEND"],
        service_tier=ServiceTier.AUTO,
        stream=False,
    )
    expected = example("messages-request-full.json")
    assert body.to_wire() == expected
    assert json.loads(body.to_json()) == expected


@needs_examples
def test_full_example_through_the_builder() -> None:
    builder = (
        MessagesRequestBuilder(ClaudeModel.CLAUDE_OPUS_5_5)
        .max_tokens(4096)
        .system(full_system())
        .messages(full_messages())
        .tool(WEATHER_TOOL)
        .tool(ServerToolDefinition.new("web_search_20260318", "web_search", max_uses=3))
        .tool_choice(ToolChoice.auto(disable_parallel_tool_use=True))
        .thinking(ThinkingConfig.adaptive(ThinkingDisplay.SUMMARIZED))
        .output_config(OutputConfig(effort=Effort.HIGH))
        .metadata("3f6c2a9e-user-hash")
        .stop_sequence("\n\nEND")
        .service_tier(ServiceTier.AUTO)
        .stream(StreamOption.RETURN_ONCE)
    )
    expected = example("messages-request-full.json")
    assert builder.build().to_wire() == expected
    assert json.loads(builder.build().to_json()) == expected


@needs_examples
@pytest.mark.parametrize("name", ["messages-request-full.json", "messages-request-basic.json"])
def test_request_examples_parse_and_dump_back_equal(name: str) -> None:
    raw = (EXAMPLES / name).read_bytes()
    body = MessagesRequestBody.model_validate_json(raw)
    assert body.to_wire() == json.loads(raw)
    assert json.loads(body.to_json()) == json.loads(raw)


@needs_examples
def test_basic_example_and_batch_params() -> None:
    basic = minimal(model="claude-sonnet-5-5")
    assert basic.to_wire() == example("messages-request-basic.json")
    for request in example("batch-create-request.json")["requests"]:
        params = request["params"]
        assert MessagesRequestBody.model_validate(params).to_wire() == params


# --- wire semantics --------------------------------------------------------------------------


def test_unset_fields_are_omitted_and_explicit_none_is_null() -> None:
    wire = minimal().to_wire()
    assert set(wire) == {"model", "max_tokens", "messages"}
    nulls = minimal(system=None, metadata=None, inference_geo=None, container=None).to_wire()
    assert nulls["system"] is None
    assert nulls["metadata"] is None
    assert nulls["inference_geo"] is None
    assert nulls["container"] is None
    assert json.loads(minimal(speed=None).to_json())["speed"] is None


def test_to_json_is_compact_utf8() -> None:
    body = minimal(messages=[Message.user("héllo ✓")])
    raw = body.to_json()
    assert isinstance(raw, bytes)
    assert b": " not in raw and b", " not in raw
    assert json.loads(raw) == body.to_wire()
    assert "héllo ✓".encode() in raw


def test_unknown_keyword_fails_loudly() -> None:
    with pytest.raises(ValidationError) as info:
        minimal(temprature=0.5)
    assert info.value.errors()[0]["type"] == "extra_forbidden"


def test_extra_body_is_merged_at_the_top_level() -> None:
    body = minimal(
        extra_body={
            "context_management": {"edits": [{"type": "clear_tool_uses_20250919"}]},
            "max_tokens": 5,
            "effort_hint": Effort.LOW,
        }
    )
    wire = body.to_wire()
    assert "extra_body" not in wire
    assert wire["context_management"] == {"edits": [{"type": "clear_tool_uses_20250919"}]}
    assert wire["max_tokens"] == 5  # extra_body wins
    assert wire["effort_hint"] == "low"
    assert json.loads(body.to_json()) == wire
    assert "extra_body" not in json.loads(minimal(extra_body={}).to_json())


def test_stream_accepts_bool_or_stream_option_and_sends_a_bool() -> None:
    for value, expected in [
        (True, True),
        (False, False),
        (StreamOption.RETURN_STREAM, True),
        (StreamOption.RETURN_ONCE, False),
    ]:
        body = minimal(stream=value)
        assert body.stream is expected
        assert json.loads(body.to_json())["stream"] is expected
    for bad in ("yes", 1, 0):
        with pytest.raises(InvalidParameter) as info:
            minimal(stream=bad)
        assert info.value.field == "stream"


def test_system_accepts_str_blocks_or_system_prompt() -> None:
    blocks = [TextContentBlock.new_with_cache_control("x", CacheControl())]
    assert minimal(system="s").to_wire()["system"] == "s"
    assert minimal(system=SystemPrompt("s")).to_wire()["system"] == "s"
    listed = minimal(system=blocks).to_wire()["system"]
    assert listed == [{"type": "text", "text": "x", "cache_control": {"type": "ephemeral"}}]
    assert minimal(system=SystemPrompt.from_content_blocks(blocks)).to_wire()["system"] == listed
    assert isinstance(minimal(system="s").system, SystemPrompt)


def test_messages_must_not_be_empty() -> None:
    with pytest.raises(InvalidParameter) as info:
        minimal(messages=[])
    assert info.value.field == "messages"


def test_messages_from_dicts_and_system_role() -> None:
    body = minimal(
        messages=[
            {"role": "user", "content": "a"},
            {"role": "system", "content": [{"type": "text", "text": "be brief"}]},
        ]
    )
    assert body.messages[1].role == "system"
    assert body.to_wire()["messages"][1] == {
        "role": "system",
        "content": [{"type": "text", "text": "be brief"}],
    }


# --- tools and tool_choice -------------------------------------------------------------------


def test_tool_definition_new_defaults_to_an_empty_object_schema() -> None:
    tool = ToolDefinition.new("get_weather", "Get the weather")
    assert tool.input_schema == {"type": "object", "properties": {}}
    assert ToolDefinition.new("t").to_wire() == {
        "name": "t",
        "input_schema": {"type": "object", "properties": {}},
    }


def test_tool_definition_optional_fields() -> None:
    tool = ToolDefinition(
        name="lookup",
        input_schema={"type": "object"},
        strict=True,
        defer_loading=True,
        allowed_callers=["direct", "code_execution_20260120"],
        eager_input_streaming=None,
        input_examples=[{"q": "x"}],
        type="custom",
    )
    assert tool.to_wire() == {
        "name": "lookup",
        "input_schema": {"type": "object"},
        "strict": True,
        "defer_loading": True,
        "allowed_callers": ["direct", "code_execution_20260120"],
        "eager_input_streaming": None,
        "input_examples": [{"q": "x"}],
        "type": "custom",
    }


@pytest.mark.parametrize("name", ["", "has space", "x" * 129, "dot.name"])
def test_tool_name_charset(name: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        ToolDefinition.new(name)
    assert info.value.field == "tools.name"
    assert ToolDefinition.new("a-Z_09" + "x" * 122).name


def test_tools_from_dicts_pick_custom_or_server() -> None:
    body = minimal(
        tools=[
            {"name": "a", "input_schema": {"type": "object"}},
            {"type": "custom", "name": "b", "input_schema": {"type": "object"}},
            {"type": "web_fetch_20260318", "name": "web_fetch", "max_uses": 2, "use_cache": True},
            {"type": "computer_toolset_20260801", "configs": {"zoom": {"enabled": True}}},
        ]
    )
    assert body.tools is not None
    kinds = [type(tool) for tool in body.tools]
    assert kinds == [ToolDefinition, ToolDefinition, ServerToolDefinition, ServerToolDefinition]
    assert body.to_wire()["tools"][2] == {
        "type": "web_fetch_20260318",
        "name": "web_fetch",
        "max_uses": 2,
        "use_cache": True,
    }
    assert body.to_wire()["tools"][3] == {
        "type": "computer_toolset_20260801",
        "configs": {"zoom": {"enabled": True}},
    }


def test_server_tool_definition_keeps_options() -> None:
    tool = ServerToolDefinition.new(
        "web_search_20260318",
        "web_search",
        allowed_domains=["example.com"],
        user_location={"type": "approximate", "city": "Paris", "country": "FR"},
        cache_control=CacheControl.one_hour(),
    )
    assert tool.to_wire() == {
        "type": "web_search_20260318",
        "name": "web_search",
        "allowed_domains": ["example.com"],
        "user_location": {"type": "approximate", "city": "Paris", "country": "FR"},
        "cache_control": {"type": "ephemeral", "ttl": "1h"},
    }


@pytest.mark.parametrize(
    ("choice", "wire"),
    [
        (ToolChoice.auto(), {"type": "auto"}),
        (ToolChoice.any(), {"type": "any"}),
        (ToolChoice.none(), {"type": "none"}),
        (ToolChoice.tool("get_weather"), {"type": "tool", "name": "get_weather"}),
        (
            ToolChoice.auto(disable_parallel_tool_use=True),
            {"type": "auto", "disable_parallel_tool_use": True},
        ),
        (
            ToolChoice.any(disable_parallel_tool_use=False),
            {"type": "any", "disable_parallel_tool_use": False},
        ),
        (
            ToolChoice.tool("t", disable_parallel_tool_use=True),
            {"type": "tool", "name": "t", "disable_parallel_tool_use": True},
        ),
    ],
)
def test_tool_choice_variants(choice: ToolChoice, wire: dict[str, Any]) -> None:
    assert choice.to_wire() == wire
    assert minimal(tool_choice=wire).to_wire()["tool_choice"] == wire


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"type": "tool"}, "tool_choice.name"),
        ({"type": "tool", "name": ""}, "tool_choice.name"),
        ({"type": "auto", "name": "x"}, "tool_choice.name"),
        (
            {"type": "none", "disable_parallel_tool_use": True},
            "tool_choice.disable_parallel_tool_use",
        ),
    ],
)
def test_tool_choice_invalid(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        ToolChoice(**fields)
    assert info.value.field == field
    with pytest.raises(InvalidParameter):
        minimal(tool_choice=fields)


# --- thinking, output_config and the newer fields --------------------------------------------


@pytest.mark.parametrize(
    ("thinking", "wire"),
    [
        (ThinkingConfig.enabled(1024), {"type": "enabled", "budget_tokens": 1024}),
        (
            ThinkingConfig.enabled(2048, display=ThinkingDisplay.OMITTED),
            {"type": "enabled", "budget_tokens": 2048, "display": "omitted"},
        ),
        (ThinkingConfig.disabled(), {"type": "disabled"}),
        (ThinkingConfig.adaptive(), {"type": "adaptive"}),
        (
            ThinkingConfig.adaptive(display=ThinkingDisplay.SUMMARIZED),
            {"type": "adaptive", "display": "summarized"},
        ),
        (ThinkingConfig.between_tools(), {"type": "between_tools"}),
    ],
)
def test_thinking_variants(thinking: ThinkingConfig, wire: dict[str, Any]) -> None:
    assert thinking.to_wire() == wire
    assert minimal(max_tokens=4096, thinking=thinking).to_wire()["thinking"] == wire


@pytest.mark.parametrize("budget", [1023, 0, -1, True])
def test_thinking_budget_minimum(budget: int) -> None:
    with pytest.raises(InvalidParameter) as info:
        ThinkingConfig.enabled(budget)
    assert info.value.field == "thinking.budget_tokens"


@pytest.mark.parametrize(("budget", "max_tokens"), [(2048, 2048), (4096, 2048)])
def test_thinking_budget_must_be_below_max_tokens(budget: int, max_tokens: int) -> None:
    with pytest.raises(InvalidParameter) as info:
        minimal(max_tokens=max_tokens, thinking=ThinkingConfig.enabled(budget))
    assert info.value.field == "thinking.budget_tokens"
    assert info.value.value == budget
    assert str(max_tokens - 1) in info.value.allowed
    assert minimal(max_tokens=budget + 1, thinking=ThinkingConfig.enabled(budget))


def test_thinking_fields_only_where_allowed() -> None:
    with pytest.raises(InvalidParameter):
        ThinkingConfig(type="adaptive", budget_tokens=2048)
    with pytest.raises(InvalidParameter):
        ThinkingConfig(type="disabled", display="omitted")
    with pytest.raises(InvalidParameter):
        minimal(thinking={"type": "enabled"})


def test_output_config() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    config = OutputConfig.with_json_schema(schema, effort=Effort.MAX)
    wire = {"format": {"type": "json_schema", "schema": schema}, "effort": "max"}
    assert config.to_wire() == wire
    parsed = minimal(output_config=wire).output_config
    assert parsed is not None and parsed.format is not None
    assert parsed.format.json_schema == schema
    assert OutputFormat(json_schema=schema).to_wire() == {"type": "json_schema", "schema": schema}
    assert OutputConfig(effort=Effort.XHIGH).to_wire() == {"effort": "xhigh"}
    with pytest.raises(ValidationError):
        OutputConfig(effort="extreme")


def test_newer_fields() -> None:
    body = minimal(
        cache_control=CacheControl(ttl=CacheTtl.FIVE_MINUTES),
        container=ContainerParams(
            id="cntr_1", skills=[SkillParams(skill_id="pptx", type="anthropic", version="latest")]
        ),
        inference_geo="us",
        speed=Speed.FAST,
        diagnostics=DiagnosticsParams(previous_message_id="msg_1"),
        service_tier=ServiceTier.STANDARD_ONLY,
        top_k=5,
        top_p=0.9,
        temperature=0.2,
    )
    assert body.to_wire() == {
        "model": "claude-sonnet-5-5",
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": "Hello, Claude"}],
        "cache_control": {"type": "ephemeral", "ttl": "5m"},
        "container": {
            "id": "cntr_1",
            "skills": [{"skill_id": "pptx", "type": "anthropic", "version": "latest"}],
        },
        "inference_geo": "us",
        "speed": "fast",
        "diagnostics": {"previous_message_id": "msg_1"},
        "service_tier": "standard_only",
        "top_k": 5,
        "top_p": 0.9,
        "temperature": 0.2,
    }
    assert minimal(container="cntr_2").to_wire()["container"] == "cntr_2"
    with pytest.raises(ValidationError):
        minimal(speed="warp")
    with pytest.raises(ValidationError):
        minimal(service_tier="premium")


# --- builder ---------------------------------------------------------------------------------


def full_builder() -> MessagesRequestBuilder:
    return (
        MessagesRequestBuilder("claude-sonnet-4-6", max_tokens=8000)
        .messages([Message.user("a")])
        .message(Message.assistant("b"))
        .message(Message.user([TextContentBlock.new("c")]))
        .system([TextContentBlock.new_with_cache_control("sys", CacheControl.one_hour())])
        .metadata(Metadata(UserId("u")))
        .stop_sequences(["STOP"])
        .stop_sequence("HALT")
        .stream(True)
        .temperature(0.5)
        .top_p(0.8)
        .top_k(10)
        .tools([ToolDefinition.new("t")])
        .tool(ServerToolDefinition.new("code_execution_20260521", "code_execution"))
        .tool_choice(ToolChoice.any())
        .thinking(ThinkingConfig.enabled(2048))
        .service_tier(ServiceTier.AUTO)
        .cache_control(CacheControl())
        .output_config(OutputConfig(effort=Effort.LOW))
        .container("cntr_1")
        .inference_geo("global")
        .speed(Speed.STANDARD)
        .diagnostics(DiagnosticsParams(previous_message_id=None))
        .extra_body({"future_field": [1, 2]})
    )


def test_builder_covers_every_field() -> None:
    body = full_builder().build()
    wire = body.to_wire()
    assert wire == {
        "model": "claude-sonnet-4-6",
        "max_tokens": 8000,
        "messages": [
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": "b"},
            {"role": "user", "content": [{"type": "text", "text": "c"}]},
        ],
        "system": [
            {"type": "text", "text": "sys", "cache_control": {"type": "ephemeral", "ttl": "1h"}}
        ],
        "metadata": {"user_id": "u"},
        "stop_sequences": ["STOP", "HALT"],
        "stream": True,
        "temperature": 0.5,
        "top_p": 0.8,
        "top_k": 10,
        "tools": [
            {"name": "t", "input_schema": {"type": "object", "properties": {}}},
            {"type": "code_execution_20260521", "name": "code_execution"},
        ],
        "tool_choice": {"type": "any"},
        "thinking": {"type": "enabled", "budget_tokens": 2048},
        "service_tier": "auto",
        "cache_control": {"type": "ephemeral"},
        "output_config": {"effort": "low"},
        "container": "cntr_1",
        "inference_geo": "global",
        "speed": "standard",
        "diagnostics": {"previous_message_id": None},
        "future_field": [1, 2],
    }
    assert set(wire) - {"future_field"} == set(MessagesRequestBody.model_fields) - {"extra_body"}


def test_building_twice_gives_equal_independent_bodies() -> None:
    builder = full_builder()
    first, second = builder.build(), builder.build()
    assert first == second
    assert first.to_json() == second.to_json()
    first.messages.append(Message.user("more"))
    assert first.messages[0] is not second.messages[0]
    content = first.messages[2].content
    assert isinstance(content, list)
    content.append(TextContentBlock.new("changed"))
    assert first.extra_body is not None
    first.extra_body["future_field"].append(3)
    assert second.to_wire() == builder.build().to_wire()


def test_builder_validates_values_as_they_are_set() -> None:
    builder = MessagesRequestBuilder(ClaudeModel.CLAUDE_HAIKU_4_5)
    with pytest.raises(InvalidParameter):
        builder.max_tokens(64_001)
    with pytest.raises(InvalidParameter):
        builder.temperature(1.5)
    with pytest.raises(InvalidParameter):
        builder.top_p(-0.1)
    with pytest.raises(InvalidParameter):
        builder.top_k(-1)
    with pytest.raises(InvalidParameter):
        builder.stop_sequence("")
    with pytest.raises(InvalidParameter):
        builder.metadata("")


def test_builder_requires_max_tokens_and_a_message() -> None:
    builder = MessagesRequestBuilder("claude-sonnet-5-5")
    with pytest.raises(InvalidParameter) as info:
        builder.build()
    assert info.value.field == "max_tokens"
    with pytest.raises(InvalidParameter) as info:
        builder.max_tokens(10).build()
    assert info.value.field == "messages"
    assert builder.message(Message.user("hi")).build().to_wire() == {
        "model": "claude-sonnet-5-5",
        "max_tokens": 10,
        "messages": [{"role": "user", "content": "hi"}],
    }


def test_builder_rechecks_max_tokens_when_the_model_changes() -> None:
    builder = MessagesRequestBuilder("unknown-model", max_tokens=100_000).message(Message.user("x"))
    assert builder.build().max_tokens == 100_000
    with pytest.raises(InvalidParameter):
        builder.model(ClaudeModel.CLAUDE_HAIKU_4_5).build()


def test_builder_can_send_explicit_nulls() -> None:
    body = (
        MessagesRequestBuilder("m", 1).message(Message.user("x")).system(None).temperature(None)
    ).build()
    assert body.to_wire()["system"] is None
    assert body.to_wire()["temperature"] is None


# --- the official SDK accepts what we send ---------------------------------------------------


def test_sdk_request_types_accept_our_bodies() -> None:
    streaming = TypeAdapter(sdk_params.MessageCreateParamsStreaming)
    non_streaming = TypeAdapter(sdk_params.MessageCreateParamsNonStreaming)
    builder_body = full_builder().build().to_wire()
    for field in ("temperature", "top_p", "top_k", "future_field"):  # not in SDK 2.10
        del builder_body[field]
    streaming.validate_python(builder_body)
    typed = (
        MessagesRequestBuilder(ClaudeModel.CLAUDE_OPUS_5_5)
        .max_tokens(4096)
        .system(full_system())
        .messages(full_messages())
        .tools([WEATHER_TOOL])
        .tool_choice(ToolChoice.tool("get_weather"))
        .thinking(ThinkingConfig.between_tools())
        .output_config(OutputConfig.with_json_schema({"type": "object"}))
        .container(ContainerParams(skills=[SkillParams(skill_id="x", type="custom")]))
        .build()
    )
    non_streaming.validate_python(typed.to_wire())
    with pytest.raises(ValidationError):  # the check has teeth
        non_streaming.validate_python({**typed.to_wire(), "tool_choice": {"type": "tool"}})


_TOOL_TURNS = [
    {"role": "user", "content": "x"},
    {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}]},
]


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        (
            {
                "messages": [
                    *_TOOL_TURNS,
                    {
                        "role": "user",
                        "content": [{"type": "tool_result", "tool_use_id": "t", "is_error": "yes"}],
                    },
                ]
            },
            "is_error",
        ),
        ({"tool_choice": {"type": "auto", "disable_parallel_tool_use": "off"}}, "disable_parallel"),
        ({"tools": [{"name": "f", "input_schema": {"type": "object"}, "strict": 1}]}, "strict"),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "document",
                                "source": {"type": "url", "url": "https://e/a.pdf"},
                                "citations": {"enabled": "true"},
                            }
                        ],
                    }
                ]
            },
            "enabled",
        ),
    ],
)
def test_booleans_are_not_guessed_from_other_types(fields: dict[str, Any], where: str) -> None:
    """``"yes"``, ``"off"`` or ``1`` for a boolean is refused before the network, not
    rewritten to ``true``/``false`` (the API would refuse it)."""
    body = {
        "model": "claude-sonnet-5-5",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "hi"}],
    }
    with pytest.raises(ValidationError, match=where):
        MessagesRequestBody.model_validate({**body, **fields})
