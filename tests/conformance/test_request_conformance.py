"""Request conformance: clust's typed API and the official SDK put the same request on the wire.

Each case is one logical request, built once through clust's typed constructors and once as
the plain dicts the official ``anthropic==2.10.0`` SDK takes. Both are sent to the same
FakeClaude; the recorded JSON bodies must be equal (parsed, key order irrelevant) and so must
every header except transport and telemetry noise (user-agent, x-stainless-*, content-length,
host, connection, accept-encoding). The one deliberate difference: clust adds the beta
``extended-cache-ttl-2025-04-11`` when any cache_control has ttl 1h and the SDK does not;
cases that use a 1h TTL declare it and the test asserts exactly that difference. Raw bodies
are also parsed strictly (no duplicate keys), which the parsed comparison alone would miss.

Where the SDK's API differs from clust's for the same wire request the case says so: the
SDK 2.10 has no temperature/top_p/top_k (``extra_body`` on its side) and its beta
count_tokens appends ``token-counting-2024-11-01`` to the caller's betas by itself.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import anthropic
import anyio.to_thread
import pytest

from clust import AsyncClient, Client
from clust.messages import (
    CacheControl,
    CacheTtl,
    CharLocationCitation,
    CitationsConfig,
    ContainerParams,
    ContainerUploadContentBlock,
    ContentBlockLocationCitation,
    DiagnosticsParams,
    DocumentContentBlock,
    Effort,
    ImageContentBlock,
    ImageMediaType,
    Message,
    MessagesRequestBody,
    MessagesRequestBuilder,
    Metadata,
    OutputConfig,
    PageLocationCitation,
    RedactedThinkingContentBlock,
    SearchResultContentBlock,
    SearchResultLocationCitation,
    ServerToolDefinition,
    ServerToolResultContentBlock,
    ServerToolUseContentBlock,
    ServiceTier,
    SkillParams,
    Speed,
    StopSequence,
    StreamOption,
    SystemPrompt,
    Temperature,
    TextContentBlock,
    ThinkingConfig,
    ThinkingContentBlock,
    ThinkingDisplay,
    ToolCaller,
    ToolChoice,
    ToolDefinition,
    ToolResultContentBlock,
    ToolUseContentBlock,
    TopK,
    TopP,
    UserId,
)
from clust.testing import FakeClaude, RecordedRequest

API_KEY = "sk-conformance-key"
MODEL = "claude-sonnet-5-5"
OLDER_MODEL = "claude-haiku-4-5"  # still accepts temperature / top_p / top_k
TTL_BETA = "extended-cache-ttl-2025-04-11"
FULL_EXAMPLE = (
    Path(__file__).resolve().parents[1] / "fixtures" / "api-examples" / "messages-request-full.json"
)

# Headers that carry no request meaning: transport, framing and SDK telemetry.
IGNORED_HEADERS = frozenset(
    {"user-agent", "content-length", "host", "connection", "accept-encoding"}
)

PDF_B64 = "JVBERi0xLjQKJcfsj6IKMSAwIG9iago8PC9UeXBlL0NhdGFsb2c+PgplbmRvYmoK"
PNG_B64 = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9"
    "awAAAABJRU5ErkJggg=="
)
WEATHER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "location": {"type": "string", "description": "City and country"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
    },
    "required": ["location"],
}
HELLO: list[dict[str, Any]] = [{"role": "user", "content": "Hello, Claude"}]


# --- the case table ------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One logical request: clust's typed form and the SDK's keyword arguments."""

    clust: Callable[[], MessagesRequestBody]
    sdk: Mapping[str, Any]
    endpoint: Literal["messages", "stream", "count_tokens"] = "messages"
    betas: list[str] | None = None
    sdk_betas: list[str] | None = None
    """The SDK's ``betas=`` when it differs from clust's (default: the same list)."""
    extra_headers: dict[str, str] | None = None
    sdk_extra_body: dict[str, Any] | None = None
    one_hour_ttl: bool = False
    """The request carries a ttl 1h cache_control: clust (only) adds the TTL beta."""


def body(*, model: str = MODEL, max_tokens: int = 1024, **fields: Any) -> MessagesRequestBody:
    """A typed one-turn body ("Hello, Claude") unless ``messages`` is given."""
    fields.setdefault("messages", [Message.user("Hello, Claude")])
    return MessagesRequestBody(model=model, max_tokens=max_tokens, **fields)


def sdk_kwargs(*, model: str = MODEL, max_tokens: int = 1024, **fields: Any) -> dict[str, Any]:
    """The SDK keyword arguments matching :func:`body`."""
    fields.setdefault("messages", HELLO)
    return {"model": model, "max_tokens": max_tokens, **fields}


def weather_tool(**extra: Any) -> ToolDefinition:
    return ToolDefinition.new("get_weather", "Current weather for a city.", WEATHER_SCHEMA, **extra)


def weather_tool_json(**extra: Any) -> dict[str, Any]:
    return {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "input_schema": WEATHER_SCHEMA,
        **extra,
    }


