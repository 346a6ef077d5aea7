"""The usage ledger (``clust_usage``): one row per request attempt, written before the
request leaves and completed when its outcome is known.

An attempt row starts with outcome ``unknown`` (no tokens yet, ``finished_at`` equal
to ``started_at``) and the lease holder that sent it. Completing it writes what the
API reported and the outcome: ``reply`` (the reply is stored at
``message_position``), ``interrupted`` (billed, no turn stored: a stream cut after
``message_start``, or a reply refused because the lease was lost), ``failed``
(nothing billed: an HTTP error before any message) or ``summary``. A row that stays
``unknown`` is an attempt whose process died before it knew: it may have been
billed. While its holder still holds the conversation's lease, it is *in flight*.

Only a completed row is ever changed (``WHERE outcome = 'unknown'``), so completing
twice records once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from types import EllipsisType
from typing import Any, cast

from sqlalchemy import Connection, Row, Table, case, func, select

from clust.store.schema import UsageRow
from clust.store.sql import Sql, db_time

__all__ = [
    "BILLED_OUTCOMES",
    "COMPLETION_COLUMNS",
    "TOKEN_COLUMNS",
    "USAGE_COLUMNS",
    "complete_attempt",
    "drop_attempt",
    "fail_attempt",
    "insert_attempt",
    "insert_usage",
    "load_usage",
    "missing_usage_columns",
    "reply_message_id",
    "stop_reason_at",
    "usage",
    "usage_totals",
]

usage = cast(Table, UsageRow.__table__)

TOKEN_COLUMNS = (
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_creation_5m_input_tokens",
    "cache_creation_1h_input_tokens",
    "cache_read_input_tokens",
    "web_search_requests",
    "web_fetch_requests",
)
"""The counts of a usage row: what the API reported, summed by the totals."""

USAGE_COLUMNS = (
    "conversation_id",
    "message_position",
    "model",
    "request_id",
    "stop_reason",
    *TOKEN_COLUMNS,
    "service_tier",
    "latency_ms",
    "started_at",
    "finished_at",
    "outcome",
    "message_id",
    "cache_miss_reason",
    "cache_missed_input_tokens",
    "holder",
)
"""Every column of a usage row but its id."""

COMPLETION_COLUMNS = tuple(
    name
    for name in USAGE_COLUMNS
    if name not in ("conversation_id", "message_position", "started_at", "holder")
)
"""What completing an attempt writes (besides ``message_position``)."""

BILLED_OUTCOMES = ("reply", "interrupted", "summary")
"""Outcomes of attempts the API billed (``unknown`` may have been, ``failed`` was not)."""

# Columns a usage row may lack (exports written before they existed).
_OPTIONAL_USAGE = frozenset(
    {"message_id", "cache_miss_reason", "cache_missed_input_tokens", "holder"}
)
_INSERT_USAGE = Sql(
    f"INSERT INTO clust_usage ({', '.join(USAGE_COLUMNS)}) "
    f"VALUES ({', '.join(':' + name for name in USAGE_COLUMNS)})"
)


def missing_usage_columns(values: Mapping[str, Any]) -> list[str]:
    """The columns a usage row needs that ``values`` lacks (``conversation_id`` aside)."""
    return [
        name
        for name in USAGE_COLUMNS
        if name not in values and name not in _OPTIONAL_USAGE and name != "conversation_id"
    ]


def insert_usage(connection: Connection, values: Mapping[str, Any]) -> None:
    """Record what one request cost, completed (``values`` keyed by column name)."""
    params = {
        name: values.get(name) if name in _OPTIONAL_USAGE else values[name]
        for name in USAGE_COLUMNS
    }
    params["started_at"] = db_time(connection, values["started_at"])
    params["finished_at"] = db_time(connection, values["finished_at"])
    _INSERT_USAGE.run(connection, params).close()


# The intent row takes the conversation's model unless the request names another.
ATTEMPT_SELECT = """SELECT id, NULL, COALESCE(:model, model), NULL, NULL,
    0, 0, 0, 0, 0, 0, 0, 0, NULL, 0, :started_at, :started_at, 'unknown', NULL, NULL, NULL,
    :holder"""
"""The values of an intent row, selected from its ``clust_conversations`` row (or a CTE
holding its ``id`` and ``model``), in :data:`USAGE_COLUMNS` order."""

_INSERT_ATTEMPT = Sql(
    f"""INSERT INTO clust_usage ({", ".join(USAGE_COLUMNS)})
    {ATTEMPT_SELECT} FROM clust_conversations WHERE id = :conversation_id"""
)
_INSERT_ATTEMPT_PG = Sql(_INSERT_ATTEMPT.named + " RETURNING id")
_INSERT_LOOSE_ATTEMPT = Sql(
    f"""INSERT INTO clust_usage ({", ".join(USAGE_COLUMNS)})
    VALUES (:conversation_id, NULL, :model, NULL, NULL, 0, 0, 0, 0, 0, 0, 0, 0, NULL, 0,
        :started_at, :started_at, 'unknown', NULL, NULL, NULL, :holder)"""
)
_INSERT_LOOSE_ATTEMPT_PG = Sql(_INSERT_LOOSE_ATTEMPT.named + " RETURNING id")
_RESERVE = Sql(
    """UPDATE clust_usage SET reserved_input_tokens = :input, reserved_output_tokens = :output
    WHERE id = :attempt"""
)


def insert_attempt(
    connection: Connection,
    *,
    conversation_id: str,
    model: str | None,
    started_at: datetime,
    holder: str | None = None,
    reserved: tuple[int, int] | None = None,
) -> int:
    """Write the intent row of a request about to be sent (outcome ``unknown``) and
    return its id. ``model`` ``None``: the conversation's model (the conversation must
    exist then). ``reserved``: a budget's reservation, (input tokens, output tokens)."""
    params = {
        "conversation_id": conversation_id,
        "model": model,
        "started_at": db_time(connection, started_at),
        "holder": holder,
    }
    postgres = connection.dialect.name == "postgresql"
    if model is None:
        statement = _INSERT_ATTEMPT_PG if postgres else _INSERT_ATTEMPT
    else:
        statement = _INSERT_LOOSE_ATTEMPT_PG if postgres else _INSERT_LOOSE_ATTEMPT
    cursor = statement.run(connection, params)
    if postgres:
        row = cursor.fetchone()
        found = None if row is None else row[0]
    else:
        found = cursor.lastrowid if cursor.rowcount == 1 else None
    cursor.close()
    if found is None:
        raise LookupError(f"no conversation {conversation_id!r} to record an attempt of")
    if reserved is not None:
        reservation = {"attempt": found, "input": reserved[0], "output": reserved[1]}
        _RESERVE.run(connection, reservation).close()
    return int(found)


