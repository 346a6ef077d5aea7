"""Stored turns as terminal text: one line per block, long text wrapped by the terminal."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["block_text", "shorten", "turn_lines"]

_SHORT = 160  # characters of a tool input or result shown inline


def shorten(text: str, limit: int = _SHORT) -> str:
    """``text`` on one line, cut to ``limit`` characters with an ellipsis."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def _result_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts = []
    for block in content:
        if isinstance(block, Mapping) and block.get("type") == "text":
            parts.append(str(block.get("text", "")))
        elif isinstance(block, Mapping):
            parts.append(f"[{block.get('type', 'block')}]")
    return " ".join(parts)


def block_text(block: Mapping[str, Any]) -> str:
    """One content block (wire JSON) as text: text as is, other blocks in brackets."""
    kind = block.get("type")
    if kind == "text":
        return str(block.get("text", ""))
    if kind == "tool_use" or kind == "server_tool_use":
        return f"[tool call {block.get('name')}({shorten(_compact(block.get('input', {})))})]"
    if kind == "tool_result":
        error = " (error)" if block.get("is_error") else ""
        return f"[tool result{error}: {shorten(_result_text(block.get('content')))}]"
    if kind == "thinking":
        return f"[thinking: {shorten(str(block.get('thinking', '')))}]"
    return f"[{kind} block]"


def turn_lines(messages: Iterable[Mapping[str, Any]], *, indent: str = "  ") -> list[str]:
    """Numbered turns, ``[0] user: text``, continuation lines indented."""
    lines: list[str] = []
    for position, message in enumerate(messages):
        content = message.get("content")
        blocks = (
            [content]
            if isinstance(content, str)
            else [block_text(block) for block in content or [] if isinstance(block, Mapping)]
        )
        text = "\n".join(part for part in blocks if part) or "(empty)"
        head, *rest = text.splitlines() or [""]
        lines.append(f"{indent}[{position}] {message.get('role')}: {head}")
        lines.extend(f"{indent}    {line}" for line in rest)
    return lines
