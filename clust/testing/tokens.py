"""Deterministic token counting (the fake's stand-in for a tokenizer).

The rule, used for ``count_tokens``, for ``usage`` and for the prompt-cache simulation:

- a piece of text costs ``ceil(len(text.encode("utf-8")) / 4)`` tokens;
- ``text`` blocks cost their ``text``; ``thinking`` blocks their ``thinking``;
  ``redacted_thinking`` their ``data``; ``tool_use``/``server_tool_use`` their ``name`` plus the
  compact JSON of their ``input``; ``tool_result`` the sum of its content (a string or blocks);
  any other block (image, document, search_result, server tool results, ...) and every tool
  definition costs the canonical JSON of the object without ``cache_control``;
- a string ``system`` or message ``content`` counts as one text block;
- each message adds :data:`MESSAGE_OVERHEAD_TOKENS`, each request :data:`REQUEST_OVERHEAD_TOKENS`
  (the latter sits after the last block, so it is never cached);
- output tokens are the same block costs over the reply content; thinking blocks are also
  reported as ``output_tokens_details.thinking_tokens``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "MESSAGE_OVERHEAD_TOKENS",
    "REQUEST_OVERHEAD_TOKENS",
    "block_tokens",
    "canonical_json",
    "output_tokens",
    "text_tokens",
    "tool_tokens",
    "without_cache_control",
]

MESSAGE_OVERHEAD_TOKENS = 3
REQUEST_OVERHEAD_TOKENS = 3


def text_tokens(text: str) -> int:
    """``ceil(utf-8 bytes / 4)``."""
    return (len(text.encode("utf-8")) + 3) // 4


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, unicode kept: equal values give equal strings."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def without_cache_control(value: Any) -> Any:
    """A copy of ``value`` with every ``cache_control`` key removed, at any depth."""
    if isinstance(value, Mapping):
        return {k: without_cache_control(v) for k, v in value.items() if k != "cache_control"}
    if isinstance(value, list):
        return [without_cache_control(v) for v in value]
    return value


def block_tokens(block: Any) -> int:
    """Token cost of one content block (request or response side), or of a bare string."""
    if isinstance(block, str):
        return text_tokens(block)
    if not isinstance(block, Mapping):
        return text_tokens(canonical_json(block))
    kind = block.get("type")
    if kind == "text":
        return _text_field(block, "text")
    if kind == "thinking":
        return _text_field(block, "thinking")
    if kind == "redacted_thinking":
        return _text_field(block, "data")
    if kind in ("tool_use", "server_tool_use"):
        name = block.get("name")
        return text_tokens(name if isinstance(name, str) else "") + text_tokens(
            canonical_json(block.get("input", {}))
        )
    if kind == "tool_result":
        content = block.get("content")
        if content is None:
            return 0
        if isinstance(content, list):
            return sum(block_tokens(item) for item in content)
        return block_tokens(content)
    return text_tokens(canonical_json(without_cache_control(block)))


def tool_tokens(tool: Any) -> int:
    """Token cost of one tool definition: its canonical JSON without ``cache_control``."""
    return text_tokens(canonical_json(without_cache_control(tool)))


def output_tokens(content: Iterable[Any]) -> tuple[int, int]:
    """``(output_tokens, thinking_tokens)`` for the content of a reply."""
    total = 0
    thinking = 0
    for block in content:
        cost = block_tokens(block)
        total += cost
        if isinstance(block, Mapping) and block.get("type") in ("thinking", "redacted_thinking"):
            thinking += cost
    return total, thinking


def _text_field(block: Mapping[str, Any], key: str) -> int:
    value = block.get(key)
    return text_tokens(value) if isinstance(value, str) else 0
