"""Build the HTTP requests of the API: method, path, headers and body bytes."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from clust.messages.errors import InvalidParameter, StreamOptionMismatch
from clust.protocol.credentials import AuthScheme, Credentials, check_header, checked_headers

if TYPE_CHECKING:
    from clust.messages.request import MessagesRequestBody

__all__ = [
    "API_VERSION",
    "DEFAULT_BASE_URL",
    "ONE_HOUR_TTL_BETA",
    "AuthScheme",
    "Credentials",
    "RequestSpec",
    "base_headers",
    "call_headers",
    "count_tokens_request",
    "count_tokens_request_for",
    "merge_betas",
    "message_request",
    "needs_one_hour_ttl_beta",
    "spliced_message_request",
    "wire_has_one_hour",
]

API_VERSION = "2026-10-21"
DEFAULT_BASE_URL = "https://api.anthropic.com"
ONE_HOUR_TTL_BETA = "extended-cache-ttl-2025-04-11"

# Fields of a Messages body that POST /v1/messages/count_tokens accepts.
_COUNT_TOKENS_FIELDS = frozenset(
    {"model", "messages", "system", "tools", "tool_choice", "thinking", "cache_control"}
    | {"output_config", "speed"}
)


@dataclass(frozen=True)
class RequestSpec:
    """One HTTP request to make: what both clients send, built in one place.

    ``path`` is relative to the client's base URL, or an absolute URL (a batch's
    ``results_url``) used as given.
    """

    method: Literal["GET", "POST", "DELETE"]
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    content: bytes | None = None
    params: Mapping[str, str | int | Sequence[str]] | None = None
    stream: bool = False


def base_headers(
    credentials: Credentials,
    *,
    user_agent: str,
    default_headers: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Headers sent on every call of a client (lowercase names), each checked
    (:class:`~clust.messages.errors.InvalidHeaderValue`).

    ``default_headers`` are added last and win, except that they cannot replace
    the credentials header. That header is not among them: the client adds it to
    each request as it is sent, so that no long-lived mapping holds the key.
    """
    headers = {
        "accept": "application/json",
        "anthropic-version": API_VERSION,
        "content-type": "application/json",
        "user-agent": user_agent,
    }
    if default_headers:
        headers.update(checked_headers(default_headers))
    headers.pop(credentials.header_name, None)
    return headers


def merge_betas(*groups: Iterable[str] | None) -> list[str]:
    """Beta names from several sources, in first-seen order, without duplicates.

    Raises:
        InvalidParameter: a group holds anything but strings (one string is one group).
    """
    seen: dict[str, None] = {}
    for group in groups:
        if group is None:
            continue
        if isinstance(group, str):
            group = [group]
        if isinstance(group, bytes) or not isinstance(group, Iterable):
            raise InvalidParameter("betas", group, "a list of beta names (strings)")
        for beta in group:
            if not isinstance(beta, str):
                raise InvalidParameter("betas", beta, "beta names as strings")
            for name in beta.split(","):
                name = name.strip()
                if name:
                    seen.setdefault(name, None)
    return list(seen)


def needs_one_hour_ttl_beta(body: MessagesRequestBody, wire: bytes | None = None) -> bool:
    """Whether any cache_control in the body (top level, tools, system, messages) uses ttl 1h.

    ``wire`` is the serialized body when at hand: a body whose JSON does not contain
    ``"1h"`` at all is answered without walking the blocks.
    """
    if wire is not None and b'"1h"' not in wire:
        return False
    if _is_one_hour(body.cache_control):
        return True
    for tool in body.tools or ():
        if _is_one_hour(_cache_control_of(tool)):
            return True
    system = body.system
    if system is not None:
        root = getattr(system, "root", system)
        if not isinstance(root, str):
            for block in root:
                if _is_one_hour(_cache_control_of(block)):
                    return True
    for message in body.messages:
        content = message.content
        if isinstance(content, str):
            continue
        for block in content:
            if _block_has_one_hour(block):
                return True
    return bool(body.extra_body) and wire_has_one_hour(body.extra_body)


def _block_has_one_hour(block: object) -> bool:
    """A block's own marker, or one on the blocks it nests: a tool result's
    ``content``, a document's ``source.content``."""
    if _is_one_hour(_cache_control_of(block)):
        return True
    for nested in (
        getattr(block, "content", None),
        getattr(getattr(block, "source", None), "content", None),
    ):
        if isinstance(nested, list) and any(_block_has_one_hour(item) for item in nested):
            return True
    return False


def wire_has_one_hour(value: object) -> bool:
    """Any ``cache_control`` with ttl 1h in JSON data (``extra_body``, stored wire JSON)."""
    if isinstance(value, Mapping):
        if _is_one_hour(value.get("cache_control")):
            return True
        return any(wire_has_one_hour(item) for item in value.values())
    if isinstance(value, list):
        return any(wire_has_one_hour(item) for item in value)
    return False


def _cache_control_of(item: object) -> object:
    if isinstance(item, Mapping):
        return item.get("cache_control")
    marker = getattr(item, "cache_control", None)
    if marker is None:
        extra = getattr(item, "model_extra", None)
        if isinstance(extra, dict):
            return extra.get("cache_control")
    return marker


