"""Content blocks: wire shapes, cache markers, the always-sent ``type``, unknown types."""

from __future__ import annotations

import json
from typing import Any

import anthropic.types as sdk
import pytest
from pydantic import TypeAdapter, ValidationError

from clust.messages import (
    Base64Source,
    CacheControl,
    CacheControlType,
    CacheTtl,
    CharLocationCitation,
    ContainerUploadContentBlock,
    ContentBlock,
    DocumentContentBlock,
    ImageContentBlock,
    ImageMediaType,
    Message,
    MessagesResponseBody,
    PlainTextSource,
    RedactedThinkingContentBlock,
    Role,
    SearchResultContentBlock,
    ServerToolResultContentBlock,
    ServerToolUseContentBlock,
    SystemPrompt,
    TextContentBlock,
    ThinkingContentBlock,
    ToolDefinition,
    ToolReferenceContentBlock,
    ToolResultContentBlock,
    ToolUseContentBlock,
    UnknownCitation,
    UnknownContentBlock,
    UnknownSource,
    UrlSource,
)

BLOCK: TypeAdapter[ContentBlock] = TypeAdapter(ContentBlock)


# --- cache_control ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cache_control", "wire"),
    [
        (CacheControl(), {"type": "ephemeral"}),
        (CacheControl(type=CacheControlType.EPHEMERAL), {"type": "ephemeral"}),
        (CacheControl(type=CacheControlType.EPHEMERAL, ttl=None), {"type": "ephemeral"}),
        (CacheControl(ttl=CacheTtl.FIVE_MINUTES), {"type": "ephemeral", "ttl": "5m"}),
        (CacheControl(ttl=CacheTtl.ONE_HOUR), {"type": "ephemeral", "ttl": "1h"}),
        (CacheControl(ttl="1h"), {"type": "ephemeral", "ttl": "1h"}),
        (CacheControl.ephemeral(), {"type": "ephemeral"}),
        (CacheControl.five_minutes(), {"type": "ephemeral", "ttl": "5m"}),
        (CacheControl.one_hour(), {"type": "ephemeral", "ttl": "1h"}),
    ],
)
def test_cache_control_forms(cache_control: CacheControl, wire: dict[str, Any]) -> None:
    assert cache_control.to_wire() == wire
    assert json.loads(cache_control.model_dump_json(exclude_unset=True)) == wire


def test_cache_control_parsed_from_json_round_trips_exactly() -> None:
    for raw in ['{"type":"ephemeral"}', '{"type":"ephemeral","ttl":"1h"}']:
        assert CacheControl.model_validate_json(raw).to_wire() == json.loads(raw)


def test_cache_control_rejects_unknown_ttl_and_type() -> None:
    with pytest.raises(ValidationError):
        CacheControl(ttl="2h")
    with pytest.raises(ValidationError):
        CacheControl(type="persistent")


# --- the always-sent type tag ----------------------------------------------------------------


def test_user_built_blocks_send_their_type() -> None:
    block = TextContentBlock(text="hi")
    assert "type" in block.model_fields_set
    assert block.to_wire() == {"type": "text", "text": "hi"}
    assert json.loads(Message.user(block).model_dump_json(exclude_unset=True)) == {
        "role": "user",
        "content": [{"type": "text", "text": "hi"}],
    }


def test_parsed_blocks_keep_exactly_their_fields() -> None:
    raw = {"type": "text", "text": "hi", "citations": None}
    block = BLOCK.validate_python(raw)
    assert block.to_wire() == raw
    bare = BLOCK.validate_json('{"type":"text","text":"hi"}')
    assert bare.to_wire() == {"type": "text", "text": "hi"}


def test_parsing_does_not_run_the_custom_init() -> None:
    # The __init__ override is flagged as pydantic's base init, so validation stays in Rust.
    for cls in (TextContentBlock, MessagesResponseBody, CacheControl, ToolUseContentBlock):
        assert cls.__pydantic_custom_init__ is False


def test_optional_tag_with_none_default_is_not_sent() -> None:
    tool = ToolDefinition.new("get_weather", "Get the weather")
    assert tool.to_wire() == {
        "name": "get_weather",
        "description": "Get the weather",
        "input_schema": {"type": "object", "properties": {}},
    }