def full_example_typed() -> MessagesRequestBody:
    """../shared/api/examples/messages-request-full.json, through the typed API."""
    return (
        MessagesRequestBuilder("claude-opus-5-5", 4096)
        .system(
            SystemPrompt.from_text_blocks_with_cache_control(
                [
                    ("You are a terse weather assistant.", None),
                    ("<long reference text here>", CacheControl.one_hour()),
                ]
            )
        )
        .message(
            Message.user(
                [
                    ImageContentBlock.from_base64(ImageMediaType.PNG, "iVBORw0KGgo..."),
                    DocumentContentBlock.from_pdf_url(
                        "https://example.com/report.pdf", title="Report", citations=True
                    ),
                    TextContentBlock.new_with_cache_control(
                        "What's the weather in Paris right now?", CacheControl.ephemeral()
                    ),
                ]
            )
        )
        .message(
            Message.assistant(
                [
                    ThinkingContentBlock(
                        thinking="I should call the tool.", signature="EqQBCgIYAhIM..."
                    ),
                    ToolUseContentBlock.new(
                        "toolu_01A09q90qw90lq917835lq9", "get_weather", {"location": "Paris, FR"}
                    ),
                ]
            )
        )
        .message(
            Message.user(
                ToolResultContentBlock.new(
                    "toolu_01A09q90qw90lq917835lq9",
                    [TextContentBlock.new("14 C, light rain")],
                    is_error=False,
                )
            )
        )
        .tools(
            [
                ToolDefinition.new(
                    "get_weather",
                    "Current weather for a city.",
                    {
                        "type": "object",
                        "properties": {
                            "location": {"type": "string", "description": "City and country"}
                        },
                        "required": ["location"],
                    },
                    cache_control=CacheControl.one_hour(),
                ),
                ServerToolDefinition.new("web_search_20260318", "web_search", max_uses=3),
            ]
        )
        .tool_choice(ToolChoice.auto(disable_parallel_tool_use=True))
        .thinking(ThinkingConfig.adaptive(ThinkingDisplay.SUMMARIZED))
        .output_config(OutputConfig(effort=Effort.HIGH))
        .metadata(Metadata(UserId("3f6c2a9e-user-hash")))
        .stop_sequences([StopSequence("\n\nEND")])
        .service_tier(ServiceTier.AUTO)
        .stream(StreamOption.RETURN_ONCE)
        .build()
    )


TOOL_TURNS_TYPED = [
    Message.user("What's the weather in Paris and in Oslo?"),
    Message.assistant(
        [
            TextContentBlock.new("Let me check both."),
            ToolUseContentBlock.new("toolu_01", "get_weather", {"location": "Paris, FR"}),
            ToolUseContentBlock.new(
                "toolu_02", "get_weather", {"location": "Oslo, NO", "unit": "celsius"}
            ),
        ]
    ),
    Message.user(
        [
            ToolResultContentBlock.new("toolu_01", "14 C, light rain"),
            ToolResultContentBlock.new(
                "toolu_02",
                [
                    TextContentBlock.new("Station offline."),
                    ImageContentBlock.from_url("https://example.com/map.png"),
                ],
                is_error=True,
            ),
            TextContentBlock.new("Summarise please."),
        ]
    ),
]
TOOL_TURNS_JSON: list[dict[str, Any]] = [
    {"role": "user", "content": "What's the weather in Paris and in Oslo?"},
    {
        "role": "assistant",
        "content": [
            {"type": "text", "text": "Let me check both."},
            {
                "type": "tool_use",
                "id": "toolu_01",
                "name": "get_weather",
                "input": {"location": "Paris, FR"},
            },
            {
                "type": "tool_use",
                "id": "toolu_02",
                "name": "get_weather",
                "input": {"location": "Oslo, NO", "unit": "celsius"},
            },
        ],
    },
    {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "toolu_01", "content": "14 C, light rain"},
            {
                "type": "tool_result",
                "tool_use_id": "toolu_02",
                "content": [
                    {"type": "text", "text": "Station offline."},
                    {
                        "type": "image",
                        "source": {"type": "url", "url": "https://example.com/map.png"},
                    },
                ],
                "is_error": True,
            },
            {"type": "text", "text": "Summarise please."},
        ],
    },
]


