"""Writing a final Message as the SSE events the real API sends.

Order: ``message_start`` (content empty, full usage but a small ``output_tokens``), a ``ping``,
then per block ``content_block_start`` / ``content_block_delta``* / ``content_block_stop``, then
``message_delta`` (stop reason, cumulative usage) and ``message_stop``. Accumulating these events
gives back the input message exactly.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = ["encode_event", "message_events", "split_json", "split_text"]

Event = tuple[str, dict[str, Any]]

_TEXT_SIZES = (3, 1, 4, 1, 5, 9, 2, 6)
_JSON_SIZES = (1, 5, 2, 8, 3, 13, 4, 7)
_DELTA_USAGE_KEYS = (
    "input_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
    "output_tokens",
)
_DELTA_USAGE_OPTIONAL = ("output_tokens_details", "server_tool_use")


def encode_event(event: str, data: Mapping[str, Any]) -> bytes:
    """``event: <name>\\ndata: <one-line JSON>\\n\\n`` as UTF-8."""
    payload = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return f"event: {event}\ndata: {payload}\n\n".encode()


def split_text(text: str) -> list[str]:
    """Small pieces of varying length (whole characters; never empty unless ``text`` is)."""
    return _split(text, _TEXT_SIZES)


def split_json(text: str) -> list[str]:
    """Fragments of a JSON text cut at arbitrary points (inside strings, numbers, escapes)."""
    return _split(text, _JSON_SIZES)


def _split(text: str, sizes: tuple[int, ...]) -> list[str]:
    scale = max(1, len(text) // 1000)
    pieces: list[str] = []
    start = 0
    i = 0
    while start < len(text):
        size = sizes[i % len(sizes)] * scale
        pieces.append(text[start : start + size])
        start += size
        i += 1
    return pieces


def message_events(message: Mapping[str, Any], *, ping_every: int | None = None) -> list[Event]:
    """The SSE events for a final Message (see the module docstring)."""
    # Nothing below mutates ``message``: events share its (read-only) values.
    final = message
    usage = dict(final.get("usage") or {})
    start = {k: v for k, v in final.items() if k not in ("content",)}
    start.update(
        content=[], stop_reason=None, stop_sequence=None, stop_details=None, container=None
    )
    start_usage = dict(usage)
    if "output_tokens" in start_usage:
        start_usage["output_tokens"] = min(1, int(usage.get("output_tokens") or 0))
    start["usage"] = start_usage
    events: list[Event] = [
        ("message_start", {"type": "message_start", "message": start}),
        ("ping", {"type": "ping"}),
    ]
    for index, block in enumerate(final.get("content") or []):
        events.extend(_block_events(index, block))
    delta: dict[str, Any] = {
        "stop_reason": final.get("stop_reason"),
        "stop_sequence": final.get("stop_sequence"),
        "stop_details": final.get("stop_details"),
    }
    if final.get("container") is not None:
        delta["container"] = final["container"]
    delta_usage = {k: usage[k] for k in _DELTA_USAGE_KEYS if k in usage}
    delta_usage.setdefault("output_tokens", 0)
    delta_usage.update({k: usage[k] for k in _DELTA_USAGE_OPTIONAL if usage.get(k) is not None})
    events.append(
        ("message_delta", {"type": "message_delta", "delta": delta, "usage": delta_usage})
    )
    events.append(("message_stop", {"type": "message_stop"}))
    if ping_every:
        events = _with_pings(events, ping_every)
    return events


def _block_events(index: int, block: Mapping[str, Any]) -> list[Event]:
    kind = block.get("type")
    deltas: list[dict[str, Any]] = []
    first = dict(block)
    if kind == "text":
        first["text"] = ""
        citations = block.get("citations")
        if isinstance(citations, list):
            first["citations"] = []
            deltas += [{"type": "citations_delta", "citation": c} for c in citations]
        deltas += [{"type": "text_delta", "text": p} for p in split_text(str(block.get("text")))]
    elif kind == "thinking":
        first["thinking"] = ""
        first["signature"] = ""
        pieces = split_text(str(block.get("thinking", "")))
        deltas += [{"type": "thinking_delta", "thinking": p} for p in pieces]
        if block.get("signature"):
            deltas.append({"type": "signature_delta", "signature": block["signature"]})
    elif "input" in block and isinstance(kind, str) and kind.endswith("tool_use"):
        first["input"] = {}
        encoded = json.dumps(block["input"], ensure_ascii=True)
        deltas.append({"type": "input_json_delta", "partial_json": ""})
        deltas += [{"type": "input_json_delta", "partial_json": p} for p in split_json(encoded)]
    events: list[Event] = [
        (
            "content_block_start",
            {"type": "content_block_start", "index": index, "content_block": first},
        )
    ]
    events += [
        ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d})
        for d in deltas
    ]
    events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    return events


def _with_pings(events: list[Event], every: int) -> list[Event]:
    out: list[Event] = []
    for count, event in enumerate(events, 1):
        out.append(event)
        if count % every == 0 and event[0] != "message_stop":
            out.append(("ping", {"type": "ping"}))
    return out
