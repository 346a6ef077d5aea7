"""The names other layers code against, and the package's import boundary."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from pydantic import TypeAdapter, ValidationError

import clust.messages as messages
from clust.messages import errors

REQUIRED = [
    "MessagesRequestBody",
    "MessagesRequestBuilder",
    "MessagesResponseBody",
    "ClaudeModel",
    "Message",
    "Role",
    "MaxTokens",
    "SystemPrompt",
    "TextContentBlock",
    "ImageContentBlock",
    "DocumentContentBlock",
    "SearchResultContentBlock",
    "ToolUseContentBlock",
    "ToolResultContentBlock",
    "ThinkingContentBlock",
    "RedactedThinkingContentBlock",
    "ServerToolUseContentBlock",
    "ServerToolResultContentBlock",
    "UnknownContentBlock",
    "ContentBlock",
    "CacheControl",
    "CacheControlType",
    "CacheTtl",
    "Temperature",
    "TopP",
    "TopK",
    "StopSequence",
    "Metadata",
    "UserId",
    "ToolDefinition",
    "ServerToolDefinition",
    "ToolChoice",
    "ThinkingConfig",
    "OutputConfig",
    "StreamOption",
    "StopReason",
    "Usage",
    "CacheCreation",
    "ModelLimits",
    "model_limits",
    "register_model",
    "parse_event",
    "StreamEvent",
]


@pytest.mark.parametrize("name", REQUIRED)
def test_required_names_are_exported(name: str) -> None:
    assert name in messages.__all__
    assert getattr(messages, name) is not None


def test_every_exported_name_exists_and_every_error_is_re_exported() -> None:
    for name in messages.__all__:
        assert hasattr(messages, name), name
    assert set(errors.__all__) <= set(messages.__all__)
    assert messages.InvalidParameter is errors.InvalidParameter
    assert len(messages.__all__) == len(set(messages.__all__))


def test_the_package_imports_nothing_else_from_clust() -> None:
    package = Path(messages.__file__).parent
    for path in package.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith("clust.") or node.module.startswith(
                    "clust.messages"
                ), (path.name, node.module)
                assert not node.module.startswith("anthropic"), path.name
            if isinstance(node, ast.Import):
                for alias in node.names:
                    assert not alias.name.startswith(("anthropic", "httpx")), path.name


def test_parsing_never_runs_python_init() -> None:
    for name in messages.__all__:
        value = getattr(messages, name)
        if isinstance(value, type) and hasattr(value, "__pydantic_custom_init__"):
            assert value.__pydantic_custom_init__ is False, name


def test_malformed_server_tool_result_is_an_error() -> None:
    adapter: TypeAdapter[messages.ContentBlock] = TypeAdapter(messages.ContentBlock)
    with pytest.raises(ValidationError):
        adapter.validate_python({"type": "web_search_tool_result", "content": []})
    with pytest.raises(ValidationError):
        adapter.validate_python({"type": "container_upload"})