# --- request blocks, one by one --------------------------------------------------------------


CASES: list[tuple[Any, dict[str, Any]]] = [
    (TextContentBlock.new("Hello"), {"type": "text", "text": "Hello"}),
    (
        TextContentBlock.new_with_cache_control("Hello", CacheControl()),
        {"type": "text", "text": "Hello", "cache_control": {"type": "ephemeral"}},
    ),
    (
        TextContentBlock.new_with_cache_control("Hi", CacheControl(ttl=CacheTtl.ONE_HOUR)),
        {"type": "text", "text": "Hi", "cache_control": {"type": "ephemeral", "ttl": "1h"}},
    ),
    (
        ImageContentBlock.from_base64(ImageMediaType.PNG, "iVBORw0KGgo..."),
        {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo..."},
        },
    ),
    (
        ImageContentBlock.from_url("https://example.com/a.jpg", cache_control=CacheControl()),
        {
            "type": "image",
            "source": {"type": "url", "url": "https://example.com/a.jpg"},
            "cache_control": {"type": "ephemeral"},
        },
    ),
    (
        ImageContentBlock.from_file("file_011"),
        {"type": "image", "source": {"type": "file", "file_id": "file_011"}},
    ),
    (
        DocumentContentBlock.from_pdf_base64("JVBERi0x"),
        {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0x"},
        },
    ),
    (
        DocumentContentBlock.from_pdf_url(
            "https://example.com/report.pdf", title="Report", citations=True
        ),
        {
            "type": "document",
            "source": {"type": "url", "url": "https://example.com/report.pdf"},
            "title": "Report",
            "citations": {"enabled": True},
        },
    ),
    (
        DocumentContentBlock.from_text("The grass is green.", context="ctx"),
        {
            "type": "document",
            "source": {"type": "text", "media_type": "text/plain", "data": "The grass is green."},
            "context": "ctx",
        },
    ),
    (
        DocumentContentBlock.from_content([TextContentBlock.new("a"), TextContentBlock.new("b")]),
        {
            "type": "document",
            "source": {
                "type": "content",
                "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
            },
        },
    ),
    (
        DocumentContentBlock.from_content("plain"),
        {"type": "document", "source": {"type": "content", "content": "plain"}},
    ),
    (
        DocumentContentBlock.from_file("file_9", cache_control=CacheControl.one_hour()),
        {
            "type": "document",
            "source": {"type": "file", "file_id": "file_9"},
            "cache_control": {"type": "ephemeral", "ttl": "1h"},
        },
    ),
    (
        SearchResultContentBlock(
            source="https://kb/1",
            title="KB",
            content=[TextContentBlock.new("fact")],
            citations={"enabled": True},
        ),
        {
            "type": "search_result",
            "source": "https://kb/1",
            "title": "KB",
            "content": [{"type": "text", "text": "fact"}],
            "citations": {"enabled": True},
        },
    ),
    (
        ToolUseContentBlock.new("toolu_1", "get_weather", {"location": "Paris, FR"}),
        {
            "type": "tool_use",
            "id": "toolu_1",
            "name": "get_weather",
            "input": {"location": "Paris, FR"},
        },
    ),
    (
        ToolResultContentBlock.new("toolu_1", "14 C"),
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "14 C"},
    ),
    (
        ToolResultContentBlock.new("toolu_1", [TextContentBlock.new("14 C")], is_error=False),
        {
            "type": "tool_result",
            "tool_use_id": "toolu_1",
            "content": [{"type": "text", "text": "14 C"}],
            "is_error": False,
        },
    ),
    (
        ToolResultContentBlock.new("toolu_1", "boom", is_error=True),
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "boom", "is_error": True},
    ),
    (
        ToolResultContentBlock.new("toolu_1"),
        {"type": "tool_result", "tool_use_id": "toolu_1"},
    ),
    (
        ThinkingContentBlock(thinking="Let me think.", signature="EqQB"),
        {"type": "thinking", "thinking": "Let me think.", "signature": "EqQB"},
    ),
    (
        RedactedThinkingContentBlock(data="opaque"),
        {"type": "redacted_thinking", "data": "opaque"},
    ),
    (
        ServerToolUseContentBlock(id="srvtoolu_1", name="web_search", input={"query": "q"}),
        {
            "type": "server_tool_use",
            "id": "srvtoolu_1",
            "name": "web_search",
            "input": {"query": "q"},
        },
    ),
    (
        ServerToolResultContentBlock(
            type="web_search_tool_result",
            tool_use_id="srvtoolu_1",
            content=[{"type": "web_search_result", "url": "u", "title": "t"}],
        ),
        {
            "type": "web_search_tool_result",
            "tool_use_id": "srvtoolu_1",
            "content": [{"type": "web_search_result", "url": "u", "title": "t"}],
        },
    ),
    (
        ContainerUploadContentBlock(file_id="file_1"),
        {"type": "container_upload", "file_id": "file_1"},
    ),
    (
        ToolReferenceContentBlock(tool_name="get_weather"),
        {"type": "tool_reference", "tool_name": "get_weather"},
    ),
]


