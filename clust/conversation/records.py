"""What a reply leaves in the store: its usage row, and the totals read back."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal
from typing import Any

from clust.messages.response import MessagesResponseBody

__all__ = ["TurnUsage", "UsageTotals", "usage_values"]


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
    for the partial message of a stream that broke off after billing began, or a
    reply refused at finish; ``"summary"`` for a context-window summary request."""
    usage = response.usage
    creation = usage.cache_creation_input_tokens or 0
    split = usage.cache_creation
    one_hour = split.ephemeral_1h_input_tokens if split is not None else 0
    five_minutes = split.ephemeral_5m_input_tokens if split is not None else creation
    servers = usage.server_tool_use
    diagnostics = response.diagnostics
    miss = diagnostics.cache_miss_reason if diagnostics is not None else None
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
        "message_id": response.id or None,
        "cache_miss_reason": miss.type if miss is not None else None,
        "cache_missed_input_tokens": miss.cache_missed_input_tokens if miss is not None else None,
    }


@dataclass(frozen=True)
class UsageTotals:
    """Token counts summed over requests (a conversation's, or any group's).

    ``requests`` counts the billed requests; ``cache_hits`` those that read from the
    prompt cache; ``cost`` and ``cache_savings`` are in USD at the store's prices
    (``None`` when a model had no price, or when the totals were not priced);
    :attr:`cache_hit_ratio` is the share of prompt tokens read from the cache.

    ``unknown_attempts`` counts requests whose outcome was never recorded: their
    process died after the request left (killed, crashed) and they **may have been
    billed** without appearing in the token counts. ``in_flight_attempts`` counts
    requests being sent right now (their sender still holds the conversation's lease):
    not lost, just not finished.
    """

    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_creation_5m_input_tokens: int = 0
    cache_creation_1h_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    web_search_requests: int = 0
    web_fetch_requests: int = 0
    cache_hits: int = 0
    cost: Decimal | None = None
    cache_savings: Decimal | None = None
    unknown_attempts: int = 0
    in_flight_attempts: int = 0

    @property
    def total_input_tokens(self) -> int:
        """Every prompt token: uncached, written to the cache, and read from it."""
        return self.input_tokens + self.cache_creation_input_tokens + self.cache_read_input_tokens

    @property
    def cache_hit_ratio(self) -> float:
        """Cache reads / every prompt token (0.0 when there was no input)."""
        total = self.total_input_tokens
        return self.cache_read_input_tokens / total if total else 0.0

    @classmethod
    def from_mapping(
        cls,
        values: Mapping[str, int],
        *,
        cost: Decimal | None = None,
        cache_savings: Decimal | None = None,
    ) -> UsageTotals:
        """Totals from a mapping with (at least) the token fields' names as keys."""
        counts = {name: int(values.get(name, 0)) for name in _COUNTS}
        return cls(**counts, cost=cost, cache_savings=cache_savings)


_COUNTS = tuple(f.name for f in fields(UsageTotals) if f.name not in ("cost", "cache_savings"))


@dataclass(frozen=True)
class TurnUsage:
    """What one request of a conversation used, from its usage row.

    Attributes:
        position: the stored reply's position (``None``: a billed attempt that stored
            no turn, ``outcome`` "interrupted": a stream cut after billing began, or a
            reply refused because its lease was lost; or an attempt not completed).
        message_id: the reply's message id.
        model, request_id, stop_reason, service_tier: as the API reported them.
        input_tokens, output_tokens, cache_creation_5m_input_tokens,
            cache_creation_1h_input_tokens, cache_read_input_tokens: token counts.
        cache_miss_reason: why the prompt cache missed since the previous reply, as
            the API explained it (``diagnostics.cache_miss_reason.type``: e.g.
            ``"system_changed"``, ``"messages_changed"``), or ``None``.
        cache_missed_input_tokens: the tokens that miss cost, when given.
        latency_ms, started_at, finished_at: timing of the request.
        outcome: ``"reply"``, ``"interrupted"`` (billed, no turn stored),
            ``"summary"`` (a context-window summary request), ``"failed"`` (no
            message came back: not billed) or ``"unknown"`` (not completed: in flight,
            or its process died; maybe billed). Until completed, the token counts
            are 0 and ``finished_at`` equals ``started_at``.
    """

    position: int | None
    message_id: str | None
    model: str
    request_id: str | None
    stop_reason: str | None
    service_tier: str | None
    input_tokens: int
    output_tokens: int
    cache_creation_5m_input_tokens: int
    cache_creation_1h_input_tokens: int
    cache_read_input_tokens: int
    cache_miss_reason: str | None
    cache_missed_input_tokens: int | None
    latency_ms: int
    started_at: datetime
    finished_at: datetime
    outcome: str

    @property
    def cache_hit(self) -> bool:
        """Whether the request read anything from the prompt cache."""
        return self.cache_read_input_tokens > 0

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> TurnUsage:
        """The entry of a ``clust_usage`` row."""
        values = {f.name: row[f.name] for f in fields(cls) if f.name != "position"}
        return cls(position=row["message_position"], **values)
