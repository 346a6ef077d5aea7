"""The request checks the real API makes for common mistakes, as the fake's 400/401 answers.

Headers: credentials (``x-api-key`` or ``authorization: Bearer``) -> 401; ``anthropic-version``
-> 400. Messages bodies: ``model``, ``max_tokens`` (an int >= 0, at most the model's limit),
``messages`` (non-empty, known roles, non-empty content except a final assistant turn), blocks
with a ``type``, ``system``, ``tools``, ``tool_choice``, ``thinking``; every ``tool_use`` answered
by a ``tool_result`` in the next user turn and every ``tool_result`` matching a ``tool_use`` of
the previous assistant turn (consecutive same-role turns are merged first, as the API does);
``cache_control`` shape, at most 4 breakpoints, no 1h breakpoint after a 5m one, none on thinking
blocks or empty text; optionally the 1h TTL beta header; no prompt longer than the model's
``max_input_tokens`` (counted as count_tokens counts it; the API says ``prompt is too long: N
tokens > M maximum``). Batches: ``requests`` with unique ``custom_id``
(``^[a-zA-Z0-9_-]{1,64}$``) and non-streaming ``params``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .errors import FakeApiError, invalid_request
from .models import ModelTable
from .prompt import Segment, breakpoints, count_input_tokens, prompt_segments

__all__ = [
    "TTL_BETA",
    "check_headers",
    "validate_batch",
    "validate_messages",
]

TTL_BETA = "extended-cache-ttl-2025-04-11"
MAX_BREAKPOINTS = 4
MAX_BATCH_REQUESTS = 100_000
_CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_ROLES = ("user", "assistant", "system")
_TOOL_CHOICES = ("auto", "any", "none", "tool")
_THINKING = ("enabled", "disabled", "adaptive", "between_tools")


def check_headers(headers: Mapping[str, str], *, api_key: str | None = None) -> None:
    """401 without credentials (or with the wrong key when ``api_key`` is set); 400 without
    ``anthropic-version``."""
    key = headers.get("x-api-key", "").strip()
    auth = headers.get("authorization", "").strip()
    if not key and auth[:7].lower() == "bearer ":
        key = auth[7:].strip()
    if not key:
        raise FakeApiError(
            401, "authentication_error", "x-api-key or authorization: Bearer header is required"
        )
    if api_key is not None and key != api_key:
        raise FakeApiError(401, "authentication_error", "invalid x-api-key")
    if not headers.get("anthropic-version", "").strip():
        raise invalid_request("anthropic-version: header is required")


def validate_messages(
    body: Any,
    *,
    models: ModelTable,
    betas: list[str],
    require_ttl_beta: bool = False,
    count_tokens: bool = False,
) -> list[Segment]:
    """Raise :class:`FakeApiError` (400) on the first mistake in a Messages (or count_tokens)
    body; return its prompt segments (so callers need not lay them out again)."""
    if not isinstance(body, Mapping):
        raise invalid_request("body: Input should be a JSON object")
    model = body.get("model")
    if "model" not in body:
        raise invalid_request("model: Field required")
    if not isinstance(model, str) or not model:
        raise invalid_request("model: Input should be a non-empty string")
    if not count_tokens:
        _check_max_tokens(body, models, model)
        if body.get("stream") is not None and not isinstance(body.get("stream"), bool):
            raise invalid_request("stream: Input should be a valid boolean")
    _check_messages(body)
    _check_system(body.get("system"))
    _check_tools(body)
    _check_thinking(body, count_tokens)
    _check_tool_pairing(body["messages"])
    segments = _check_cache_control(body, betas, require_ttl_beta)
    if not count_tokens:
        _check_context_window(segments, models, model)
    return segments


def validate_batch(body: Any) -> list[tuple[str, Mapping[str, Any]]]:
    """The ``(custom_id, params)`` pairs of a batch create body; 400 on structural mistakes.

    ``params`` themselves are checked when the batch is processed (an invalid one becomes an
    ``errored`` result, as with the real API).
    """
    if not isinstance(body, Mapping):
        raise invalid_request("body: Input should be a JSON object")
    requests = body.get("requests")
    if "requests" not in body:
        raise invalid_request("requests: Field required")
    if not isinstance(requests, list):
        raise invalid_request("requests: Input should be a valid list")
    if not requests:
        raise invalid_request("requests: List should have at least 1 item after validation")
    if len(requests) > MAX_BATCH_REQUESTS:
        raise invalid_request(f"requests: at most {MAX_BATCH_REQUESTS} requests per batch")
    seen: set[str] = set()
    out: list[tuple[str, Mapping[str, Any]]] = []
    for i, item in enumerate(requests):
        if not isinstance(item, Mapping):
            raise invalid_request(f"requests.{i}: Input should be a valid dictionary")
        custom_id = item.get("custom_id")
        if not isinstance(custom_id, str) or not _CUSTOM_ID.match(custom_id):
            raise invalid_request(
                f"requests.{i}.custom_id: String should match pattern '{_CUSTOM_ID.pattern}'"
            )
        if custom_id in seen:
            raise invalid_request(
                f"requests.{i}.custom_id: custom_id {custom_id!r} is used more than once; "
                "custom ids must be unique within a batch"
            )
        seen.add(custom_id)
        params = item.get("params")
        if not isinstance(params, Mapping):
            raise invalid_request(f"requests.{i}.params: Input should be a valid dictionary")
        if params.get("stream") is True:
            raise invalid_request(
                f"requests.{i}.params.stream: streaming is not supported in batch requests"
            )
        out.append((custom_id, params))
    return out


def _check_max_tokens(body: Mapping[str, Any], models: ModelTable, model: str) -> None:
    if "max_tokens" not in body:
        raise invalid_request("max_tokens: Field required")
    value = body["max_tokens"]
    if not isinstance(value, int) or isinstance(value, bool):
        raise invalid_request("max_tokens: Input should be a valid integer")
    if value < 0:
        raise invalid_request("max_tokens: Input should be greater than or equal to 0")
    info = models.get(model)
    if info is not None and info.max_tokens is not None and value > info.max_tokens:
        raise invalid_request(
            f"max_tokens: {value} > {info.max_tokens}, which is the maximum allowed number of "
            f"output tokens for {model}"
        )


def _check_context_window(segments: list[Segment], models: ModelTable, model: str) -> None:
    """The prompt's tokens (the fake's count) against the model's ``max_input_tokens``, as
    the API refuses a prompt longer than the context window; count_tokens still counts it."""
    info = models.get(model)
    if info is None or info.max_input_tokens is None:
        return
    tokens = count_input_tokens(segments)
    if tokens > info.max_input_tokens:
        raise invalid_request(
            f"prompt is too long: {tokens} tokens > {info.max_input_tokens} maximum"
        )


def _check_messages(body: Mapping[str, Any]) -> None:
    if "messages" not in body:
        raise invalid_request("messages: Field required")
    messages = body["messages"]
    if not isinstance(messages, list):
        raise invalid_request("messages: Input should be a valid list")
    if not messages:
        raise invalid_request("messages: at least one message is required")
    last = len(messages) - 1
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise invalid_request(f"messages.{i}: Input should be a valid dictionary")
        role = message.get("role")
        if role not in _ROLES:
            raise invalid_request(
                f"messages.{i}.role: Input should be 'user', 'assistant' or 'system', got {role!r}"
            )
        if "content" not in message:
            raise invalid_request(f"messages.{i}.content: Field required")
        content = message["content"]
        final_assistant = i == last and role == "assistant"
        if isinstance(content, str):
            empty = content == ""
        elif isinstance(content, list):
            empty = not content
            for j, block in enumerate(content):
                _check_block(block, f"messages.{i}.content.{j}", allow_empty=final_assistant)
                if role == "system" and block.get("type") != "text":
                    raise invalid_request(
                        f"messages.{i}.content.{j}.type: system messages take text blocks only"
                    )
        else:
            raise invalid_request(f"messages.{i}.content: Input should be a string or a list")
        if empty and not final_assistant:
            raise invalid_request(
                f"messages.{i}: all messages must have non-empty content except for the "
                "optional final assistant message"
            )


def _check_block(block: Any, where: str, *, allow_empty: bool) -> None:
    if not isinstance(block, Mapping):
        raise invalid_request(f"{where}: Input should be a valid dictionary")
    kind = block.get("type")
    if not isinstance(kind, str):
        raise invalid_request(f"{where}.type: Field required")
    marker = block.get("cache_control")
    if marker is not None and not isinstance(marker, Mapping):
        raise invalid_request(f"{where}.cache_control: Input should be a valid dictionary")
    if kind == "text":
        text = block.get("text")
        if not isinstance(text, str):
            raise invalid_request(f"{where}.text: Field required")
        if not text and block.get("cache_control") is not None:
            raise invalid_request(f"{where}: cache_control cannot be set for empty text blocks")
        if not text and not allow_empty:
            raise invalid_request(f"{where}.text: text content blocks must be non-empty")
    elif kind == "tool_use":
        for field in ("id", "name"):
            if not isinstance(block.get(field), str):
                raise invalid_request(f"{where}.{field}: Field required")
        if not isinstance(block.get("input"), Mapping):
            raise invalid_request(f"{where}.input: Input should be a valid dictionary")
    elif kind == "tool_result":
        if not isinstance(block.get("tool_use_id"), str):
            raise invalid_request(f"{where}.tool_use_id: Field required")
        content = block.get("content")
        if isinstance(content, list):
            for k, inner in enumerate(content):
                _check_block(inner, f"{where}.content.{k}", allow_empty=False)
    elif kind in ("thinking", "redacted_thinking") and block.get("cache_control") is not None:
        raise invalid_request(f"{where}.cache_control: {kind} blocks cannot be cached")


def _check_system(system: Any) -> None:
    if system is None or isinstance(system, str):
        return
    if not isinstance(system, list):
        raise invalid_request("system: Input should be a string or a list of text blocks")
    for i, block in enumerate(system):
        if not isinstance(block, Mapping) or block.get("type") != "text":
            raise invalid_request(f"system.{i}.type: Input should be 'text'")
        _check_block(block, f"system.{i}", allow_empty=False)


def _check_tools(body: Mapping[str, Any]) -> None:
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise invalid_request("tools: Input should be a valid list")
        names: set[str] = set()
        for i, tool in enumerate(tools):
            if not isinstance(tool, Mapping):
                raise invalid_request(f"tools.{i}: Input should be a valid dictionary")
            custom = tool.get("type") in (None, "custom")
            name = tool.get("name")
            if custom:
                if not isinstance(name, str) or not name:
                    raise invalid_request(f"tools.{i}.name: Field required")
                schema = tool.get("input_schema")
                if not isinstance(schema, Mapping):
                    raise invalid_request(f"tools.{i}.input_schema: Field required")
                if schema.get("type") != "object":
                    raise invalid_request(f"tools.{i}.input_schema.type: Input should be 'object'")
            if isinstance(name, str):
                if name in names:
                    raise FakeApiError(
                        400,
                        "invalid_request_error",
                        f"tools.{i}.name: tool name {name!r} is used more than once",
                        details={"error_code": "tool_name_conflict"},
                    )
                names.add(name)
    choice = body.get("tool_choice")
    if choice is not None:
        if not isinstance(choice, Mapping) or choice.get("type") not in _TOOL_CHOICES:
            raise invalid_request(
                "tool_choice.type: Input should be 'auto', 'any', 'none' or 'tool'"
            )
        if choice["type"] == "tool" and not isinstance(choice.get("name"), str):
            raise invalid_request("tool_choice.name: Field required")


def _check_thinking(body: Mapping[str, Any], count_tokens: bool) -> None:
    thinking = body.get("thinking")
    if thinking is None:
        return
    if not isinstance(thinking, Mapping) or thinking.get("type") not in _THINKING:
        raise invalid_request(
            "thinking.type: Input should be 'enabled', 'disabled', 'adaptive' or 'between_tools'"
        )
    if thinking["type"] == "enabled":
        budget = thinking.get("budget_tokens")
        if not isinstance(budget, int) or isinstance(budget, bool):
            raise invalid_request("thinking.enabled.budget_tokens: Field required")
        if budget < 1024:
            raise invalid_request(
                "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
            )
        max_tokens = body.get("max_tokens")
        if not count_tokens and isinstance(max_tokens, int) and budget >= max_tokens > 0:
            raise invalid_request("`max_tokens` must be greater than `thinking.budget_tokens`")


def _check_tool_pairing(messages: list[Any]) -> None:
    # Consecutive same-role messages form one turn; system-role messages are skipped.
    turns: list[tuple[str, list[tuple[int, int, Mapping[str, Any]]]]] = []
    for i, message in enumerate(messages):
        role = message["role"]
        if role == "system":
            continue
        content = message["content"]
        blocks = [(i, j, b) for j, b in enumerate(content)] if isinstance(content, list) else []
        if turns and turns[-1][0] == role:
            turns[-1][1].extend(blocks)
        else:
            turns.append((role, blocks))
    # Unmatched tool_result blocks are reported before unanswered tool_use blocks.
    for t, (role, blocks) in enumerate(turns):
        if role != "user":
            continue
        previous = turns[t - 1][1] if t > 0 else []
        known = {b.get("id") for _, _, b in previous if b.get("type") == "tool_use"}
        for i, j, block in blocks:
            if block.get("type") == "tool_result" and block.get("tool_use_id") not in known:
                raise invalid_request(
                    f"messages.{i}.content.{j}: unexpected `tool_use_id` found in "
                    f"`tool_result` blocks: {block.get('tool_use_id')}. Each `tool_result` "
                    "block must have a corresponding `tool_use` block in the previous message."
                )
    for t, (role, blocks) in enumerate(turns[:-1]):
        if role != "assistant":
            continue
        asked = [str(b.get("id")) for _, _, b in blocks if b.get("type") == "tool_use"]
        following = turns[t + 1][1]
        answered = {b.get("tool_use_id") for _, _, b in following if b.get("type") == "tool_result"}
        missing = [tool_id for tool_id in asked if tool_id not in answered]
        if missing:
            where = following[0][0] if following else blocks[-1][0] + 1
            raise invalid_request(
                f"messages.{where}: `tool_use` ids were found without `tool_result` blocks "
                f"immediately after: {', '.join(missing)}. Each `tool_use` block must have a "
                "corresponding `tool_result` block in the next message."
            )


def _check_cache_control(
    body: Mapping[str, Any], betas: list[str], require_ttl_beta: bool
) -> list[Segment]:
    segments = prompt_segments(body)
    for segment in segments:
        for marker in segment.markers:
            _check_marker(marker, f"{segment.location}.cache_control")
    top = body.get("cache_control")
    if top is not None:
        if not isinstance(top, Mapping):
            raise invalid_request("cache_control: Input should be a valid dictionary")
        _check_marker(top, "cache_control")
    points = breakpoints(body, segments)
    if len(points) > MAX_BREAKPOINTS:
        raise invalid_request(
            f"A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided. "
            f"Found {len(points)}."
        )
    seen_5m = False
    for point in points:
        if point.ttl == "5m":
            seen_5m = True
        elif seen_5m:
            raise invalid_request(
                f"{point.location}.cache_control: a ttl='1h' cache_control cannot come after a "
                "ttl='5m' one; 1h breakpoints must come first in prompt order "
                "(tools, system, messages)"
            )
    if require_ttl_beta and any(p.ttl == "1h" for p in points) and TTL_BETA not in betas:
        raise invalid_request(f"cache_control.ttl: '1h' needs the anthropic-beta header {TTL_BETA}")
    return segments


def _check_marker(marker: Mapping[str, Any], where: str) -> None:
    if marker.get("type") != "ephemeral":
        raise invalid_request(f"{where}.type: Input should be 'ephemeral'")
    ttl = marker.get("ttl")
    if ttl is not None and ttl not in ("5m", "1h"):
        raise invalid_request(f"{where}.ttl: Input should be '5m' or '1h'")
