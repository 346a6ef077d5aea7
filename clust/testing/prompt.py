"""The prompt as an ordered list of segments (tools -> system -> messages), with breakpoints.

Token counting, the cache simulation and the cache validation rules all walk this one layout.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .tokens import (
    MESSAGE_OVERHEAD_TOKENS,
    REQUEST_OVERHEAD_TOKENS,
    block_tokens,
    canonical_json,
    tool_tokens,
    without_cache_control,
)

__all__ = [
    "Breakpoint",
    "Segment",
    "breakpoints",
    "count_input_tokens",
    "count_tokens",
    "prompt_segments",
]

_UNCACHEABLE = frozenset({"thinking", "redacted_thinking"})


@dataclass(frozen=True)
class Segment:
    """One tool definition, system block or message block, in prompt order."""

    section: str
    """``"tools"``, ``"system"`` or ``"messages"``."""
    location: str
    """Where it sits in the request, e.g. ``messages.2.content.0`` (for error messages)."""
    identity: str
    """Canonical JSON of the block without ``cache_control``, plus its place (section, role)."""
    tokens: int
    """Its cost, including the per-message overhead for a message's first block."""
    markers: tuple[Mapping[str, Any], ...]
    """``cache_control`` objects on it (nested ones inside a ``tool_result`` first)."""
    cacheable: bool
    """False for thinking blocks, which can carry no marker."""
    message_index: int | None = None


@dataclass(frozen=True)
class Breakpoint:
    """A cache breakpoint: the prefix through segment ``index`` can be cached for ``ttl``."""

    index: int
    ttl: str
    location: str
    automatic: bool = False


def prompt_segments(body: Mapping[str, Any]) -> list[Segment]:
    """Lay out tools, system and messages of a request body as segments."""
    segments: list[Segment] = []
    tools = body.get("tools")
    if isinstance(tools, list):
        for i, tool in enumerate(tools):
            segments.append(
                Segment(
                    section="tools",
                    location=f"tools.{i}",
                    identity="tools|" + canonical_json(without_cache_control(tool)),
                    tokens=tool_tokens(tool),
                    markers=_own_markers(tool),
                    cacheable=True,
                )
            )
    system = body.get("system")
    if isinstance(system, str):
        system = [{"type": "text", "text": system}]
    if isinstance(system, list):
        for i, block in enumerate(system):
            segments.append(_block_segment("system", f"system.{i}", "system|", block, 0, None))
    messages = body.get("messages")
    if isinstance(messages, list):
        for m, message in enumerate(messages):
            if not isinstance(message, Mapping):
                continue
            role = str(message.get("role"))
            content = message.get("content")
            blocks: list[Any] = (
                ([{"type": "text", "text": content}] if isinstance(content, str) else content)
                if isinstance(content, (str, list))
                else []
            )
            if not blocks:
                # An empty (final assistant) turn still costs its overhead.
                blocks = [{"type": "text", "text": ""}]
            for b, block in enumerate(blocks):
                prefix = f"messages|{role}|{'first' if b == 0 else 'next'}|"
                overhead = MESSAGE_OVERHEAD_TOKENS if b == 0 else 0
                location = f"messages.{m}.content.{b}"
                segments.append(_block_segment("messages", location, prefix, block, overhead, m))
    return segments


def count_input_tokens(segments: list[Segment]) -> int:
    """Total input tokens of a prompt: its segments plus the request overhead."""
    return sum(s.tokens for s in segments) + REQUEST_OVERHEAD_TOKENS


def count_tokens(body: Mapping[str, Any]) -> int:
    """The fake's input-token count for a Messages request body (what count_tokens answers,
    and what ``input_tokens + cache_read + cache_creation`` add up to in ``usage``)."""
    return count_input_tokens(prompt_segments(body))


def breakpoints(body: Mapping[str, Any], segments: list[Segment]) -> list[Breakpoint]:
    """Every cache breakpoint in prompt order; top-level ``cache_control`` adds one on the last
    cacheable segment (merged with an explicit marker already there)."""
    points: list[Breakpoint] = []
    for index, segment in enumerate(segments):
        for marker in segment.markers:
            points.append(Breakpoint(index, marker_ttl(marker), segment.location))
    top = body.get("cache_control")
    if isinstance(top, Mapping):
        last = next((i for i in range(len(segments) - 1, -1, -1) if segments[i].cacheable), None)
        if last is not None and not segments[last].markers:
            points.append(Breakpoint(last, marker_ttl(top), segments[last].location, True))
    return points


def marker_ttl(marker: Mapping[str, Any]) -> str:
    """``"5m"`` or ``"1h"`` (an absent ``ttl`` means 5 minutes)."""
    ttl = marker.get("ttl")
    return ttl if isinstance(ttl, str) else "5m"


def _block_segment(
    section: str, location: str, prefix: str, block: Any, overhead: int, message_index: int | None
) -> Segment:
    kind = block.get("type") if isinstance(block, Mapping) else None
    return Segment(
        section=section,
        location=location,
        identity=prefix + canonical_json(without_cache_control(block)),
        tokens=block_tokens(block) + overhead,
        markers=_nested_markers(block) + _own_markers(block),
        cacheable=kind not in _UNCACHEABLE,
        message_index=message_index,
    )


def _own_markers(obj: Any) -> tuple[Mapping[str, Any], ...]:
    if isinstance(obj, Mapping):
        marker = obj.get("cache_control")
        if isinstance(marker, Mapping):
            return (marker,)
    return ()


def _nested_markers(block: Any) -> tuple[Mapping[str, Any], ...]:
    if isinstance(block, Mapping) and block.get("type") == "tool_result":
        content = block.get("content")
        if isinstance(content, list):
            return tuple(m for item in content for m in _own_markers(item))
    return ()
