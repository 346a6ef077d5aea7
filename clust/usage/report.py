"""``usage_report``: token totals, cost and cache savings over stored usage rows.

How it computes: one SQL statement (see :mod:`clust.usage.statement`) sums the rows
in the database, grouped by (report key, model, service tier, price period), where a
price period is a span between two consecutive effective dates of the price table.
Prices depend on the model and on when the request was made, and within one such
group they are constant, so Python prices each aggregated row with the price in force
and adds the amounts up per report key. The rows Python sees number (keys x models x
tiers x price periods actually present), never the usage rows themselves.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, Row

from clust.messages.errors import InvalidParameter
from clust.store.nul_text import decode_json
from clust.usage.cost import cache_savings, cost_of
from clust.usage.pricing import Price, PriceTable
from clust.usage.statement import METADATA_PREFIX, SUMMED, Filters, parse_grouping
from clust.usage.statement import report_statement as _statement

__all__ = ["HasEngine", "UsageReportRow", "usage_report"]


class HasEngine(Protocol):
    """Anything with an SQLAlchemy ``engine`` (a :class:`clust.Store`)."""

    @property
    def engine(self) -> Engine: ...


@dataclass(frozen=True)
class UsageReportRow:
    """Usage of one group (or of everything, ``key`` None, when not grouped).

    Attributes:
        key: the group: a conversation id, model id or stop reason (``str``, or
            ``None`` for rows without one, e.g. of deleted conversations), a UTC
            ``date`` (by day), a UTC ``datetime`` at the hour (by hour), or the JSON
            value of a metadata key (``None`` when absent, null, or the conversation
            was deleted).
        requests: how many billed requests (usage rows of a billed outcome).
        input_tokens: uncached input tokens.
        output_tokens: output tokens.
        cache_write_5m_tokens, cache_write_1h_tokens: input tokens written to the
            cache with a 5-minute / 1-hour TTL.
        cache_read_tokens: input tokens read from the cache.
        cache_hit_ratio: cache reads / all input tokens (uncached, written, read), a
            ``float`` (a ratio, not money); 0.0 when there was no input.
        cost: USD, a ``Decimal``; ``None`` when any row of the group is of a model
            with no price in force at its time (see ``unpriced_models``), never 0.
        cache_savings: USD caching saved (cost had cache writes and reads been plain
            input, minus ``cost``; negative when writes outweighed reads); ``None``
            when ``cost`` is.
        unpriced_models: the models of this group that had no price.
        unknown_attempts: requests whose outcome was never recorded (their process
            died after sending them): they **may have been billed**, and are not in
            the token counts nor the cost.
        in_flight_attempts: requests being sent right now (not finished, not lost).
    """

    key: Any
    requests: int
    input_tokens: int
    output_tokens: int
    cache_write_5m_tokens: int
    cache_write_1h_tokens: int
    cache_read_tokens: int
    cache_hit_ratio: float
    cost: Decimal | None
    cache_savings: Decimal | None
    unpriced_models: tuple[str, ...] = ()
    unknown_attempts: int = 0
    in_flight_attempts: int = 0

    @property
    def total_input_tokens(self) -> int:
        """Every input token: uncached, written to the cache and read from it."""
        return (
            self.input_tokens
            + self.cache_write_5m_tokens
            + self.cache_write_1h_tokens
            + self.cache_read_tokens
        )


class _Group:
    """Sums of one report key, priced aggregated row by aggregated row."""

    def __init__(self, key: Any) -> None:
        self.key = key
        self.requests = 0
        self.unknown = 0
        self.in_flight = 0
        self.sums = dict.fromkeys(SUMMED, 0)
        self.cost: Decimal | None = Decimal(0)
        self.savings: Decimal | None = Decimal(0)
        self.unpriced: set[str] = set()

    def add(self, row: Row[Any], price: Price | None) -> None:
        self.requests += int(row.requests)
        self.unknown += int(row.unknown_attempts)
        self.in_flight += int(row.in_flight_attempts)
        for name in SUMMED:
            self.sums[name] += int(row._mapping[name])
        if price is None:
            self.unpriced.add(str(row.model))
            self.cost = self.savings = None
        elif self.cost is not None and self.savings is not None:
            batch = row.service_tier == "batch"
            self.cost += cost_of(row, price, batch=batch)
            self.savings += cache_savings(row, price, batch=batch)

    def result(self) -> UsageReportRow:
        sums = self.sums
        read = sums["cache_read_input_tokens"]
        all_input = (
            sums["input_tokens"]
            + sums["cache_creation_5m_input_tokens"]
            + sums["cache_creation_1h_input_tokens"]
            + read
        )
        return UsageReportRow(
            key=self.key,
            requests=self.requests,
            input_tokens=sums["input_tokens"],
            output_tokens=sums["output_tokens"],
            cache_write_5m_tokens=sums["cache_creation_5m_input_tokens"],
            cache_write_1h_tokens=sums["cache_creation_1h_input_tokens"],
            cache_read_tokens=read,
            cache_hit_ratio=read / all_input if all_input else 0.0,
            cost=self.cost,
            cache_savings=self.savings,
            unpriced_models=tuple(sorted(self.unpriced)),
            unknown_attempts=self.unknown,
            in_flight_attempts=self.in_flight,
        )


def _read_key(by: str | None, value: Any) -> Any:
    """The Python value of a key as the driver returned it."""
    if value is None or by in (None, "conversation", "model", "stop_reason"):
        return value
    if by == "day":
        return value if isinstance(value, date) else date.fromisoformat(value)
    if by == "hour":
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
        return moment.replace(tzinfo=timezone.utc)
    return decode_json(json.loads(value))


def _identity(by: str | None, key: Any) -> Any:
    """What two equal keys share: JSON text for metadata (``True`` is not ``1``)."""
    if by is not None and by.startswith(METADATA_PREFIX):
        return json.dumps(key, sort_keys=True, separators=(",", ":"))
    return key


def _order(key: Any) -> tuple[int, int, Any]:
    if key is None:
        return (1, 0, 0)
    if isinstance(key, bool):
        return (0, 0, int(key))
    if isinstance(key, int | float):
        return (0, 1, key)
    if isinstance(key, str):
        return (0, 2, key)
    if isinstance(key, date):
        return (0, 3, key)
    return (0, 4, json.dumps(key, sort_keys=True))


@contextmanager
def _connection(source: Engine | Connection | HasEngine) -> Iterator[Connection]:
    if isinstance(source, Connection):
        yield source
        return
    engine = source if isinstance(source, Engine) else getattr(source, "engine", None)
    if not isinstance(engine, Engine):
        raise InvalidParameter(
            "source", source, "an Engine, a Connection or an object with an .engine (a Store)"
        )
    with engine.connect() as connection:
        yield connection


def usage_report(
    source: Engine | Connection | HasEngine,
    *,
    by: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    model: str | None = None,
    conversation_id: str | None = None,
    metadata: Mapping[str, str | int | float | bool | None] | None = None,
    prices: PriceTable | None = None,
) -> list[UsageReportRow]:
    """Token totals, cost and cache savings of the stored usage rows.

    Args:
        source: a :class:`clust.Store` (anything with an ``.engine``), an Engine, or a
            Connection (its transaction is the caller's).
        by: ``None`` (one row of totals, also when nothing matched), ``"conversation"``,
            ``"model"``, ``"day"``, ``"hour"`` (UTC), ``"stop_reason"`` or
            ``"metadata:<key>"`` (a key of the conversations' metadata, e.g.
            ``"metadata:user_id"``). Groups come sorted by key, ``None`` last.
        since, until: only requests started at or after ``since`` and before
            ``until`` (naive datetimes are UTC).
        model: only this model id (exact).
        conversation_id: only this conversation.
        metadata: only conversations whose metadata holds all these key/values (as
            :meth:`clust.Store.list_conversations` filters).
        prices: the price table (default :meth:`PriceTable.default`).

    Cost and cache savings use, for each request, the price in force for its model
    when it started (see :meth:`PriceTable.price_for`), halved for Batch API requests
    (``service_tier`` "batch").

    Every request is in the ledger before it is sent, so a request whose process died
    before its outcome was known is not missing: it is counted in
    ``unknown_attempts`` (maybe billed, tokens unknown), apart from ``requests``.
    """
    table = prices if prices is not None else PriceTable.default()
    if not isinstance(table, PriceTable):
        raise InvalidParameter("prices", prices, "a PriceTable")
    grouping = parse_grouping(by)
    filters = Filters(since, until, model, conversation_id, metadata)
    boundaries = table.effective_dates()
    starts = [datetime.combine(day, time(), timezone.utc) for day in boundaries]
    with _connection(source) as connection:
        statement = _statement(connection, by=grouping, filters=filters, boundaries=boundaries)
        found = connection.execute(statement).all()
    groups: dict[Any, _Group] = {}
    if grouping is None:
        groups[None] = _Group(None)
    for row in found:
        if grouping is None:
            key = None
        elif grouping == "model":
            key = row.model
        else:
            key = _read_key(grouping, row.key)
        group = groups.setdefault(_identity(grouping, key), _Group(key))
        period = int(row.period)
        price = table.price_for(row.model, starts[period - 1]) if period else None
        group.add(row, price)
    return [group.result() for group in sorted(groups.values(), key=lambda g: _order(g.key))]