@pytest.mark.parametrize(("block", "wire"), CASES, ids=[wire["type"] for _, wire in CASES])
def test_block_wire_shape_and_round_trip(block: Any, wire: dict[str, Any]) -> None:
    assert block.to_wire() == wire
    parsed = BLOCK.validate_json(json.dumps(wire))
    assert type(parsed) is type(block)
    assert parsed.to_wire() == wire
    assert parsed == BLOCK.validate_python(wire)


SDK_BLOCK_PARAM: TypeAdapter[Any] = TypeAdapter(sdk.ContentBlockParam)


@pytest.mark.parametrize(("block", "wire"), CASES, ids=[wire["type"] for _, wire in CASES])
def test_sdk_block_param_types_accept_our_blocks(block: Any, wire: dict[str, Any]) -> None:
    if wire["type"] == "tool_reference":  # only valid inside tool_result content
        wire = ToolResultContentBlock.new("toolu_1", [block]).to_wire()
    SDK_BLOCK_PARAM.validate_python(wire)


def test_plain_text_source_always_sends_its_media_type() -> None:
    assert PlainTextSource(data="x").to_wire() == {
        "type": "text",
        "media_type": "text/plain",
        "data": "x",
    }
    assert Base64Source(media_type="image/gif", data="R0lG").to_wire()["type"] == "base64"
    assert UrlSource(url="u").to_wire() == {"type": "url", "url": "u"}


# --- server tool results ---------------------------------------------------------------------


SERVER_RESULTS: list[dict[str, Any]] = [
    {
        "type": "web_fetch_tool_result",
        "tool_use_id": "srvtoolu_2",
        "content": {
            "type": "web_fetch_result",
            "url": "https://example.com",
            "retrieved_at": "2026-11-20T10:00:00Z",
            "content": {"type": "document", "source": {"type": "text", "data": "x"}},
        },
        "caller": {"type": "direct"},
    },
    {
        "type": "code_execution_tool_result",
        "tool_use_id": "srvtoolu_3",
        "content": {
            "type": "code_execution_result",
            "stdout": "hi\n",
            "stderr": "",
            "return_code": 0,
            "content": [{"type": "code_execution_output", "file_id": "file_1"}],
        },
    },
    {
        "type": "bash_code_execution_tool_result",
        "tool_use_id": "srvtoolu_4",
        "content": {"type": "bash_code_execution_tool_result_error", "error_code": "unavailable"},
    },
    {
        "type": "text_editor_code_execution_tool_result",
        "tool_use_id": "srvtoolu_5",
        "content": {"type": "text_editor_code_execution_view_result", "content": "x"},
    },
    {
        "type": "tool_search_tool_result",
        "tool_use_id": "srvtoolu_6",
        "content": {
            "type": "tool_search_tool_search_result",
            "tool_references": [{"type": "tool_reference", "tool_name": "t"}],
        },
    },
    {
        "type": "web_search_tool_result",
        "tool_use_id": "srvtoolu_7",
        "content": {"type": "web_search_tool_result_error", "error_code": "max_uses_exceeded"},
    },
]


