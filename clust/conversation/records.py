"""What a reply leaves in the store: its usage row, and the totals read back."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from clust.messages.response import MessagesResponseBody

__all__ = ["UsageTotals", "usage_values"]


def usage_values(
    response: MessagesResponseBody,
    *,
    conversation_id: str,
    position: int | None,
    started_at: datetime,
    finished_at: datetime,
    latency_ms: int,
    outcome: str = "reply",
) -> dict[str, Any]:
    """The usage row of ``response`` (cache writes without a TTL breakdown count as 5m,
    the API's default TTL). ``outcome`` is ``"interrupted"`` (and ``position`` None)
    for the partial message of a stream that broke off after billing began."""
    usage = response.usage
    creation = usage.cache_creation_input_tokens or 0
    split = usage.cache_creation
    one_hour = split.ephemeral_1h_input_tokens if split is not None else 0
    five_minutes = split.ephemeral_5m_input_tokens if split is not None else creation
    servers = usage.server_tool_use
    return {
        "conversation_id": conversation_id,
        "message_position": position,
        "model": response.model,
        "request_id": response.request_id,
        "stop_reason": None if response.stop_reason is None else str(response.stop_reason),
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cache_creation_input_tokens": creation,
        "cache_creation_5m_input_tokens": five_minutes,
        "cache_creation_1h_input_tokens": one_hour,
        "cache_read_input_tokens": usage.cache_read_input_tokens or 0,
        "web_search_requests": servers.web_search_requests if servers is not None else 0,
        "web_fetch_requests": servers.web_fetch_requests if servers is not None else 0,
        "service_tier": usage.service_tier,
        "latency_ms": latency_ms,
        "started_at": started_at,
        "finished_at": finished_at,
        "outcome": outcome,
    }


@dataclass(frozen=True)
class UsageTotals:
    """Token counts summed over requests (a conversation's, or any group's)."""

    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_creation_5m_input_tokens: int = 0
    cache_creation_1h_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    web_search_requests: int = 0
    web_fetch_requests: int = 0

    @property
    def total_input_tokens(self) -> int:
        """Every prompt token: uncached, written to the cache, and read from it."""
        return self.input_tokens + self.cache_creation_input_tokens + self.cache_read_input_tokens

    @classmethod
    def from_mapping(cls, values: dict[str, int]) -> UsageTotals:
        """Totals from a mapping with (at least) the field names as keys."""
        return cls(**{field.name: int(values.get(field.name, 0)) for field in fields(cls)})
