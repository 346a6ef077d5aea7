"""A time-range usage report reads ``clust_usage`` through ``ix_clust_usage_started``.

20,000 usage rows over ~140 days, ``ANALYZE``d; a report over one day is explained
with the statement and parameters ``usage_report`` sent (captured with a
``before_cursor_execute`` listener): ``EXPLAIN QUERY PLAN`` on SQLite (expect a range
``SEARCH`` of ``clust_usage``: see ``RANGE_READ``), ``EXPLAIN (FORMAT JSON)`` on
PostgreSQL (expect an Index, Index Only or Bitmap Index scan of
``ix_clust_usage_started``, no other index of ``clust_usage`` and no sequential scan
of it).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, event
from usage.usage_support import conversation, usage_row, write

from clust import Store
from clust.usage import usage_report

# SQLite: a range search of ix_clust_usage_started, or (with statistics showing few
# models) a skip-scan of ix_clust_usage_model_started over the same range, which the
# planner rightly prefers when it also saves the GROUP BY a sort.
RANGE_READ = re.compile(
    r"SEARCH clust_usage USING INDEX (?:ix_clust_usage_started \(started_at>\? AND"
    r"|ix_clust_usage_model_started \(ANY\(model\) AND started_at>\? AND)"
)
ROWS = 20_000
START = datetime(2026, 1, 1, tzinfo=timezone.utc)
STEP = timedelta(minutes=10)


@pytest.fixture
def engine(store: Store) -> Iterator[Engine]:
    users = 20
    write(
        store.engine,
        conversation_rows=[conversation(f"c{n}", {"user": f"u{n}"}) for n in range(users)],
        usage_rows=[
            usage_row(
                f"c{index % users}",
                "model-a" if index % 3 else "model-b",
                START + index * STEP,
                input=100,
                output=10,
                read=50,
            )
            for index in range(ROWS)
        ],
    )
    with store.engine.connect() as connection:
        connection.exec_driver_sql("ANALYZE")
        connection.commit()
    yield store.engine


def statement_of(connection: Connection, **arguments: Any) -> tuple[str, Any]:
    sent: list[tuple[str, Any]] = []

    def capture(*args: Any) -> None:
        _conn, _cursor, statement, parameters, _context, _many = args
        if statement.strip().upper() not in {"BEGIN", "COMMIT", "ROLLBACK"}:
            sent.append((statement, parameters))

    event.listen(connection, "before_cursor_execute", capture)
    try:
        usage_report(connection, **arguments)
    finally:
        event.remove(connection, "before_cursor_execute", capture)
    assert len(sent) == 1, sent
    return sent[0]


def sqlite_plan(connection: Connection, sql: str, parameters: Any) -> list[str]:
    return [row[3] for row in connection.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, parameters)]


def postgres_plan(connection: Connection, sql: str, parameters: Any) -> dict[str, Any]:
    document: Any = connection.exec_driver_sql("EXPLAIN (FORMAT JSON) " + sql, parameters).scalar()
    if isinstance(document, str):
        document = json.loads(document)
    return dict(document[0]["Plan"])


def nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", []):
        yield from nodes(child)


@pytest.mark.parametrize("by", [None, "day", "model", "metadata:user"])
def test_time_range_uses_the_started_index(engine: Engine, by: str | None) -> None:
    since = START + timedelta(days=70)
    with engine.connect() as connection:
        sql, parameters = statement_of(
            connection, by=by, since=since, until=since + timedelta(days=1)
        )
        if connection.dialect.name == "sqlite":
            details = sqlite_plan(connection, sql, parameters)
            shown = "\n".join(details)
            reads = [line for line in details if "clust_usage" in line.split(" USING")[0]]
            assert reads, shown
            assert all(RANGE_READ.match(line) for line in reads), shown
            return
        plan = postgres_plan(connection, sql, parameters)
    shown = json.dumps(plan, indent=1)
    scans = [node for node in nodes(plan) if node["Node Type"].endswith("Scan")]
    assert not [
        node
        for node in scans
        if node["Node Type"] == "Seq Scan" and node["Relation Name"] == "clust_usage"
    ], shown
    indexes = {node["Index Name"] for node in scans if "Index Name" in node}
    assert "ix_clust_usage_started" in indexes, shown
    assert not {name for name in indexes if name.startswith("ix_clust_usage")} - {
        "ix_clust_usage_started"
    }, shown