@pytest.mark.parametrize("wire", SERVER_RESULTS, ids=[w["type"] for w in SERVER_RESULTS])
def test_server_tool_result_family_is_one_class(wire: dict[str, Any]) -> None:
    block = BLOCK.validate_python(wire)
    assert isinstance(block, ServerToolResultContentBlock)
    assert block.type == wire["type"]
    assert block.to_wire() == wire


def test_server_tool_use_keeps_an_unknown_tool_name_and_caller() -> None:
    wire = {
        "type": "server_tool_use",
        "id": "srvtoolu_1",
        "name": "some_new_tool",
        "input": {},
        "caller": {"type": "code_execution_20260120", "tool_id": "srvtoolu_0"},
    }
    block = BLOCK.validate_python(wire)
    assert isinstance(block, ServerToolUseContentBlock)
    assert block.caller is not None and block.caller.tool_id == "srvtoolu_0"
    assert block.to_wire() == wire


# --- citations -------------------------------------------------------------------------------


def test_text_block_with_citations_round_trips() -> None:
    wire = {
        "type": "text",
        "text": "the grass is green",
        "citations": [
            {
                "type": "char_location",
                "cited_text": "The grass is green.",
                "document_index": 0,
                "document_title": "Doc",
                "start_char_index": 0,
                "end_char_index": 20,
            },
            {
                "type": "page_location",
                "cited_text": "p",
                "document_index": 1,
                "document_title": None,
                "start_page_number": 1,
                "end_page_number": 2,
            },
            {
                "type": "content_block_location",
                "cited_text": "c",
                "document_index": 2,
                "document_title": None,
                "start_block_index": 0,
                "end_block_index": 1,
            },
            {
                "type": "web_search_result_location",
                "cited_text": "w",
                "url": "https://w",
                "title": "W",
                "encrypted_index": "Eo8B",
            },
            {
                "type": "search_result_location",
                "cited_text": "s",
                "search_result_index": 0,
                "source": "https://kb/1",
                "title": "KB",
                "start_block_index": 0,
                "end_block_index": 1,
            },
            {"type": "future_location", "cited_text": "f", "where": [1, 2]},
        ],
    }
    block = BLOCK.validate_python(wire)
    assert isinstance(block, TextContentBlock)
    assert block.citations is not None
    assert isinstance(block.citations[0], CharLocationCitation)
    assert isinstance(block.citations[-1], UnknownCitation)
    assert block.to_wire() == wire
    echoed = TextContentBlock(text="x", citations=block.citations)
    assert echoed.to_wire()["citations"] == wire["citations"]


# --- unknown blocks and fields ---------------------------------------------------------------


UNKNOWN = {
    "type": "mcp_tool_use",
    "id": "mcptoolu_1",
    "name": "search",
    "server_name": "kb",
    "input": {"q": [1, {"deep": None}]},
}


def test_unknown_block_type_keeps_every_field_and_round_trips() -> None:
    block = BLOCK.validate_json(json.dumps(UNKNOWN))
    assert isinstance(block, UnknownContentBlock)
    assert block.type == "mcp_tool_use"
    assert block.model_extra == {k: v for k, v in UNKNOWN.items() if k != "type"}
    assert block.to_wire() == UNKNOWN
    message = Message.model_validate({"role": "assistant", "content": [UNKNOWN]})
    assert message.to_wire() == {"role": "assistant", "content": [UNKNOWN]}


def test_unknown_block_can_be_built_and_sent() -> None:
    block = UnknownContentBlock(type="compaction", content="summary")
    assert block.to_wire() == {"type": "compaction", "content": "summary"}
    assert Message.assistant([block]).to_wire()["content"] == [
        {"type": "compaction", "content": "summary"}
    ]


def test_malformed_known_block_is_an_error_not_an_unknown_block() -> None:
    with pytest.raises(ValidationError) as info:
        BLOCK.validate_python({"type": "text"})
    assert "known" in str(info.value)
    with pytest.raises(ValidationError):
        BLOCK.validate_python({"type": "tool_use", "id": "x", "name": "y"})
    with pytest.raises(ValidationError):
        UnknownContentBlock(type="text", text="x")


def test_block_without_type_is_an_error() -> None:
    with pytest.raises(ValidationError):
        BLOCK.validate_python({"text": "hi"})


