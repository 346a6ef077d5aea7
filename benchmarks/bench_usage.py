"""Usage reports over a million stored turns: ``usage_report`` by model and by day.

Run: ``python -m benchmarks.bench_usage [--turns N] [--runs N] [--no-sqlite] [--no-postgres]``
(default 1,000,000 turns; PostgreSQL from ``CLUST_BENCH_POSTGRES_URL`` or
``CLUST_TEST_POSTGRES_URL``, default ``postgresql+psycopg://postgres@127.0.0.1:5432/test``).

One run, on an SQLite file in a temporary directory and in a fresh PostgreSQL schema
(dropped at the end), each created by ``Store`` (so with the shipped schema and indexes):

1. bulk-loads 10,000 conversations (metadata ``{"user_id": "user-N"}``, 500 users) and
   N usage rows referencing them: four models (one priced by an override of the
   shipped price table), stop reasons, a few Batch API rows, cache writes (5m and 1h)
   and reads, start times spread over the 90 days before 2026-12-01, appended in time
   order as a live store appends them. PostgreSQL loads with ``COPY`` (psycopg's
   ``cursor.copy``), SQLite with ``executemany`` in transactions of 100,000 rows;
   then ``VACUUM ANALYZE`` (PostgreSQL: what autovacuum does on a live database) or
   ``ANALYZE`` (SQLite);
2. times ``usage_report(store, by=..., prices=...)`` grouped by model and by day (and,
   for information, by the ``user_id`` metadata key), over all rows and over the last
   7 days (``since``/``until``): the median wall time of ``--runs`` calls after one
   warm-up call, each call the whole public API path (SQL, rows, pricing in Decimal);
3. prints the plan of the 7-day report: ``EXPLAIN ANALYZE`` of the exact statement
   ``usage_report`` sent on PostgreSQL (it must read ``clust_usage`` through
   ``ix_clust_usage_started``), ``EXPLAIN QUERY PLAN`` on SQLite.

Target: every report under 1 s on PostgreSQL.
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from statistics import median
from typing import Any, cast

from sqlalchemy import Connection, Engine, Table, create_engine, event, insert, select, text
from sqlalchemy.engine import make_url

from clust import Store
from clust.store.schema import ConversationRow, UsageRow
from clust.usage import Price, PriceTable, UsageReportRow, usage_report

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DEFAULT_TURNS = 1_000_000
CONVERSATIONS = 10_000
USERS = 500
DAYS = 90
END = datetime(2026, 12, 1, tzinfo=timezone.utc)
START = END - timedelta(days=DAYS)
WEEK = (END - timedelta(days=7), END)
SQLITE_BATCH = 100_000

# (model, share of requests): three with shipped list prices, one priced below.
MODELS = (
    ("claude-sonnet-4-5-20250929", 0.45),
    ("claude-haiku-4-5-20251001", 0.30),
    ("claude-opus-4-5-20251101", 0.10),
    ("claude-sonnet-5-5", 0.15),
)
PRICES = PriceTable.default().with_prices(
    Price("claude-sonnet-5-5", date(2026, 1, 1), input="3", output="15")
)

USAGE_COLUMNS = (
    "conversation_id",
    "message_position",
    "model",
    "request_id",
    "stop_reason",
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_creation_5m_input_tokens",
    "cache_creation_1h_input_tokens",
    "cache_read_input_tokens",
    "web_search_requests",
    "web_fetch_requests",
    "service_tier",
    "latency_ms",
    "started_at",
    "finished_at",
)
OPTIONAL_COLUMNS = {"outcome": "reply"}  # newer schema columns, filled when present

QUERIES: tuple[tuple[str, dict[str, Any]], ...] = (
    ("by model, all rows", {"by": "model"}),
    ("by day, all rows", {"by": "day"}),
    ("by model, last 7 days", {"by": "model", "since": WEEK[0], "until": WEEK[1]}),
    ("by day, last 7 days", {"by": "day", "since": WEEK[0], "until": WEEK[1]}),
    ("by user_id, all rows", {"by": "metadata:user_id"}),
    ("by user_id, last 7 days", {"by": "metadata:user_id", "since": WEEK[0], "until": WEEK[1]}),
)
TARGETED = {name for name, arguments in QUERIES if arguments["by"] in ("model", "day")}
EXPLAINED = ("by day, last 7 days", {"by": "day", "since": WEEK[0], "until": WEEK[1]})

conversations_table = cast(Table, ConversationRow.__table__)
usage_table = cast(Table, UsageRow.__table__)


# -- the data ----------------------------------------------------------------------------


def conversation_ids(count: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    return [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(count)]


def usage_columns() -> tuple[str, ...]:
    """The columns loaded: :data:`USAGE_COLUMNS`, plus newer ones the schema has."""
    return USAGE_COLUMNS + tuple(name for name in OPTIONAL_COLUMNS if name in usage_table.c)


def usage_rows(turns: int, ids: Sequence[str], seed: int = 11) -> Iterator[tuple[Any, ...]]:
    """``turns`` rows (tuples in :func:`usage_columns` order), oldest first."""
    rng = random.Random(seed)
    draw = rng.random
    models: list[str] = []
    for model, share in MODELS:
        models += [model] * round(share * 100)
    extra = tuple(OPTIONAL_COLUMNS[name] for name in usage_columns()[len(USAGE_COLUMNS) :])
    step = DAYS * 86_400 / turns
    count = len(ids)
    for index in range(turns):
        started = START + timedelta(seconds=(index + draw()) * step)
        latency = 400 + int(draw() * 9_000)
        cache = draw()
        write_5m = 1_024 + int(draw() * 6_000) if cache < 0.10 else 0
        write_1h = 1_024 + int(draw() * 6_000) if 0.10 <= cache < 0.13 else 0
        read = 1_024 + int(draw() * 20_000) if cache >= 0.40 else 0
        stop = draw()
        yield (
            ids[int(draw() * count)],
            None,
            models[int(draw() * 100)],
            f"req_bench{index:012d}",
            "end_turn" if stop < 0.80 else ("tool_use" if stop < 0.95 else "max_tokens"),
            5 + int(draw() * 3_000),
            10 + int(draw() * 1_500),
            write_5m + write_1h,
            write_5m,
            write_1h,
            read,
            0,
            0,
            "batch" if draw() < 0.03 else "standard",
            latency,
            started,
            started + timedelta(milliseconds=latency),
            *extra,
        )


def load_conversations(store: Store, ids: Sequence[str]) -> None:
    """Copies of a conversation ``Store`` made itself, so every column is as it writes it."""
    template = store.create_conversation(model=MODELS[0][0], max_tokens=1024)
    with store.engine.begin() as connection:
        row = dict(
            connection.execute(
                select(conversations_table).where(conversations_table.c.id == template.id)
            )
            .one()
            ._mapping
        )
    store.delete_conversation(template.id)
    rows = [
        {
            **row,
            "id": cid,
            "metadata": {"user_id": f"user-{number % USERS}"},
            "created_at": START + timedelta(seconds=number * DAYS * 86_400 / len(ids)),
        }
        for number, cid in enumerate(ids)
    ]
    with store.engine.begin() as connection:
        for offset in range(0, len(rows), 5_000):
            connection.execute(insert(conversations_table), rows[offset : offset + 5_000])


def _sqlite_time(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")  # SQLAlchemy's SQLite format, UTC


def load_usage_sqlite(engine: Engine, rows: Iterator[tuple[Any, ...]]) -> None:
    """``executemany`` in transactions of :data:`SQLITE_BATCH` rows."""
    columns = usage_columns()
    started_at, finished_at = columns.index("started_at"), columns.index("finished_at")
    sql = (
        f"INSERT INTO clust_usage ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"
    )
    raw = engine.raw_connection()
    try:
        connection = cast(sqlite3.Connection, raw.driver_connection)
        connection.execute("PRAGMA cache_size = -262144")  # 256 MB for the index b-trees
        batch: list[tuple[Any, ...]] = []

        def flush() -> None:
            connection.execute("BEGIN IMMEDIATE")  # the engine turned autocommit mode on
            connection.executemany(sql, batch)
            connection.execute("COMMIT")
            batch.clear()

        for row in rows:
            values = list(row)
            values[started_at] = _sqlite_time(row[started_at])
            values[finished_at] = _sqlite_time(row[finished_at])
            batch.append(tuple(values))
            if len(batch) == SQLITE_BATCH:
                flush()
        if batch:
            flush()
        connection.execute("ANALYZE")
    finally:
        raw.close()


def load_usage_postgres(engine: Engine, rows: Iterator[tuple[Any, ...]]) -> None:
    """One ``COPY ... FROM STDIN`` through psycopg, then ``VACUUM ANALYZE``."""
    raw = engine.raw_connection()
    try:
        connection: Any = raw.driver_connection  # a psycopg.Connection
        with connection.cursor() as cursor:
            statement = f"COPY clust_usage ({', '.join(usage_columns())}) FROM STDIN"
            with cursor.copy(statement) as copy:
                for row in rows:
                    copy.write_row(row)
        connection.commit()
        connection.autocommit = True  # VACUUM cannot run in a transaction
        connection.execute("VACUUM ANALYZE clust_usage")
        connection.execute("VACUUM ANALYZE clust_conversations")
        connection.autocommit = False
    finally:
        raw.close()


# -- timing ------------------------------------------------------------------------------


@dataclass
class BackendRun:
    label: str
    load_seconds: float = 0.0
    rows: int = 0
    times: dict[str, list[float]] = field(default_factory=dict)
    results: dict[str, list[UsageReportRow]] = field(default_factory=dict)
    plan: list[str] = field(default_factory=list)
    plan_uses_index: bool = False


def _timed(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def time_reports(store: Store, run: BackendRun, runs: int) -> None:
    for name, arguments in QUERIES:

        def report(name: str = name, arguments: dict[str, Any] = arguments) -> None:
            run.results[name] = usage_report(store, prices=PRICES, **arguments)

        _timed(report)  # warm-up: caches, and on PostgreSQL the first read of the pages
        run.times[name] = [_timed(report) for _ in range(runs)]


def statement_of(connection: Connection, arguments: dict[str, Any]) -> tuple[str, Any]:
    """The SQL and parameters ``usage_report`` sends for ``arguments``."""
    sent: list[tuple[str, Any]] = []

    def capture(*args: Any) -> None:
        statement, parameters = args[2], args[3]
        if statement.strip().upper() not in {"BEGIN", "COMMIT", "ROLLBACK"}:
            sent.append((statement, parameters))

    event.listen(connection, "before_cursor_execute", capture)
    try:
        usage_report(connection, prices=PRICES, **arguments)
    finally:
        event.remove(connection, "before_cursor_execute", capture)
    return sent[-1]


def explain(store: Store, run: BackendRun) -> None:
    with store.engine.connect() as connection:
        sql, parameters = statement_of(connection, EXPLAINED[1])
        if connection.dialect.name == "postgresql":
            rows = connection.exec_driver_sql(
                "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + sql, parameters
            )
            run.plan = [str(row[0]) for row in rows]
        else:
            rows = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, parameters)
            run.plan = [str(row[3]) for row in rows]
        connection.rollback()
    reads = [line for line in run.plan if "clust_usage" in line]
    run.plan_uses_index = any("ix_clust_usage_started" in line for line in reads) and not any(
        "Seq Scan on clust_usage" in line or line.startswith("SCAN clust_usage") for line in reads
    )


def run_backend(label: str, url: str, turns: int, runs: int) -> BackendRun:
    run = BackendRun(label)
    ids = conversation_ids(CONVERSATIONS)
    with Store(url) as store:
        started = time.perf_counter()
        load_conversations(store, ids)
        loader = load_usage_postgres if label == "PostgreSQL" else load_usage_sqlite
        loader(store.engine, usage_rows(turns, ids))
        run.load_seconds = time.perf_counter() - started
        with store.engine.connect() as connection:
            run.rows = int(
                connection.execute(text("SELECT count(*) FROM clust_usage")).scalar_one()
            )
        print(f"{label}: loaded {run.rows:,} usage rows in {run.load_seconds:.1f} s", flush=True)
        time_reports(store, run, runs)
        explain(store, run)
    return run


def postgres_base_url() -> str:
    return (
        os.environ.get("CLUST_BENCH_POSTGRES_URL")
        or os.environ.get("CLUST_TEST_POSTGRES_URL")
        or DEFAULT_POSTGRES_URL
    )


def run_postgres(turns: int, runs: int) -> BackendRun | str:
    """Results in a schema of their own (dropped after), or why PostgreSQL was skipped."""
    base = postgres_base_url()
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    schema = f"bench_usage_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f"CREATE SCHEMA {schema}"))
    except Exception as exc:  # no server: report SQLite alone
        admin.dispose()
        return f"PostgreSQL skipped: {make_url(base).render_as_string()} unreachable: {exc!s:.200}"
    separator = "&" if "?" in base else "?"
    try:
        return run_backend(
            "PostgreSQL", f"{base}{separator}options=-csearch_path%3D{schema}", turns, runs
        )
    finally:
        with admin.connect() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


# -- report ------------------------------------------------------------------------------


def _ms(seconds: float) -> str:
    ms = seconds * 1e3
    return f"{ms:.1f}" if ms < 100 else f"{ms:,.0f}"


def print_results(runs: list[BackendRun], turns: int, repeats: int) -> None:
    print(
        f"\nusage_report over {turns:,} usage rows ({CONVERSATIONS:,} conversations, "
        f"{len(MODELS)} models, {DAYS} days); median ms of {repeats} runs (min-max)"
    )
    width = 24
    print(f"{'report':<26}" + "".join(f"{run.label:>{width}}" for run in runs))
    for name, _ in QUERIES:
        line = f"{name:<26}"
        for run in runs:
            samples = run.times[name]
            cell = f"{_ms(median(samples))} ({_ms(min(samples))}-{_ms(max(samples))})"
            line += f"{cell:>{width}}"
        print(line)
    for run in runs:
        by_model = run.results["by model, all rows"]
        week = run.results["by day, last 7 days"]
        total = sum((row.cost for row in by_model if row.cost is not None), Decimal(0))
        print(
            f"{run.label}: {sum(row.requests for row in by_model):,} requests in "
            f"{len(by_model)} models, {len(run.results['by day, all rows'])} days, "
            f"{len(run.results['by user_id, all rows'])} users; last 7 days "
            f"{sum(row.requests for row in week):,} requests in {len(week)} days; "
            f"total cost ${total:,.2f}; load {run.load_seconds:.1f} s"
        )


def print_plans(runs: list[BackendRun]) -> None:
    for run in runs:
        kind = "EXPLAIN ANALYZE" if run.label == "PostgreSQL" else "EXPLAIN QUERY PLAN"
        print(f"\n{run.label}, {kind} of usage_report({EXPLAINED[0]}):")
        for line in run.plan:
            # The Group Key spells out the price-period CASE: long, and not the point.
            print(f"  {line if len(line) <= 150 else line[:146] + ' ...'}")


def check_targets(runs: list[BackendRun]) -> list[tuple[str, bool]]:
    checks: list[tuple[str, bool]] = []
    for run in runs:
        if run.label == "PostgreSQL":
            for name in (name for name, _ in QUERIES if name in TARGETED):
                value = median(run.times[name])
                checks.append((f"PostgreSQL: {name} < 1 s ({_ms(value)} ms)", value < 1.0))
        checks.append(
            (
                f"{run.label}: the 7-day report reads clust_usage through ix_clust_usage_started",
                run.plan_uses_index,
            )
        )
        checks.append(
            (
                f"{run.label}: the reports count every row",
                sum(row.requests for row in run.results["by model, all rows"]) == run.rows,
            )
        )
    return checks


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--turns", type=int, default=DEFAULT_TURNS, help="usage rows to load")
    parser.add_argument("--runs", type=int, default=5, help="timed calls per report")
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    args = parser.parse_args()
    if args.turns < 1 or args.runs < 1:
        parser.error("--turns and --runs must be at least 1")

    started = time.perf_counter()
    runs: list[BackendRun] = []
    skipped = "PostgreSQL skipped (--no-postgres)" if args.no_postgres else None
    if not args.no_sqlite:
        with tempfile.TemporaryDirectory(prefix="clust-bench-usage-") as tmp:
            url = f"sqlite:///{Path(tmp) / 'usage.db'}"
            runs.append(run_backend("SQLite", url, args.turns, args.runs))
    if not args.no_postgres:
        outcome = run_postgres(args.turns, args.runs)
        if isinstance(outcome, str):
            skipped = outcome
        else:
            runs.append(outcome)
    if not runs:
        print(skipped)
        return
    print_results(runs, args.turns, args.runs)
    print_plans(runs)
    if skipped:
        print(f"\n{skipped}")
    print("\nTargets:")
    checks = check_targets(runs)
    for what, ok in checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {what}")
    missed = sum(1 for _, ok in checks if not ok)
    took = time.perf_counter() - started
    print(f"targets: {len(checks) - missed} met, {missed} missed; run took {took:.0f} s")


if __name__ == "__main__":
    main()
