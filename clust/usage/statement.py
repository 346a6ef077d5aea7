"""The SQL of a usage report: one aggregate statement over ``clust_usage``.

Rows are summed in the database, grouped by (report key, model, service tier, price
period). The price period is a ``CASE`` over the price table's effective dates: the
number of dates on or before the row's ``started_at``. Between two consecutive dates
every model's price is constant, so each aggregated row has exactly one price, and
costs computed from the sums are exact. The statement reads only the rows the filters
select: a time range is a range scan of ``ix_clust_usage_started`` (or, on SQLite with
statistics showing few models, a skip-scan of ``ix_clust_usage_model_started`` over the
same range), a model with a time range a range scan of ``ix_clust_usage_model_started``.

Day and hour keys are UTC: PostgreSQL truncates ``started_at AT TIME ZONE 'UTC'``;
SQLite formats the stored UTC text with ``strftime``. A metadata key is read from the
conversation's ``metadata`` JSON as JSON text (``true`` stays distinct from ``1``
and from ``"1"``) through a left join, so usage rows of deleted conversations
(``conversation_id`` NULL) group under a null key; SQLite finds the key with
``json_each`` (its JSON paths cannot spell every key).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from typing import Any

from sqlalchemy import (
    Connection,
    Date,
    Select,
    Text,
    and_,
    case,
    cast,
    exists,
    func,
    literal,
    literal_column,
    select,
)
from sqlalchemy.sql.elements import ColumnElement

from clust.messages.errors import InvalidParameter
from clust.messages.storable import check_text, checked_metadata
from clust.store.nul_text import encode_text
from clust.store.repository import conversations, metadata_entries, metadata_matches, usage
from clust.store.usage_rows import BILLED_OUTCOMES

__all__ = ["GROUPINGS", "METADATA_PREFIX", "Filters", "parse_grouping", "report_statement"]

GROUPINGS = ("conversation", "model", "day", "hour", "stop_reason")
METADATA_PREFIX = "metadata:"

SUMMED = (
    "input_tokens",
    "output_tokens",
    "cache_creation_5m_input_tokens",
    "cache_creation_1h_input_tokens",
    "cache_read_input_tokens",
)
"""The summed columns, under their ``clust_usage`` names."""

_SCALARS = (str, int, float, bool, type(None))


def parse_grouping(by: str | None) -> str | None:
    """``by`` checked: ``None``, one of :data:`GROUPINGS` or ``metadata:<key>``."""
    if by is None or by in GROUPINGS:
        return by
    if isinstance(by, str) and by.startswith(METADATA_PREFIX) and len(by) > len(METADATA_PREFIX):
        check_text("by", by)
        return by
    raise InvalidParameter("by", by, f"None, one of {list(GROUPINGS)} or 'metadata:<key>'")


def _utc(field: str, value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise InvalidParameter(field, value, "a datetime (naive is taken as UTC)")
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)  # SQLite compares the stored UTC text


@dataclass(frozen=True)
class Filters:
    """Which usage rows a report reads; ``since`` inclusive, ``until`` exclusive."""

    since: datetime | None = None
    until: datetime | None = None
    model: str | None = None
    conversation_id: str | None = None
    metadata: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "since", _utc("since", self.since))
        object.__setattr__(self, "until", _utc("until", self.until))
        for name in ("model", "conversation_id"):
            value = getattr(self, name)
            check_text(name, value, optional=True)
            if value is not None and "\x00" in value:  # no id holds one
                raise InvalidParameter(name, value, "a string without NUL characters")
        if self.metadata is not None:
            for key, value in checked_metadata(self.metadata).items():
                if not isinstance(value, _SCALARS):
                    raise InvalidParameter(
                        f"metadata[{key!r}]", value, "a str, int, float, bool or None"
                    )

    def conditions(self, connection: Connection) -> list[ColumnElement[bool]]:
        """The WHERE terms (metadata through the joined conversation)."""
        terms: list[ColumnElement[bool]] = []
        if self.since is not None:
            terms.append(usage.c.started_at >= self.since)
        if self.until is not None:
            terms.append(usage.c.started_at < self.until)
        if self.model is not None:
            terms.append(usage.c.model == self.model)
        if self.conversation_id is not None:
            terms.append(usage.c.conversation_id == self.conversation_id)
        if self.metadata:
            terms.append(metadata_matches(connection, self.metadata))
        return terms


def _metadata_value(connection: Connection, key: str) -> ColumnElement[Any]:
    """The value under ``key`` as JSON text; SQL NULL or ``null`` when absent. Strings
    come as stored (:func:`clust.store.nul_text.encode_json`)."""
    column = conversations.c.metadata
    stored_key = encode_text(key)
    if connection.dialect.name == "postgresql":
        return cast(column.op("->")(cast(literal(stored_key), Text)), Text)
    # json_each, not a JSON path: SQLite's paths cannot spell every key (a '"').
    entry = metadata_entries("grouped")
    # json_each gives 1/0 for true/false: keep booleans as JSON booleans.
    text = case(
        (entry.c.type == "true", literal_column("'true'")),
        (entry.c.type == "false", literal_column("'false'")),
        else_=func.json_quote(entry.c.value),
    )
    return select(text).select_from(entry).where(entry.c.key == stored_key).scalar_subquery()


def _key(connection: Connection, by: str) -> ColumnElement[Any]:
    postgres = connection.dialect.name == "postgresql"
    started = usage.c.started_at
    if by == "conversation":
        return usage.c.conversation_id
    if by == "model":
        return usage.c.model
    if by == "stop_reason":
        return usage.c.stop_reason
    if by == "day":
        if postgres:
            return cast(started.op("AT TIME ZONE")(literal_column("'UTC'")), Date)
        return func.strftime(literal_column("'%Y-%m-%d'"), started)
    if by == "hour":
        if postgres:
            utc = started.op("AT TIME ZONE")(literal_column("'UTC'"))
            return func.date_trunc(literal_column("'hour'"), utc)
        return func.strftime(literal_column("'%Y-%m-%d %H:00:00'"), started)
    return _metadata_value(connection, by[len(METADATA_PREFIX) :])


def _period(boundaries: Sequence[date]) -> ColumnElement[Any]:
    """How many price dates are on or before ``started_at`` (0: before them all)."""
    if not boundaries:
        return literal_column("0")
    starts = [datetime.combine(day, time(), timezone.utc) for day in sorted(boundaries)]
    return case(
        *[
            (usage.c.started_at >= start, literal_column(str(number)))
            for number, start in reversed(list(enumerate(starts, start=1)))
        ],
        else_=literal_column("0"),
    )


def _attempt_counts(connection: Connection) -> list[ColumnElement[Any]]:
    """Per row, 1 or 0: ``billed`` (a billed outcome), ``unknown`` (an attempt whose
    outcome was never recorded: maybe billed) and ``in_flight`` (unknown, but its
    sender still holds the conversation's lease: a request being sent now). The lease
    is looked up (by primary key) for unknown rows only."""
    leased = conversations.alias("leased")
    now = func.now() if connection.dialect.name == "postgresql" else datetime.now(timezone.utc)
    live = exists().where(
        leased.c.id == usage.c.conversation_id,
        leased.c.lease_holder == usage.c.holder,
        leased.c.lease_expires_at > now,
    )
    unknown = usage.c.outcome == "unknown"
    one: ColumnElement[Any] = literal_column("1")
    zero: ColumnElement[Any] = literal_column("0")
    return [
        case((usage.c.outcome.in_(BILLED_OUTCOMES), one), else_=zero).label("billed"),
        case((and_(unknown, live), zero), (unknown, one), else_=zero).label("unknown"),
        case((and_(unknown, live), one), else_=zero).label("in_flight"),
    ]


def report_statement(
    connection: Connection, *, by: str | None, filters: Filters, boundaries: Sequence[date]
) -> Select[Any]:
    """Sums per (key, model, service tier, price period).

    Result columns: ``key`` (when ``by`` is given), ``model``, ``service_tier``,
    ``period``, ``requests`` (billed requests), ``unknown_attempts`` (attempts of
    unknown outcome: maybe billed), ``in_flight_attempts`` and the :data:`SUMMED`
    columns.
    """
    by = parse_grouping(by)
    joined = (by is not None and by.startswith(METADATA_PREFIX)) or bool(filters.metadata)
    source = (
        usage.outerjoin(conversations, conversations.c.id == usage.c.conversation_id)
        if joined
        else usage
    )
    picked: list[ColumnElement[Any]] = [
        usage.c.model,
        usage.c.service_tier,
        _period(boundaries).label("period"),
        *(usage.c[name] for name in SUMMED),
        *_attempt_counts(connection),
    ]
    if by is not None and by != "model":
        picked.append(_key(connection, by).label("key"))
    # Group the per-row expressions by name in an outer query: PostgreSQL would not
    # match a GROUP BY expression to its SELECT twin once their parameters differ.
    rows = select(*picked).select_from(source).where(*filters.conditions(connection)).subquery()
    groups = [rows.c.model, rows.c.service_tier, rows.c.period]
    if by is not None and by != "model":
        groups.insert(0, rows.c.key)
    return select(
        *groups,
        func.coalesce(func.sum(rows.c.billed), 0).label("requests"),
        func.coalesce(func.sum(rows.c.unknown), 0).label("unknown_attempts"),
        func.coalesce(func.sum(rows.c.in_flight), 0).label("in_flight_attempts"),
        *(func.coalesce(func.sum(rows.c[name]), 0).label(name) for name in SUMMED),
    ).group_by(*groups)