def test_unknown_fields_on_known_blocks_are_kept() -> None:
    wire = {
        "type": "tool_use",
        "id": "toolu_1",
        "name": "n",
        "input": {},
        "caller": {"type": "direct", "new_caller_field": 1},
        "brand_new": {"x": True},
    }
    block = BLOCK.validate_python(wire)
    assert isinstance(block, ToolUseContentBlock)
    assert block.to_wire() == wire


def test_unknown_source_inside_a_known_block_round_trips() -> None:
    wire = {"type": "image", "source": {"type": "s3", "bucket": "b", "key": "k"}}
    block = BLOCK.validate_python(wire)
    assert isinstance(block, ImageContentBlock)
    assert isinstance(block.source, UnknownSource)
    assert block.to_wire() == wire


def test_nested_tool_result_content_uses_the_open_union() -> None:
    wire = {
        "type": "tool_result",
        "tool_use_id": "toolu_1",
        "content": [
            {"type": "text", "text": "ok"},
            {"type": "image", "source": {"type": "url", "url": "u"}},
            {"type": "tool_reference", "tool_name": "t"},
            {"type": "browser_state", "tabs": []},
        ],
    }
    block = BLOCK.validate_python(wire)
    assert isinstance(block, ToolResultContentBlock)
    assert isinstance(block.content, list)
    assert isinstance(block.content[3], UnknownContentBlock)
    assert block.to_wire() == wire


# --- messages and system prompts -------------------------------------------------------------


def test_message_constructors() -> None:
    text = TextContentBlock.new("hi")
    assert Message.user("hi").to_wire() == {"role": "user", "content": "hi"}
    assert Message.user(text).to_wire() == {
        "role": "user",
        "content": [{"type": "text", "text": "hi"}],
    }
    assert Message.assistant([text, text]).to_wire()["content"] == [text.to_wire()] * 2
    assert Message.assistant("prefill").role is Role.ASSISTANT
    assert Message.system("be brief").to_wire() == {"role": "system", "content": "be brief"}
    for role in ("user", "assistant", "system"):
        message = Message(role=role, content="x")
        assert message.role == role
        assert isinstance(message.role, Role)
    with pytest.raises(ValidationError):
        Message(role="robot", content="x")


def test_message_and_metadata_take_positional_arguments() -> None:
    assert Message(Role.USER, "hi") == Message.user("hi")
    assert Message("assistant", [TextContentBlock.new("x")]) == Message.assistant(
        TextContentBlock.new("x")
    )
    assert Message(Role.USER, "hi").to_wire() == {"role": "user", "content": "hi"}
    with pytest.raises(TypeError, match="multiple values"):
        Message(Role.USER, "hi", role=Role.ASSISTANT)
    with pytest.raises(TypeError, match="positional"):
        Message(Role.USER, "hi", "extra")  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="positional"):
        TextContentBlock("hi")  # type: ignore[call-arg, misc]


def test_message_text_joins_text_blocks() -> None:
    assert Message.user("plain").text() == "plain"
    message = Message.assistant(
        [
            ThinkingContentBlock(thinking="t", signature="s"),
            TextContentBlock.new("a"),
            TextContentBlock.new("b"),
        ]
    )
    assert message.text() == "ab"


def test_system_prompt_forms() -> None:
    assert SystemPrompt("You are terse.").to_wire() == "You are terse."
    prompt = SystemPrompt.from_text_blocks_with_cache_control(
        [("a", None), ("b", CacheControl(ttl=CacheTtl.ONE_HOUR))]
    )
    assert prompt.to_wire() == [
        {"type": "text", "text": "a"},
        {"type": "text", "text": "b", "cache_control": {"type": "ephemeral", "ttl": "1h"}},
    ]
    blocks = [
        TextContentBlock.new("x"),
        TextContentBlock.new_with_cache_control("y", CacheControl()),
    ]
    assert SystemPrompt.from_content_blocks(blocks).to_wire() == [b.to_wire() for b in blocks]
    assert SystemPrompt.from_content_blocks(blocks).text() == "xy"
    assert SystemPrompt("s").text() == "s"