def _cases() -> dict[str, Case]:
    one_hour = CacheControl.one_hour
    five_minutes = CacheControl.five_minutes
    return {
        "basic_text": Case(clust=lambda: body(), sdk=sdk_kwargs()),
        "prefill_final_assistant_turn": Case(
            clust=lambda: body(
                messages=[
                    Message.user("Pick (A) or (B)."),
                    Message.assistant("The answer is ("),
                ]
            ),
            sdk=sdk_kwargs(
                messages=[
                    {"role": "user", "content": "Pick (A) or (B)."},
                    {"role": "assistant", "content": "The answer is ("},
                ]
            ),
        ),
        "system_string": Case(
            clust=lambda: body(system=SystemPrompt("You are terse.")),
            sdk=sdk_kwargs(system="You are terse."),
        ),
        "system_blocks_cache_1h_and_5m": Case(
            clust=lambda: body(
                system=SystemPrompt.from_text_blocks_with_cache_control(
                    [
                        ("Reference manual, long.", one_hour()),
                        ("Today's notes.", five_minutes()),
                        ("Plain tail.", None),
                        ("Default marker.", CacheControl.ephemeral()),
                    ]
                )
            ),
            sdk=sdk_kwargs(
                system=[
                    {
                        "type": "text",
                        "text": "Reference manual, long.",
                        "cache_control": {"type": "ephemeral", "ttl": "1h"},
                    },
                    {
                        "type": "text",
                        "text": "Today's notes.",
                        "cache_control": {"type": "ephemeral", "ttl": "5m"},
                    },
                    {"type": "text", "text": "Plain tail."},
                    {
                        "type": "text",
                        "text": "Default marker.",
                        "cache_control": {"type": "ephemeral"},
                    },
                ]
            ),
            one_hour_ttl=True,
        ),
        "system_blocks_cache_5m_only": Case(
            clust=lambda: body(
                system=SystemPrompt.from_content_blocks(
                    [TextContentBlock.new_with_cache_control("Rules.", five_minutes())]
                )
            ),
            sdk=sdk_kwargs(
                system=[
                    {
                        "type": "text",
                        "text": "Rules.",
                        "cache_control": {"type": "ephemeral", "ttl": "5m"},
                    }
                ]
            ),
        ),
        "system_role_message": Case(
            clust=lambda: body(
                messages=[Message.system("Answer in French."), Message.user("Hello, Claude")]
            ),
            sdk=sdk_kwargs(
                messages=[
                    {"role": "system", "content": "Answer in French."},
                    {"role": "user", "content": "Hello, Claude"},
                ]
            ),
        ),
        "unicode_and_escapes": Case(
            clust=lambda: body(
                messages=[
                    Message.user(
                        [
                            TextContentBlock.new('Zürich 🎉 "quoted" \\ back\nslash\ttab'),
                            TextContentBlock.new("\u2028line sep \u0000 nul \ud7ff 日本語"),
                        ]
                    )
                ]
            ),
            sdk=sdk_kwargs(
                messages=[
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": 'Zürich 🎉 "quoted" \\ back\nslash\ttab'},
                            {"type": "text", "text": "\u2028line sep \u0000 nul \ud7ff 日本語"},
                        ],
                    }
                ]
            ),
        ),
        "metadata_user_id": Case(
            clust=lambda: body(metadata=Metadata(UserId("3f6c2a9e-user-hash"))),
            sdk=sdk_kwargs(metadata={"user_id": "3f6c2a9e-user-hash"}),
        ),
        "stop_sequences": Case(
            clust=lambda: body(stop_sequences=[StopSequence("\n\nHuman:"), StopSequence("END")]),
            sdk=sdk_kwargs(stop_sequences=["\n\nHuman:", "END"]),
        ),
        "sampling_temperature_top_p_top_k": Case(
            # The SDK 2.10 has no parameters for these any more: extra_body on its side.
            clust=lambda: body(
                model=OLDER_MODEL, temperature=Temperature(0.25), top_p=TopP(0.9), top_k=TopK(40)
            ),
            sdk=sdk_kwargs(model=OLDER_MODEL),
            sdk_extra_body={"temperature": 0.25, "top_p": 0.9, "top_k": 40},
        ),
        "custom_tools_with_cache_control": Case(
            clust=lambda: body(
                tools=[
                    ToolDefinition.new("get_time", input_schema={"type": "object"}),
                    weather_tool(cache_control=five_minutes()),
                ]
            ),
            sdk=sdk_kwargs(
                tools=[
                    {"name": "get_time", "input_schema": {"type": "object"}},
                    weather_tool_json(cache_control={"type": "ephemeral", "ttl": "5m"}),
                ]
            ),
        ),
        "custom_tool_all_options": Case(
            clust=lambda: body(
                tools=[
                    ToolDefinition(
                        type="custom",
                        name="get_weather",
                        description="Current weather for a city.",
                        input_schema=WEATHER_SCHEMA,
                        strict=True,
                        defer_loading=True,
                        allowed_callers=["direct", "code_execution_20260521"],
                        eager_input_streaming=True,
                        input_examples=[{"location": "Paris, FR"}, {"location": "Oslo, NO"}],
                    )
                ]
            ),
            sdk=sdk_kwargs(
                tools=[
                    weather_tool_json(
                        type="custom",
                        strict=True,
                        defer_loading=True,
                        allowed_callers=["direct", "code_execution_20260521"],
                        eager_input_streaming=True,
                        input_examples=[{"location": "Paris, FR"}, {"location": "Oslo, NO"}],
                    )
                ]
            ),
        ),
        "custom_tool_default_schema_and_1h_cache": Case(
            clust=lambda: body(
                tools=[ToolDefinition.new("ping", "No parameters.", cache_control=one_hour())]
            ),
            sdk=sdk_kwargs(
                tools=[
                    {
                        "name": "ping",
                        "description": "No parameters.",
                        "input_schema": {"type": "object", "properties": {}},
                        "cache_control": {"type": "ephemeral", "ttl": "1h"},
                    }
                ]
            ),
            one_hour_ttl=True,
        ),
        "server_tools": Case(
            clust=lambda: body(
                tools=[
                    ServerToolDefinition.new(
                        "web_search_20260318",
                        "web_search",
                        max_uses=5,
                        allowed_domains=["example.com", "docs.example.org"],
                        user_location={
                            "type": "approximate",
                            "city": "Paris",
                            "country": "FR",
                            "timezone": "Europe/Paris",
                        },
                    ),
                    ServerToolDefinition.new("code_execution_20260521", "code_execution"),
                    ServerToolDefinition.new("bash_20250124", "bash"),
                    ServerToolDefinition.new(
                        "text_editor_20250728", "str_replace_based_edit_tool", max_characters=10000
                    ),
                    ServerToolDefinition(
                        type="memory_20250818", name="memory", cache_control=five_minutes()
                    ),
                    ServerToolDefinition.new(
                        "web_fetch_20260318",
                        "web_fetch",
                        citations={"enabled": True},
                        max_content_tokens=50000,
                        blocked_domains=["private.example.com"],
                    ),
                ]
            ),
            sdk=sdk_kwargs(
                tools=[
                    {
                        "type": "web_search_20260318",
                        "name": "web_search",
                        "max_uses": 5,
                        "allowed_domains": ["example.com", "docs.example.org"],
                        "user_location": {
                            "type": "approximate",
                            "city": "Paris",
                            "country": "FR",
                            "timezone": "Europe/Paris",
                        },
                    },
                    {"type": "code_execution_20260521", "name": "code_execution"},
                    {"type": "bash_20250124", "name": "bash"},
                    {
                        "type": "text_editor_20250728",
                        "name": "str_replace_based_edit_tool",
                        "max_characters": 10000,
                    },
                    {
                        "type": "memory_20250818",
                        "name": "memory",
                        "cache_control": {"type": "ephemeral", "ttl": "5m"},
                    },
                    {
                        "type": "web_fetch_20260318",
                        "name": "web_fetch",
                        "citations": {"enabled": True},
                        "max_content_tokens": 50000,
                        "blocked_domains": ["private.example.com"],
                    },
                ]
            ),
        ),
        "tool_choice_auto_no_parallel": Case(
            clust=lambda: body(
                tools=[weather_tool()],
                tool_choice=ToolChoice.auto(disable_parallel_tool_use=True),
            ),
            sdk=sdk_kwargs(
                tools=[weather_tool_json()],
                tool_choice={"type": "auto", "disable_parallel_tool_use": True},
            ),
        ),
        "tool_choice_any": Case(
            clust=lambda: body(tools=[weather_tool()], tool_choice=ToolChoice.any()),
            sdk=sdk_kwargs(tools=[weather_tool_json()], tool_choice={"type": "any"}),
        ),
        "tool_choice_none": Case(
            clust=lambda: body(tools=[weather_tool()], tool_choice=ToolChoice.none()),
            sdk=sdk_kwargs(tools=[weather_tool_json()], tool_choice={"type": "none"}),
        ),
        "tool_choice_tool_no_parallel": Case(
            clust=lambda: body(
                tools=[weather_tool()],
                tool_choice=ToolChoice.tool("get_weather", disable_parallel_tool_use=False),
            ),
            sdk=sdk_kwargs(
                tools=[weather_tool_json()],
                tool_choice={
                    "type": "tool",
                    "name": "get_weather",
                    "disable_parallel_tool_use": False,
                },
            ),
        ),
        "thinking_enabled": Case(
            clust=lambda: body(max_tokens=4096, thinking=ThinkingConfig.enabled(2048)),
            sdk=sdk_kwargs(max_tokens=4096, thinking={"type": "enabled", "budget_tokens": 2048}),
        ),
        "thinking_disabled": Case(
            clust=lambda: body(thinking=ThinkingConfig.disabled()),
            sdk=sdk_kwargs(thinking={"type": "disabled"}),
        ),
        "thinking_adaptive_display_omitted": Case(
            clust=lambda: body(thinking=ThinkingConfig.adaptive(ThinkingDisplay.OMITTED)),
            sdk=sdk_kwargs(thinking={"type": "adaptive", "display": "omitted"}),
        ),
        "thinking_between_tools": Case(
            clust=lambda: body(thinking=ThinkingConfig.between_tools()),
            sdk=sdk_kwargs(thinking={"type": "between_tools"}),
        ),
        "output_config_effort_and_json_schema": Case(
            clust=lambda: body(
                output_config=OutputConfig.with_json_schema(
                    {
                        "type": "object",
                        "properties": {"answer": {"type": "string"}},
                        "required": ["answer"],
                        "additionalProperties": False,
                    },
                    effort=Effort.LOW,
                )
            ),
            sdk=sdk_kwargs(
                output_config={
                    "effort": "low",
                    "format": {
                        "type": "json_schema",
                        "schema": {
                            "type": "object",
                            "properties": {"answer": {"type": "string"}},
                            "required": ["answer"],
                            "additionalProperties": False,
                        },
                    },
                }
            ),
        ),
        "service_tier": Case(
            clust=lambda: body(service_tier=ServiceTier.STANDARD_ONLY),
            sdk=sdk_kwargs(service_tier="standard_only"),
        ),
        "container_string": Case(
            clust=lambda: body(container="container_011CQ"),
            sdk=sdk_kwargs(container="container_011CQ"),
        ),
        "container_object": Case(
            clust=lambda: body(
                container=ContainerParams(
                    id="container_011CQ",
                    skills=[
                        SkillParams(skill_id="pptx", type="anthropic", version="latest"),
                        SkillParams(skill_id="skill_01abc", type="custom"),
                    ],
                )
            ),
            sdk=sdk_kwargs(
                container={
                    "id": "container_011CQ",
                    "skills": [
                        {"skill_id": "pptx", "type": "anthropic", "version": "latest"},
                        {"skill_id": "skill_01abc", "type": "custom"},
                    ],
                }
            ),
        ),
        "inference_geo": Case(
            clust=lambda: body(inference_geo="us"), sdk=sdk_kwargs(inference_geo="us")
        ),
        "speed_fast": Case(clust=lambda: body(speed=Speed.FAST), sdk=sdk_kwargs(speed="fast")),
        "diagnostics_previous_message_id": Case(
            clust=lambda: body(diagnostics=DiagnosticsParams(previous_message_id="msg_01PREVIOUS")),
            sdk=sdk_kwargs(diagnostics={"previous_message_id": "msg_01PREVIOUS"}),
        ),
        "top_level_cache_control_5m": Case(
            clust=lambda: body(cache_control=CacheControl.ephemeral()),
            sdk=sdk_kwargs(cache_control={"type": "ephemeral"}),
        ),
        "top_level_cache_control_1h": Case(
            clust=lambda: body(cache_control=CacheControl.ephemeral(CacheTtl.ONE_HOUR)),
            sdk=sdk_kwargs(cache_control={"type": "ephemeral", "ttl": "1h"}),
            one_hour_ttl=True,
        ),
        "images_base64_url_file": Case(
            clust=lambda: body(
                messages=[
                    Message.user(
                        [
                            ImageContentBlock.from_base64(ImageMediaType.PNG, PNG_B64),
                            ImageContentBlock.from_url(
                                "https://example.com/cat.jpg", cache_control=five_minutes()
                            ),
                            ImageContentBlock.from_file("file_011CNha8iCJcU1wXNR6q4V8w"),
                            TextContentBlock.new("Compare these images."),
                        ]
                    )
                ]
            ),
            sdk=sdk_kwargs(
                messages=[
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "image",
                                "source": {
                                    "type": "base64",
                                    "media_type": "image/png",
                                    "data": PNG_B64,
                                },
                            },
                            {
                                "type": "image",
                                "source": {"type": "url", "url": "https://example.com/cat.jpg"},
                                "cache_control": {"type": "ephemeral", "ttl": "5m"},
                            },
                            {
                                "type": "image",
                                "source": {
                                    "type": "file",
                                    "file_id": "file_011CNha8iCJcU1wXNR6q4V8w",
                                },
                            },
                            {"type": "text", "text": "Compare these images."},
                        ],
                    }
                ]
            ),
        ),
        "documents_all_sources": Case(
            clust=lambda: body(
                messages=[
                    Message.user(
                        [
                            DocumentContentBlock.from_pdf_base64(
                                PDF_B64, title="Annual report", context="FY2025", citations=True
                            ),
                            DocumentContentBlock.from_pdf_url(
                                "https://example.com/paper.pdf", citations=False
                            ),
                            DocumentContentBlock.from_text(
                                "The grass is green. The sky is blue.",
                                title="Facts",
                                citations=CitationsConfig(enabled=True),
                            ),
                            DocumentContentBlock.from_content(
                                [
                                    TextContentBlock.new("First chunk."),
                                    TextContentBlock.new("Second chunk."),
                                ],
                                title="Chunks",
                                context="Split by paragraph",
                                citations=True,
                            ),
                            DocumentContentBlock.from_file(
                                "file_011CPMxVD3fHLUhvTqtsQA5w",
                                title="Uploaded",
                                context="From the Files API",
                                citations=True,
                                cache_control=one_hour(),
                            ),
                            TextContentBlock.new("Summarise the documents."),
                        ]
                    )
                ]
            ),
            sdk=sdk_kwargs(
                messages=[
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "document",
                                "source": {
                                    "type": "base64",
                                    "media_type": "application/pdf",
                                    "data": PDF_B64,
                                },
                                "title": "Annual report",
                                "context": "FY2025",
                                "citations": {"enabled": True},
                            },
                            {
                                "type": "document",
                                "source": {"type": "url", "url": "https://example.com/paper.pdf"},
                                "citations": {"enabled": False},
                            },
                            {
                                "type": "document",
                                "source": {
                                    "type": "text",
                                    "media_type": "text/plain",
                                    "data": "The grass is green. The sky is blue.",
                                },
                                "title": "Facts",
                                "citations": {"enabled": True},
                            },
                            {
                                "type": "document",
                                "source": {
                                    "type": "content",
                                    "content": [
                                        {"type": "text", "text": "First chunk."},
                                        {"type": "text", "text": "Second chunk."},
                                    ],
                                },
                                "title": "Chunks",
                                "context": "Split by paragraph",
                                "citations": {"enabled": True},
                            },
                            {
                                "type": "document",
                                "source": {
                                    "type": "file",
                                    "file_id": "file_011CPMxVD3fHLUhvTqtsQA5w",
                                },
                                "title": "Uploaded",
                                "context": "From the Files API",
                                "citations": {"enabled": True},
                                "cache_control": {"type": "ephemeral", "ttl": "1h"},
                            },
                            {"type": "text", "text": "Summarise the documents."},
                        ],
                    }
                ]
            ),
            one_hour_ttl=True,
        ),
        "search_result_block": Case(
            clust=lambda: body(
                messages=[
                    Message.user(
                        [
                            SearchResultContentBlock(
                                source="https://kb.example.com/article/42",
                                title="Resetting a password",
                                content=[
                                    TextContentBlock.new("Open Settings."),
                                    TextContentBlock.new("Click 'Reset password'."),
                                ],
                                citations=CitationsConfig(enabled=True),
                            ),
                            TextContentBlock.new("How do I reset my password?"),
                        ]
                    )
                ]
            ),
            sdk=sdk_kwargs(
                messages=[
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "search_result",
                                "source": "https://kb.example.com/article/42",
                                "title": "Resetting a password",
                                "content": [
                                    {"type": "text", "text": "Open Settings."},
                                    {"type": "text", "text": "Click 'Reset password'."},
                                ],
                                "citations": {"enabled": True},
                            },
                            {"type": "text", "text": "How do I reset my password?"},
                        ],
                    }
                ]
            ),
        ),
        "multi_turn_tool_use_and_results": Case(
            clust=lambda: body(tools=[weather_tool()], messages=TOOL_TURNS_TYPED),
            sdk=sdk_kwargs(tools=[weather_tool_json()], messages=TOOL_TURNS_JSON),
        ),
        "thinking_and_redacted_thinking_echoed_back": Case(
            clust=lambda: body(
                max_tokens=4096,
                thinking=ThinkingConfig.enabled(1024),
                tools=[weather_tool()],
                messages=[
                    Message.user("Weather in Paris?"),
                    Message.assistant(
                        [
                            ThinkingContentBlock(
                                thinking="The user wants Paris weather.", signature="EqQBCgIYAh=="
                            ),
                            RedactedThinkingContentBlock(data="EmwKAhgBEgy3va3pzix/LafPsn4a"),
                            ToolUseContentBlock.new(
                                "toolu_th", "get_weather", {"location": "Paris, FR"}
                            ),
                        ]
                    ),
                    Message.user(ToolResultContentBlock.new("toolu_th", "14 C")),
                ],
            ),
            sdk=sdk_kwargs(
                max_tokens=4096,
                thinking={"type": "enabled", "budget_tokens": 1024},
                tools=[weather_tool_json()],
                messages=[
                    {"role": "user", "content": "Weather in Paris?"},
                    {
                        "role": "assistant",
                        "content": [
                            {
                                "type": "thinking",
                                "thinking": "The user wants Paris weather.",
                                "signature": "EqQBCgIYAh==",
                            },
                            {
                                "type": "redacted_thinking",
                                "data": "EmwKAhgBEgy3va3pzix/LafPsn4a",
                            },
                            {
                                "type": "tool_use",
                                "id": "toolu_th",
                                "name": "get_weather",
                                "input": {"location": "Paris, FR"},
                            },
                        ],
                    },
                    {
                        "role": "user",
                        "content": [
                            {"type": "tool_result", "tool_use_id": "toolu_th", "content": "14 C"}
                        ],
                    },
                ],
            ),
        ),
        "text_with_citations_echoed_back": Case(
            clust=lambda: body(
                messages=[
                    Message.user(
                        [
                            DocumentContentBlock.from_text(
                                "The grass is green.", title="Facts", citations=True
                            ),
                            TextContentBlock.new("What colour is the grass?"),
                        ]
                    ),
                    Message.assistant(
                        [
                            TextContentBlock(
                                text="The grass is green.",
                                citations=[
                                    CharLocationCitation(
                                        cited_text="The grass is green.",
                                        document_index=0,
                                        document_title="Facts",
                                        start_char_index=0,
                                        end_char_index=19,
                                    ),
                                    PageLocationCitation(
                                        cited_text="Green grass",
                                        document_index=1,
                                        document_title=None,
                                        start_page_number=2,
                                        end_page_number=3,
                                    ),
                                    ContentBlockLocationCitation(
                                        cited_text="First chunk.",
                                        document_index=2,
                                        start_block_index=0,
                                        end_block_index=1,
                                    ),
                                    SearchResultLocationCitation(
                                        cited_text="Open Settings.",
                                        search_result_index=0,
                                        source="https://kb.example.com/article/42",
                                        title="Resetting a password",
                                        start_block_index=0,
                                        end_block_index=1,
                                    ),
                                ],
                            )
                        ]
                    ),
                    Message.user("Thanks. And the sky?"),
                ]
            ),
            sdk=sdk_kwargs(
                messages=[
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "document",
                                "source": {
                                    "type": "text",
                                    "media_type": "text/plain",
                                    "data": "The grass is green.",
                                },
                                "title": "Facts",
                                "citations": {"enabled": True},
                            },
                            {"type": "text", "text": "What colour is the grass?"},
                        ],
                    },
                    {
                        "role": "assistant",
                        "content": [
                            {
                                "type": "text",
                                "text": "The grass is green.",
                                "citations": [
                                    {
                                        "type": "char_location",
                                        "cited_text": "The grass is green.",
                                        "document_index": 0,
                                        "document_title": "Facts",
                                        "start_char_index": 0,
                                        "end_char_index": 19,
                                    },
                                    {
                                        "type": "page_location",
                                        "cited_text": "Green grass",
                                        "document_index": 1,
                                        "document_title": None,
                                        "start_page_number": 2,
                                        "end_page_number": 3,
                                    },
                                    {
                                        "type": "content_block_location",
                                        "cited_text": "First chunk.",
                                        "document_index": 2,
                                        "start_block_index": 0,
                                        "end_block_index": 1,
                                    },
                                    {
                                        "type": "search_result_location",
                                        "cited_text": "Open Settings.",
                                        "search_result_index": 0,
                                        "source": "https://kb.example.com/article/42",
                                        "title": "Resetting a password",
                                        "start_block_index": 0,
                                        "end_block_index": 1,
                                    },
                                ],
                            }
                        ],
                    },
                    {"role": "user", "content": "Thanks. And the sky?"},
                ]
            ),
        ),
        "server_tool_blocks_echoed_back": Case(
            clust=lambda: body(
                tools=[ServerToolDefinition.new("web_search_20260318", "web_search")],
                messages=[
                    Message.user("Who won the match?"),
                    Message.assistant(
                        [
                            ServerToolUseContentBlock(
                                id="srvtoolu_01",
                                name="web_search",
                                input={"query": "match result"},
                                caller=ToolCaller(type="direct"),
                            ),
                            ServerToolResultContentBlock(
                                type="web_search_tool_result",
                                tool_use_id="srvtoolu_01",
                                content=[
                                    {
                                        "type": "web_search_result",
                                        "url": "https://news.example.com/match",
                                        "title": "Match report",
                                        "encrypted_content": "EqgfCioIARgBIiQ3",
                                        "page_age": None,
                                    }
                                ],
                            ),
                            TextContentBlock.new("The home team won."),
                        ]
                    ),
                    Message.user("By how much?"),
                ],
            ),
            sdk=sdk_kwargs(
                tools=[{"type": "web_search_20260318", "name": "web_search"}],
                messages=[
                    {"role": "user", "content": "Who won the match?"},
                    {
                        "role": "assistant",
                        "content": [
                            {
                                "type": "server_tool_use",
                                "id": "srvtoolu_01",
                                "name": "web_search",
                                "input": {"query": "match result"},
                                "caller": {"type": "direct"},
                            },
                            {
                                "type": "web_search_tool_result",
                                "tool_use_id": "srvtoolu_01",
                                "content": [
                                    {
                                        "type": "web_search_result",
                                        "url": "https://news.example.com/match",
                                        "title": "Match report",
                                        "encrypted_content": "EqgfCioIARgBIiQ3",
                                        "page_age": None,
                                    }
                                ],
                            },
                            {"type": "text", "text": "The home team won."},
                        ],
                    },
                    {"role": "user", "content": "By how much?"},
                ],
            ),
        ),
        "container_upload_block": Case(
            clust=lambda: body(
                container="container_011CQ",
                tools=[ServerToolDefinition.new("code_execution_20260521", "code_execution")],
                messages=[
                    Message.user(
                        [
                            ContainerUploadContentBlock(file_id="file_011CNha8"),
                            TextContentBlock.new("Plot the CSV."),
                        ]
                    )
                ],
            ),
            sdk=sdk_kwargs(
                container="container_011CQ",
                tools=[{"type": "code_execution_20260521", "name": "code_execution"}],
                messages=[
                    {
                        "role": "user",
                        "content": [
                            {"type": "container_upload", "file_id": "file_011CNha8"},
                            {"type": "text", "text": "Plot the CSV."},
                        ],
                    }
                ],
            ),
        ),
        "tool_result_with_1h_cache_control": Case(
            clust=lambda: body(
                tools=[weather_tool()],
                messages=[
                    Message.user("Weather in Paris?"),
                    Message.assistant(
                        ToolUseContentBlock.new("toolu_c", "get_weather", {"location": "Paris"})
                    ),
                    Message.user(
                        ToolResultContentBlock.new(
                            "toolu_c", "14 C", cache_control=CacheControl.one_hour()
                        )
                    ),
                ],
            ),
            sdk=sdk_kwargs(
                tools=[weather_tool_json()],
                messages=[
                    {"role": "user", "content": "Weather in Paris?"},
                    {
                        "role": "assistant",
                        "content": [
                            {
                                "type": "tool_use",
                                "id": "toolu_c",
                                "name": "get_weather",
                                "input": {"location": "Paris"},
                            }
                        ],
                    },
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "tool_result",
                                "tool_use_id": "toolu_c",
                                "content": "14 C",
                                "cache_control": {"type": "ephemeral", "ttl": "1h"},
                            }
                        ],
                    },
                ],
            ),
            one_hour_ttl=True,
        ),
        "document_content_source_with_nested_1h_cache_control": Case(
            clust=lambda: body(
                messages=[
                    Message.user(
                        [
                            DocumentContentBlock.from_content(
                                [
                                    TextContentBlock.new("Chapter one."),
                                    TextContentBlock.new_with_cache_control(
                                        "Chapter two.", CacheControl.one_hour()
                                    ),
                                ],
                                title="Book",
                            ),
                            TextContentBlock.new("Summarise the book."),
                        ]
                    )
                ]
            ),
            sdk=sdk_kwargs(
                messages=[
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "document",
                                "source": {
                                    "type": "content",
                                    "content": [
                                        {"type": "text", "text": "Chapter one."},
                                        {
                                            "type": "text",
                                            "text": "Chapter two.",
                                            "cache_control": {"type": "ephemeral", "ttl": "1h"},
                                        },
                                    ],
                                },
                                "title": "Book",
                            },
                            {"type": "text", "text": "Summarise the book."},
                        ],
                    }
                ]
            ),
            one_hour_ttl=True,
        ),
        "stream_true": Case(
            clust=lambda: body(system=SystemPrompt("You are terse.")),
            sdk=sdk_kwargs(system="You are terse."),
            endpoint="stream",
        ),
        "stream_true_with_betas_and_extra_body": Case(
            clust=lambda: body(
                stream=StreamOption.RETURN_STREAM,
                cache_control=CacheControl.one_hour(),
                extra_body={"context_management": {"edits": []}},
            ),
            sdk=sdk_kwargs(cache_control={"type": "ephemeral", "ttl": "1h"}),
            sdk_extra_body={"context_management": {"edits": []}},
            betas=["fast-mode-2026-02-01"],
            endpoint="stream",
            one_hour_ttl=True,
        ),
        "stream_with_stream_true_in_extra_body": Case(
            clust=lambda: body(extra_body={"stream": True}),
            sdk=sdk_kwargs(),
            sdk_extra_body={"stream": True},
            endpoint="stream",
        ),
        "one_hour_ttl_given_through_extra_body": Case(
            clust=lambda: body(extra_body={"cache_control": {"type": "ephemeral", "ttl": "1h"}}),
            sdk=sdk_kwargs(),
            sdk_extra_body={"cache_control": {"type": "ephemeral", "ttl": "1h"}},
            one_hour_ttl=True,
        ),
        "explicit_stream_false": Case(
            clust=lambda: body(stream=False), sdk=sdk_kwargs(stream=False)
        ),
        "count_tokens": Case(
            clust=lambda: body(
                system=SystemPrompt("You are terse."),
                tools=[weather_tool(cache_control=one_hour())],
                tool_choice=ToolChoice.auto(),
                thinking=ThinkingConfig.adaptive(),
                output_config=OutputConfig(effort=Effort.MEDIUM),
                speed=Speed.STANDARD,
                cache_control=CacheControl.ephemeral(),
                messages=TOOL_TURNS_TYPED,
            ),
            # count_tokens takes no max_tokens: the SDK signature has no such parameter.
            sdk={
                "model": MODEL,
                "system": "You are terse.",
                "tools": [weather_tool_json(cache_control={"type": "ephemeral", "ttl": "1h"})],
                "tool_choice": {"type": "auto"},
                "thinking": {"type": "adaptive"},
                "output_config": {"effort": "medium"},
                "speed": "standard",
                "cache_control": {"type": "ephemeral"},
                "messages": TOOL_TURNS_JSON,
            },
            endpoint="count_tokens",
            one_hour_ttl=True,
        ),
        "count_tokens_with_betas": Case(
            # The SDK's beta count_tokens appends the legacy "token-counting-2024-11-01" to
            # the caller's betas by itself; clust sends only what it is given, so the same
            # wire request asks clust for both betas and the SDK for the first one.
            clust=lambda: body(),
            sdk={"model": MODEL, "messages": HELLO},
            endpoint="count_tokens",
            betas=["fast-mode-2026-02-01", "token-counting-2024-11-01"],
            sdk_betas=["fast-mode-2026-02-01"],
        ),
        "count_tokens_unknown_field_passthrough": Case(
            clust=lambda: body(extra_body={"context_management": {"edits": []}}),
            sdk={"model": MODEL, "messages": HELLO},
            sdk_extra_body={"context_management": {"edits": []}},
            endpoint="count_tokens",
        ),
        "user_betas": Case(
            clust=lambda: body(),
            sdk=sdk_kwargs(),
            betas=["fast-mode-2026-02-01", "context-management-2025-06-27"],
        ),
        "user_betas_merged_with_1h_ttl": Case(
            clust=lambda: body(cache_control=CacheControl.one_hour()),
            sdk=sdk_kwargs(cache_control={"type": "ephemeral", "ttl": "1h"}),
            betas=["fast-mode-2026-02-01"],
            one_hour_ttl=True,
        ),
        "extra_headers": Case(
            clust=lambda: body(),
            sdk=sdk_kwargs(),
            extra_headers={"x-trace-id": "trace-123", "anthropic-workspace-id": "wrkspc_01"},
        ),
        "unknown_field_passthrough": Case(
            clust=lambda: body(
                extra_body={"context_management": {"edits": [{"type": "clear_tool_uses"}]}}
            ),
            sdk=sdk_kwargs(),
            sdk_extra_body={"context_management": {"edits": [{"type": "clear_tool_uses"}]}},
        ),
        "extra_body_overrides_typed_field": Case(
            clust=lambda: body(max_tokens=1024, extra_body={"max_tokens": 2048}),
            sdk=sdk_kwargs(max_tokens=1024),
            sdk_extra_body={"max_tokens": 2048},
        ),
        "full_example": Case(
            clust=full_example_typed,
            sdk=json.loads(FULL_EXAMPLE.read_text(encoding="utf-8")),
            one_hour_ttl=True,
        ),
    }


