"""Turns a (validated) Messages request body and a :class:`Reply` into a final Message dict.

The same dict is then sent as JSON or decomposed into SSE events, so both forms agree.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from .caching import DiagnosticsMemory, Fingerprint, PromptCache
from .ids import IdFactory
from .prompt import Segment, breakpoints, prompt_segments
from .replies import Reply
from .tokens import output_tokens

__all__ = ["ECHO_LIMIT", "Engine", "echo_content"]

ECHO_LIMIT = 200
"""At most this many characters of the user's text are echoed."""


class Engine:
    """Renders replies: ids, content, stop reason, usage (with the cache simulation)."""

    def __init__(self, ids: IdFactory, cache: PromptCache, diagnostics: DiagnosticsMemory) -> None:
        self._ids = ids
        self._cache = cache
        self._diagnostics = diagnostics

    def render(
        self,
        reply: Reply,
        body: Mapping[str, Any],
        *,
        service_tier: str = "standard",
        segments: list[Segment] | None = None,
    ) -> dict[str, Any]:
        """The final Message for ``reply`` answering ``body`` (a message-kind reply);
        ``segments`` = ``prompt_segments(body)`` when the caller has them already."""
        request_model = str(body.get("model"))
        content = [self._with_ids(block) for block in reply.content]
        if reply.kind == "echo":
            # Scripted blocks (e.g. Reply.thinking(..., then=Reply.echo())) come first.
            echoed, stop_reason, stop_sequence = echo_content(body)
            content += echoed
        else:
            stop_reason = reply.stop_reason or _default_stop_reason(content)
            stop_sequence = reply.stop_sequence
        if segments is None:
            segments = prompt_segments(body)
        cached = self._cache.process(request_model, segments, breakpoints(body, segments))
        out, thinking = output_tokens(content)
        usage: dict[str, Any] = {
            "input_tokens": cached.input_tokens,
            "cache_creation_input_tokens": cached.cache_creation_input_tokens,
            "cache_read_input_tokens": cached.cache_read_input_tokens,
            "cache_creation": {
                "ephemeral_5m_input_tokens": cached.ephemeral_5m_input_tokens,
                "ephemeral_1h_input_tokens": cached.ephemeral_1h_input_tokens,
            },
            "output_tokens": out,
            "output_tokens_details": {"thinking_tokens": thinking},
            "server_tool_use": None,
            "service_tier": service_tier,
            "inference_geo": "global",
            "speed": "standard",
        }
        if reply.usage:
            usage.update(copy.deepcopy(dict(reply.usage)))
        message_id = self._ids.message_id()
        fingerprint = Fingerprint.of(request_model, segments, cached.cached_prefix_tokens)
        diagnostics: dict[str, Any] | None = None
        requested = body.get("diagnostics")
        if isinstance(requested, Mapping):
            diagnostics = self._diagnostics.explain(
                requested.get("previous_message_id"), fingerprint, cached.cache_read_input_tokens
            )
        self._diagnostics.remember(message_id, fingerprint)
        message: dict[str, Any] = {
            "id": message_id,
            "type": "message",
            "role": "assistant",
            "model": reply.model or request_model,
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": stop_sequence,
            "stop_details": dict(reply.stop_details) if reply.stop_details else None,
            "container": None,
            "diagnostics": diagnostics,
            "usage": usage,
        }
        if reply.extra:
            message.update(copy.deepcopy(dict(reply.extra)))
        return message

    def _with_ids(self, block: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(block)
        if out.get("id") is None:
            if out.get("type") == "tool_use":
                out["id"] = self._ids.tool_use_id()
            elif out.get("type") == "server_tool_use":
                out["id"] = self._ids.server_tool_use_id()
        return out


def _default_stop_reason(content: list[dict[str, Any]]) -> str:
    return "tool_use" if any(b.get("type") == "tool_use" for b in content) else "end_turn"


def echo_content(body: Mapping[str, Any]) -> tuple[list[dict[str, Any]], str, str | None]:
    """``(content, stop_reason, stop_sequence)`` of the default echo answer.

    Text: ``"Echo: "`` + the text of the last user turn (first :data:`ECHO_LIMIT` characters),
    cut before the earliest ``stop_sequences`` hit (``stop_sequence``), then to ``max_tokens``
    (``max_tokens``; 0 gives empty content).
    """
    texts: list[str] = []
    tool_results = 0
    for message in reversed(body.get("messages") or []):
        if isinstance(message, Mapping) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                texts.append(content)
            elif isinstance(content, list):
                for block in content:
                    if isinstance(block, Mapping) and block.get("type") == "text":
                        texts.append(str(block.get("text", "")))
                    elif isinstance(block, Mapping) and block.get("type") == "tool_result":
                        tool_results += 1
            break
    if texts:
        said = " ".join(texts)
        if len(said) > ECHO_LIMIT:
            said = said[:ECHO_LIMIT] + "..."
    elif tool_results:
        said = f"({tool_results} tool result{'s' if tool_results != 1 else ''})"
    else:
        said = "(nothing)"
    text = f"Echo: {said}"
    stop_reason = "end_turn"
    stop_sequence: str | None = None
    hits = [
        (text.find(s), s)
        for s in body.get("stop_sequences") or []
        if isinstance(s, str) and s and s in text
    ]
    if hits:
        position, stop_sequence = min(hits)
        text = text[:position]
        stop_reason = "stop_sequence"
    max_tokens = body.get("max_tokens")
    if isinstance(max_tokens, int) and len(text.encode("utf-8")) > 4 * max_tokens:
        budget = 4 * max_tokens
        kept = 0
        for i, char in enumerate(text):
            kept += len(char.encode("utf-8"))
            if kept > budget:
                text = text[:i]
                break
        stop_reason = "max_tokens"
        stop_sequence = None
    content = [{"type": "text", "text": text}] if text else []
    return content, stop_reason, stop_sequence
