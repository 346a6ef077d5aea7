"""A tool's return value as the ``content`` of its ``tool_result`` block."""

from __future__ import annotations

from typing import Any

from pydantic_core import PydanticSerializationError, to_json

from clust.messages.blocks import (
    ContainerUploadContentBlock,
    ContentBlock,
    DocumentContentBlock,
    ImageContentBlock,
    RedactedThinkingContentBlock,
    SearchResultContentBlock,
    ServerToolResultContentBlock,
    ServerToolUseContentBlock,
    TextContentBlock,
    ThinkingContentBlock,
    ToolReferenceContentBlock,
    ToolResultContentBlock,
    ToolUseContentBlock,
    UnknownContentBlock,
)

__all__ = ["tool_result_content"]

# The block types the API takes inside tool_result content; unknown types are newer
# ones (browser state, ...) and go through as they are.
_RESULT_BLOCKS = (
    TextContentBlock,
    ImageContentBlock,
    DocumentContentBlock,
    SearchResultContentBlock,
    ToolReferenceContentBlock,
    UnknownContentBlock,
)
_OTHER_BLOCKS = (
    ToolUseContentBlock,
    ToolResultContentBlock,
    ThinkingContentBlock,
    RedactedThinkingContentBlock,
    ServerToolUseContentBlock,
    ServerToolResultContentBlock,
    ContainerUploadContentBlock,
)


def tool_result_content(value: Any) -> str | list[ContentBlock]:
    """How a tool's return value is sent back to Claude.

    - a ``str`` as it is, ``None`` as ``""``;
    - a text, image, document, search-result or tool-reference block, or a list or
      tuple of them, as blocks (strings among them become text blocks);
    - anything else as compact JSON (UTF-8 kept, not escaped): pydantic models as
      ``model_dump(mode="json")``, dataclasses, dicts, lists, numbers, booleans,
      enums, dates ...

    Raises:
        TypeError: the value holds a content block that cannot be a tool result
            (``tool_use``, ``thinking`` ...), mixes blocks with data other than
            strings, or cannot be encoded as JSON.
    """
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    for item in items:
        if isinstance(item, _OTHER_BLOCKS):
            raise TypeError(
                f"a {type(item).__name__} cannot be a tool result: tool_result content "
                "takes text, image, document, search_result and tool_reference blocks"
            )
    if any(isinstance(item, _RESULT_BLOCKS) for item in items):
        return [_as_block(item) for item in items]
    try:
        return to_json(value).decode()
    except PydanticSerializationError as error:
        raise TypeError(
            f"a tool returned a {type(value).__name__}, which cannot be sent as a tool result "
            f"({error}): return a str, content blocks, or JSON-compatible data"
        ) from error


def _as_block(item: Any) -> ContentBlock:
    if isinstance(item, _RESULT_BLOCKS):
        return item
    if isinstance(item, str):
        return TextContentBlock.new(item)
    raise TypeError(
        f"a tool result mixes content blocks with a {type(item).__name__}: "
        "return blocks and strings only, or data without blocks"
    )