CASES = _cases()


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeClaude]:
    with FakeClaude() as fake:
        yield fake


@pytest.fixture
def fake(fake_server: FakeClaude) -> FakeClaude:
    fake_server.reset()
    return fake_server


@pytest.fixture(scope="module")
def clust_client(fake_server: FakeClaude) -> Iterator[Client]:
    with Client(api_key=API_KEY, base_url=fake_server.base_url, max_retries=0) as client:
        yield client


@pytest.fixture(scope="module")
def sdk_client(fake_server: FakeClaude) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(
        api_key=API_KEY, base_url=fake_server.base_url, max_retries=0
    ) as client:
        yield client


# --- sending -------------------------------------------------------------------------------


def send_clust(client: Client, case: Case) -> None:
    request = case.clust()
    if case.endpoint == "count_tokens":
        client.count_tokens(request, betas=case.betas, extra_headers=case.extra_headers)
    elif case.endpoint == "stream":
        with client.create_a_message_stream(
            request, betas=case.betas, extra_headers=case.extra_headers
        ) as stream:
            stream.get_final_message()
    else:
        client.create_a_message(request, betas=case.betas, extra_headers=case.extra_headers)


async def send_clust_async(client: AsyncClient, case: Case) -> None:
    request = case.clust()
    if case.endpoint == "count_tokens":
        await client.count_tokens(request, betas=case.betas, extra_headers=case.extra_headers)
    elif case.endpoint == "stream":
        async with client.create_a_message_stream(
            request, betas=case.betas, extra_headers=case.extra_headers
        ) as stream:
            await stream.get_final_message()
    else:
        await client.create_a_message(request, betas=case.betas, extra_headers=case.extra_headers)