def _is_one_hour(marker: object) -> bool:
    if marker is None:
        return False
    ttl = marker.get("ttl") if isinstance(marker, Mapping) else getattr(marker, "ttl", None)
    return ttl is not None and str(getattr(ttl, "value", ttl)) == "1h"


def message_request(
    body: MessagesRequestBody,
    *,
    stream: bool,
    betas: Iterable[str] | None = None,
    extra_headers: Mapping[str, str] | None = None,
) -> RequestSpec:
    """The POST /v1/messages request for ``body``.

    For a streaming call a body with ``stream`` unset is sent with
    ``"stream": true``; a body whose ``stream`` contradicts the call raises
    :class:`StreamOptionMismatch` before anything is sent.
    """
    wanted = body.stream
    if body.extra_body and "stream" in body.extra_body:
        wanted = body.extra_body["stream"]  # extra_body fields win on the wire
    if wanted is not None and bool(wanted) != stream:
        if stream:
            raise StreamOptionMismatch(
                "create_a_message_stream() needs a body with stream unset or true, "
                "got stream=false; use create_a_message() for a single reply"
            )
        raise StreamOptionMismatch(
            "create_a_message() needs a body with stream unset or false, "
            "got stream=true; use create_a_message_stream() to stream"
        )
    content = body.to_json()
    if stream and wanted is None:
        content = _with_stream_true(content)
    one_hour = needs_one_hour_ttl_beta(body, content)
    headers = call_headers(one_hour, betas, extra_headers)
    return RequestSpec("POST", "/v1/messages", headers, content, stream=stream)


def spliced_message_request(
    head: bytes,
    messages: Sequence[bytes],
    *,
    one_hour: bool,
    stream: bool,
    betas: Iterable[str] | None = None,
    extra_headers: Mapping[str, str] | None = None,
) -> RequestSpec:
    """The POST /v1/messages request from JSON already at hand, without re-encoding it.

    ``head`` is the body's JSON object without ``messages`` and ``stream`` (already
    validated); ``messages`` are the JSON texts of the turns, spliced in as they are,
    so a stored history is sent byte for byte. ``one_hour`` says whether any of it
    holds a 1-hour cache marker (the caller knows; see :func:`wire_has_one_hour`).
    """
    opening = b'{"messages":[' if head == b"{}" else head[:-1] + b',"messages":['
    closing = b"]%s}" % (b',"stream":true' if stream else b"")
    if messages:
        # One join, one copy of the history: the ends ride on the first and last turn.
        parts = list(messages)
        parts[0] = opening + parts[0]
        parts[-1] = parts[-1] + closing
        content = b",".join(parts)
    else:
        content = opening + closing
    headers = call_headers(one_hour, betas, extra_headers)
    return RequestSpec("POST", "/v1/messages", headers, content, stream=stream)


def count_tokens_request(
    body: MessagesRequestBody,
    *,
    betas: Iterable[str] | None = None,
    extra_headers: Mapping[str, str] | None = None,
) -> RequestSpec:
    """The POST /v1/messages/count_tokens request for the prompt of ``body``.

    Only the fields the endpoint accepts are sent (``max_tokens``, ``stream``,
    sampling and metadata fields are left out).
    """
    wire: dict[str, Any] = {
        key: value
        for key, value in body.model_dump(mode="json", exclude_unset=True, by_alias=True).items()
        if key in _COUNT_TOKENS_FIELDS
    }
    wire.update(body.extra_body or {})  # passed through explicitly: sent as given
    content = _dumps(wire)
    headers = call_headers(needs_one_hour_ttl_beta(body, content), betas, extra_headers)
    return RequestSpec("POST", "/v1/messages/count_tokens", headers, content)


def count_tokens_request_for(spec: RequestSpec) -> RequestSpec:
    """The POST /v1/messages/count_tokens request for the prompt of a built message
    request (a spliced conversation body): its body keeps only the fields the endpoint
    accepts, its headers (betas included) are the same."""
    wire = json.loads(spec.content or b"{}")
    content = _dumps({key: value for key, value in wire.items() if key in _COUNT_TOKENS_FIELDS})
    return RequestSpec("POST", "/v1/messages/count_tokens", dict(spec.headers), content)


def call_headers(
    one_hour: bool,
    betas: Iterable[str] | None,
    extra_headers: Mapping[str, str] | None,
) -> dict[str, str]:
    """The per-call headers of a request: ``extra_headers`` (names lower-cased) and one
    ``anthropic-beta`` header merging ``betas``, any beta given in ``extra_headers`` and,
    when ``one_hour``, the 1-hour cache TTL beta. Each is checked
    (:class:`~clust.messages.errors.InvalidHeaderValue`)."""
    headers: dict[str, str] = {}
    automatic = [ONE_HOUR_TTL_BETA] if one_hour else None
    user_betas: list[str] | None = None
    if extra_headers:
        headers.update(checked_headers(extra_headers))
        given = headers.pop("anthropic-beta", None)
        user_betas = [given] if given else None
    merged = merge_betas(betas, user_betas, automatic)
    if merged:
        joined = ",".join(merged)
        check_header("anthropic-beta", joined)
        headers["anthropic-beta"] = joined
    return headers


def _with_stream_true(content: bytes) -> bytes:
    # The body is a compact JSON object: add the field before the closing brace.
    if content == b"{}":
        return b'{"stream":true}'
    return content[:-1] + b',"stream":true}'


def _dumps(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