COMPLETION_SET = ", ".join(f"{name} = :{name}" for name in COMPLETION_COLUMNS if name != "outcome")
"""The SET list that completes an attempt from :data:`COMPLETION_COLUMNS` parameters
(``outcome`` and ``message_position`` aside: the statement sets them)."""

_COMPLETE_SQL = """UPDATE clust_usage SET message_position = :message_position,
    outcome = :outcome, {columns} WHERE id = :attempt AND outcome = 'unknown'"""
_COMPLETE = Sql(_COMPLETE_SQL.format(columns=COMPLETION_SET))
# The same without ``model``, when it is the one the attempt row holds: SQLite rewrites
# the index entries of every column a SET names, changed or not.
_COMPLETE_SAME_MODEL = Sql(
    _COMPLETE_SQL.format(columns=COMPLETION_SET.replace("model = :model, ", ""))
)


def completion_params(connection: Connection, values: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters of :data:`COMPLETION_SET` from a usage row's ``values``."""
    params = {name: values.get(name) for name in COMPLETION_COLUMNS}
    params["finished_at"] = db_time(connection, values["finished_at"])
    return params


def complete_attempt(
    connection: Connection,
    attempt_id: int,
    values: Mapping[str, Any],
    *,
    position: int | EllipsisType | None = ...,
    outcome: str | None = None,
    attempt_model: str | None = None,
) -> bool:
    """Write the outcome and usage of attempt ``attempt_id`` (``values`` keyed by column
    name, as :func:`clust.conversation.records.usage_values` gives them; ``position``
    (``None``: no message position) and ``outcome``, when given, replace theirs);
    whether it was still ``unknown`` (a completed attempt is left as it is).
    ``attempt_model``: the model the row holds, when known (then an unchanged one is
    not rewritten)."""
    params = completion_params(connection, values)
    params["attempt"] = attempt_id
    params["message_position"] = (
        values.get("message_position") if isinstance(position, EllipsisType) else position
    )
    if outcome is not None:
        params["outcome"] = outcome
    same = attempt_model is not None and attempt_model == params["model"]
    return (_COMPLETE_SAME_MODEL if same else _COMPLETE).count(connection, params) > 0


_FAIL = Sql(
    """UPDATE clust_usage SET outcome = 'failed', finished_at = :finished_at,
    latency_ms = :latency_ms WHERE id = :attempt AND outcome = 'unknown'"""
)


def fail_attempt(
    connection: Connection, attempt_id: int, finished_at: datetime, latency_ms: int
) -> bool:
    """Complete attempt ``attempt_id`` as ``failed`` (no message came back: nothing
    billed); whether it was still ``unknown``."""
    params = {
        "attempt": attempt_id,
        "finished_at": db_time(connection, finished_at),
        "latency_ms": latency_ms,
    }
    return _FAIL.count(connection, params) > 0


_DROP = Sql("DELETE FROM clust_usage WHERE id = :attempt AND outcome = 'unknown'")


def drop_attempt(connection: Connection, attempt_id: int) -> bool:
    """Delete the intent row of a request that was never sent after all (its turn was
    refused before it left: nothing was billed, nor may have been); whether it was
    still ``unknown``."""
    return _DROP.count(connection, {"attempt": attempt_id}) > 0


_REPLY_ID = Sql(
    """SELECT message_id FROM clust_usage
    WHERE conversation_id = :id AND message_position = :position AND outcome = 'reply'"""
)


def reply_message_id(connection: Connection, conversation_id: str, position: int) -> str | None:
    """The message id recorded for the reply at ``position`` (``None`` if none is)."""
    row = _REPLY_ID.one(connection, {"id": conversation_id, "position": position})
    return None if row is None else cast("str | None", row[0])


def stop_reason_at(connection: Connection, conversation_id: str, position: int) -> str | None:
    """The stop reason recorded for the reply at ``position`` (``None`` if none is)."""
    return connection.execute(
        select(usage.c.stop_reason).where(
            usage.c.conversation_id == conversation_id, usage.c.message_position == position
        )
    ).scalar()


def load_usage(connection: Connection, conversation_id: str) -> Sequence[Row[Any]]:
    """The usage rows of a conversation, in the order they were recorded (attempts
    still ``unknown`` and ``failed`` ones included)."""
    return connection.execute(
        select(usage).where(usage.c.conversation_id == conversation_id).order_by(usage.c.id)
    ).all()


_BILLED = usage.c.outcome.in_(BILLED_OUTCOMES)
_IN_FLIGHT = """SELECT count(*) FROM clust_usage u JOIN clust_conversations c
    ON c.id = u.conversation_id AND c.lease_holder = u.holder
    WHERE u.conversation_id = :id AND u.outcome = 'unknown' AND c.lease_expires_at > {now}"""
_IN_FLIGHT_SQLITE = Sql(_IN_FLIGHT.format(now=":now"))
_IN_FLIGHT_PG = Sql(_IN_FLIGHT.format(now="clock_timestamp()"))


def usage_totals(
    connection: Connection, conversation_id: str, now: datetime | None = None
) -> dict[str, int]:
    """Sums of every token count of a conversation; ``requests`` (billed attempts),
    ``cache_hits`` (requests that read from the prompt cache), ``unknown_attempts``
    (attempts whose process died before it learnt their outcome: maybe billed) and
    ``in_flight_attempts`` (unknown yet, but their sender still holds the lease).

    ``now`` is the SQLite clock reading (PostgreSQL uses its own clock).
    """
    row = connection.execute(
        select(
            func.count(case((_BILLED, 1))).label("requests"),
            *(func.coalesce(func.sum(usage.c[name]), 0).label(name) for name in TOKEN_COLUMNS),
            func.count(case((usage.c.cache_read_input_tokens > 0, 1))).label("cache_hits"),
            func.count(case((usage.c.outcome == "unknown", 1))).label("unknown_attempts"),
        ).where(usage.c.conversation_id == conversation_id)
    ).one()
    totals = {name: int(value) for name, value in row._mapping.items()}
    totals["in_flight_attempts"] = 0
    if totals["unknown_attempts"]:  # rare: ask which of them are still being sent
        postgres = connection.dialect.name == "postgresql"
        params: dict[str, Any] = {"id": conversation_id}
        if not postgres:
            params["now"] = db_time(connection, now or datetime.now().astimezone())
        found = (_IN_FLIGHT_PG if postgres else _IN_FLIGHT_SQLITE).one(connection, params)
        totals["in_flight_attempts"] = int(found[0])
        totals["unknown_attempts"] -= totals["in_flight_attempts"]
    return totals