def send_sdk(sdk: anthropic.Anthropic, case: Case) -> None:
    options: dict[str, Any] = {}
    if case.extra_headers:
        options["extra_headers"] = case.extra_headers
    if case.sdk_extra_body:
        options["extra_body"] = case.sdk_extra_body
    kwargs = {**case.sdk, **options}
    betas = case.betas if case.sdk_betas is None else case.sdk_betas
    if betas:
        kwargs["betas"] = betas
    messages: Any = sdk.beta.messages if betas else sdk.messages
    if case.endpoint == "count_tokens":
        messages.count_tokens(**kwargs)
    elif case.endpoint == "stream":
        with messages.stream(**kwargs) as stream:
            stream.get_final_message()
    else:
        messages.create(**kwargs)


def meaningful_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {
        name: value
        for name, value in headers.items()
        if name not in IGNORED_HEADERS and not name.startswith("x-stainless-")
    }


def beta_list(value: str | None) -> list[str]:
    return [] if value is None else value.split(",")


# --- the test ------------------------------------------------------------------------------


def test_there_are_at_least_25_logical_requests() -> None:
    assert len(CASES) >= 25


def params(names: Iterable[str]) -> list[Any]:
    """Case names as pytest params."""
    return list(names)


def strict_json(raw: bytes) -> Any:
    """Parse a body, refusing duplicate object keys (RFC 8259: names SHOULD be unique; a
    lenient parser silently keeps the last one, which would hide such a body from ``body``)."""

    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        names = [name for name, _ in pairs]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        assert not duplicates, f"duplicate JSON keys {duplicates} in {raw!r}"
        return dict(pairs)

    return json.loads(raw, object_pairs_hook=unique)


def assert_same_request(case: Case, ours: RecordedRequest, theirs: RecordedRequest) -> None:
    assert (ours.method, ours.path) == (theirs.method, theirs.path)
    assert ours.body == theirs.body
    assert strict_json(ours.raw) == strict_json(theirs.raw)

    our_headers = meaningful_headers(ours.headers)
    their_headers = meaningful_headers(theirs.headers)
    our_betas = beta_list(our_headers.pop("anthropic-beta", None))
    their_betas = beta_list(their_headers.pop("anthropic-beta", None))
    assert our_headers == their_headers
    assert our_headers["authorization"] == f"Bearer {API_KEY}"
    assert our_headers["content-type"] == "application/json"
    assert our_headers["accept"] == "application/json"
    if case.one_hour_ttl:
        # The single deliberate difference: clust appends the 1h TTL beta, the SDK does not.
        assert TTL_BETA not in their_betas
        assert our_betas == [*their_betas, TTL_BETA]
    else:
        assert our_betas == their_betas


@pytest.mark.parametrize("name", params(CASES))
def test_clust_and_sdk_send_the_same_request(
    name: str, fake: FakeClaude, clust_client: Client, sdk_client: anthropic.Anthropic
) -> None:
    case = CASES[name]
    send_clust(clust_client, case)
    send_sdk(sdk_client, case)
    ours, theirs = fake.requests
    assert_same_request(case, ours, theirs)


# The async client builds requests through the same protocol layer: a representative subset
# (every endpoint, betas, extra headers and body, the 1h TTL rule) keeps it honest.
ASYNC_CASES = [
    "basic_text",
    "full_example",
    "user_betas_merged_with_1h_ttl",
    "extra_headers",
    "unknown_field_passthrough",
    "count_tokens",
    "stream_true_with_betas_and_extra_body",
]


@pytest.mark.anyio
@pytest.mark.parametrize("name", params(ASYNC_CASES))
async def test_async_client_and_sdk_send_the_same_request(
    name: str, fake: FakeClaude, sdk_client: anthropic.Anthropic
) -> None:
    case = CASES[name]
    async with AsyncClient(api_key=API_KEY, base_url=fake.base_url, max_retries=0) as client:
        await send_clust_async(client, case)
    await anyio.to_thread.run_sync(send_sdk, sdk_client, case)
    ours, theirs = fake.requests
    assert_same_request(case, ours, theirs)
