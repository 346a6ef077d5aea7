"""``usage_report`` on SQLite and PostgreSQL: hand-computed totals, costs and savings.

The data set (prices in USD per million tokens)::

    model-a     from 2026-01-01: input 3, output 15 (5m write 3.75, 1h write 6, read 0.30)
    model-a     from 2026-03-01: input 2, output 10 (5m write 2.50, 1h write 4, read 0.20)
    model-b     (a prefix) from 2026-01-01: input 1, output 5 (5m 1.25, 1h 2, read 0.05 given)
    model-x     no price

    row  conversation  model             started (UTC)     stop        tokens
    r1   c1 (alice)    model-a           02-10 10:15       end_turn    in 1M, out 100k, 5m 200k
    r2   c1 (alice)    model-a           02-10 10:45       tool_use    in 100k, out 50k, read 200k
    r3   c2 (bob)      model-a           03-05 08:00       end_turn    in 500k, out 100k, 1h 100k,
                                                                        read 400k
    r4   c2 (bob)      model-b-20260101  03-05 09:30       max_tokens  1M of each kind
    r5   deleted       model-a (batch)   03-06 00:30       end_turn    in 2M
    r6   c1 (alice)    model-x           03-06 01:00       end_turn    in 10, out 10

    r1: 3 + 1.5 + 0.75                  = 5.25   savings 0.2 x (3 - 3.75)          = -0.15
    r2: 0.3 + 0.75 + 0.06               = 1.11   savings 0.2 x (3 - 0.30)          =  0.54
    r3: 1 + 1 + 0.4 (1h) + 0.08         = 2.48   savings 0.1 x (2-4) + 0.4 x (2-0.2) = 0.52
    r4: 1 + 5 + 1.25 + 2 + 0.05         = 9.30   savings -0.25 - 1 + 0.95          = -0.30
    r5: 2 x 2 = 4, batch x 0.5          = 2.00   savings 0
    r6: unknown                         = None
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import Engine, select
from usage.usage_support import conversation, message_rows, usage, usage_row, write

from clust import Store
from clust.messages.errors import InvalidParameter
from clust.usage import Price, PriceTable, UsageReportRow, usage_report

PRICES = PriceTable(
    [
        Price("model-a", date(2026, 1, 1), 3, 15),
        Price("model-a", date(2026, 3, 1), 2, 10),
        Price("model-b", date(2026, 1, 1), 1, 5, cache_read="0.05"),
    ]
)
M = 1_000_000
K = 1_000


def at(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=timezone.utc)


@pytest.fixture
def seeded(store: Store) -> Iterator[Store]:
    write(
        store.engine,
        conversation_rows=[
            conversation("c1", {"user": "alice", "team": 7}),
            conversation("c2", {"user": "bob", "team": 7}),
            conversation("c-gone", {"user": "carol"}, turns=2),
        ],
        message_list=message_rows("c-gone", 2),
        usage_rows=[
            usage_row(
                "c1", "model-a", at(2, 10, 10, 15), input=M, output=100 * K, write_5m=200 * K
            ),
            usage_row(
                "c1",
                "model-a",
                at(2, 10, 10, 45),
                stop_reason="tool_use",
                input=100 * K,
                output=50 * K,
                read=200 * K,
            ),
            usage_row(
                "c2",
                "model-a",
                at(3, 5, 8),
                input=500 * K,
                output=100 * K,
                write_1h=100 * K,
                read=400 * K,
            ),
            usage_row(
                "c2",
                "model-b-20260101",
                at(3, 5, 9, 30),
                stop_reason="max_tokens",
                input=M,
                output=M,
                write_5m=M,
                write_1h=M,
                read=M,
            ),
            usage_row(
                "c-gone", "model-a", at(3, 6, 0, 30), position=1, service_tier="batch", input=2 * M
            ),
            usage_row("c1", "model-x", at(3, 6, 1), input=10, output=10),
        ],
    )
    store.delete_conversation("c-gone")  # its usage row stays, conversation_id NULL
    yield store


def row(
    key: object,
    requests: int,
    tokens: tuple[int, int, int, int, int],
    cost: str | None,
    savings: str | None,
    unpriced: tuple[str, ...] = (),
) -> UsageReportRow:
    input_tokens, output, write_5m, write_1h, read = tokens
    all_input = input_tokens + write_5m + write_1h + read
    return UsageReportRow(
        key=key,
        requests=requests,
        input_tokens=input_tokens,
        output_tokens=output,
        cache_write_5m_tokens=write_5m,
        cache_write_1h_tokens=write_1h,
        cache_read_tokens=read,
        cache_hit_ratio=read / all_input if all_input else 0.0,
        cost=None if cost is None else Decimal(cost),
        cache_savings=None if savings is None else Decimal(savings),
        unpriced_models=unpriced,
    )


# Token tuples: (input, output, 5m write, 1h write, read).
R1 = (M, 100 * K, 200 * K, 0, 0)
R2 = (100 * K, 50 * K, 0, 0, 200 * K)
R3 = (500 * K, 100 * K, 0, 100 * K, 400 * K)
R4 = (M, M, M, M, M)
R5 = (2 * M, 0, 0, 0, 0)
R6 = (10, 10, 0, 0, 0)


def add(*rows: tuple[int, int, int, int, int]) -> tuple[int, int, int, int, int]:
    summed = [sum(column) for column in zip(*rows, strict=True)]
    return (summed[0], summed[1], summed[2], summed[3], summed[4])


def test_deleted_conversation_keeps_its_usage(seeded: Store) -> None:
    with seeded.engine.connect() as connection:
        kept = connection.execute(
            select(usage.c.conversation_id, usage.c.message_position).where(
                usage.c.service_tier == "batch"
            )
        ).all()
    assert [tuple(found) for found in kept] == [(None, None)]


def test_totals(seeded: Store) -> None:
    assert usage_report(seeded, prices=PRICES) == [
        row(None, 6, add(R1, R2, R3, R4, R5, R6), None, None, ("model-x",))
    ]
    # Without the unknown model (``until`` is exclusive: r6 starts at 01:00).
    report = usage_report(seeded.engine, until=at(3, 6, 1), prices=PRICES)
    assert report == [row(None, 5, add(R1, R2, R3, R4, R5), "20.14", "0.61")]
    assert report[0].cache_hit_ratio == pytest.approx(1_600_000 / 8_500_000)
    assert report[0].total_input_tokens == 8_500_000


def test_empty_totals_cost_zero(store: Store) -> None:
    assert usage_report(store, prices=PRICES) == [row(None, 0, (0, 0, 0, 0, 0), "0", "0")]
    assert usage_report(store, by="model", prices=PRICES) == []


def test_by_model(seeded: Store) -> None:
    assert usage_report(seeded, by="model", prices=PRICES) == [
        row("model-a", 4, add(R1, R2, R3, R5), "10.84", "0.91"),
        row("model-b-20260101", 1, R4, "9.30", "-0.30"),
        row("model-x", 1, R6, None, None, ("model-x",)),
    ]


def test_by_day_and_hour_in_utc(seeded: Store) -> None:
    assert usage_report(seeded, by="day", prices=PRICES) == [
        row(date(2026, 2, 10), 2, add(R1, R2), "6.36", "0.39"),
        row(date(2026, 3, 5), 2, add(R3, R4), "11.78", "0.22"),
        row(date(2026, 3, 6), 2, add(R5, R6), None, None, ("model-x",)),
    ]
    assert usage_report(seeded, by="hour", prices=PRICES) == [
        row(at(2, 10, 10), 2, add(R1, R2), "6.36", "0.39"),
        row(at(3, 5, 8), 1, R3, "2.48", "0.52"),
        row(at(3, 5, 9), 1, R4, "9.30", "-0.30"),
        row(at(3, 6, 0), 1, R5, "2.00", "0"),
        row(at(3, 6, 1), 1, R6, None, None, ("model-x",)),
    ]


def test_by_conversation(seeded: Store) -> None:
    assert usage_report(seeded, by="conversation", prices=PRICES) == [
        row("c1", 3, add(R1, R2, R6), None, None, ("model-x",)),
        row("c2", 2, add(R3, R4), "11.78", "0.22"),
        row(None, 1, R5, "2.00", "0"),  # the deleted conversation's row
    ]


def test_by_stop_reason(seeded: Store) -> None:
    assert usage_report(seeded, by="stop_reason", prices=PRICES) == [
        row("end_turn", 4, add(R1, R3, R5, R6), None, None, ("model-x",)),
        row("max_tokens", 1, R4, "9.30", "-0.30"),
        row("tool_use", 1, R2, "1.11", "0.54"),
    ]


def test_by_metadata_key(seeded: Store) -> None:
    assert usage_report(seeded, by="metadata:user", prices=PRICES) == [
        row("alice", 3, add(R1, R2, R6), None, None, ("model-x",)),
        row("bob", 2, add(R3, R4), "11.78", "0.22"),
        row(None, 1, R5, "2.00", "0"),  # deleted conversation: no metadata left
    ]
    assert usage_report(seeded, by="metadata:team", until=at(3, 6, 1), prices=PRICES) == [
        row(7, 4, add(R1, R2, R3, R4), "18.14", "0.61"),
        row(None, 1, R5, "2.00", "0"),
    ]


def test_filters(seeded: Store) -> None:
    march = usage_report(seeded, since=at(3, 1, 0), until=at(3, 6, 0), prices=PRICES)
    assert march == [row(None, 2, add(R3, R4), "11.78", "0.22")]
    # Aware times in another zone are compared in UTC: 10:00+02:00 is r3's 08:00.
    plus_two = timezone(timedelta(hours=2))
    since = datetime(2026, 3, 5, 10, 0, tzinfo=plus_two)
    assert usage_report(seeded, since=since, until=at(3, 6, 0), prices=PRICES) == march
    # Naive times are UTC.
    naive = usage_report(seeded, since=datetime(2026, 3, 5, 8, 0, 1), prices=PRICES)
    assert naive == [row(None, 3, add(R4, R5, R6), None, None, ("model-x",))]

    assert usage_report(seeded, model="model-a", prices=PRICES) == [
        row(None, 4, add(R1, R2, R3, R5), "10.84", "0.91")
    ]
    assert usage_report(seeded, conversation_id="c1", model="model-a", prices=PRICES) == [
        row(None, 2, add(R1, R2), "6.36", "0.39")
    ]
    assert usage_report(seeded, metadata={"user": "bob"}, by="model", prices=PRICES) == [
        row("model-a", 1, R3, "2.48", "0.52"),
        row("model-b-20260101", 1, R4, "9.30", "-0.30"),
    ]
    assert usage_report(seeded, metadata={"team": 7}, by="metadata:user", prices=PRICES) == [
        row("alice", 3, add(R1, R2, R6), None, None, ("model-x",)),
        row("bob", 2, add(R3, R4), "11.78", "0.22"),
    ]
    assert usage_report(seeded, metadata={"user": "carol"}, prices=PRICES) == [
        row(None, 0, (0, 0, 0, 0, 0), "0", "0")
    ]


def test_price_change_splits_a_group(store: Store) -> None:
    """One conversation on one model across the effective date: each side at its price,
    including rows on either side of midnight UTC of the effective day."""
    write(
        store.engine,
        conversation_rows=[conversation("c", {})],
        usage_rows=[
            usage_row("c", "model-a", at(2, 28, 23, 59), input=M, output=M),  # 3 + 15
            usage_row("c", "model-a", at(3, 1, 0, 0), input=M, output=M),  # 2 + 10
        ],
    )
    assert usage_report(store, by="conversation", prices=PRICES) == [
        row("c", 2, (2 * M, 2 * M, 0, 0, 0), "30", "0")
    ]
    assert usage_report(store, by="day", prices=PRICES) == [
        row(date(2026, 2, 28), 1, (M, M, 0, 0, 0), "18", "0"),
        row(date(2026, 3, 1), 1, (M, M, 0, 0, 0), "12", "0"),
    ]


def test_before_any_price_is_unknown(store: Store) -> None:
    write(
        store.engine,
        usage_rows=[usage_row(None, "model-a", datetime(2025, 12, 31, 23, 0, tzinfo=timezone.utc))],
    )
    assert usage_report(store, prices=PRICES) == [
        row(None, 1, (0, 0, 0, 0, 0), None, None, ("model-a",))
    ]


def test_metadata_values_keep_their_json_type(store: Store) -> None:
    """``true``, ``1`` and ``"1"`` are three groups; absent and null keys group as None."""
    values: list[tuple[str, dict[str, object]]] = [
        ("c-true", {"flag": True}),
        ("c-one", {"flag": 1}),
        ("c-text", {"flag": "1"}),
        ("c-null", {"flag": None}),
        ("c-none", {}),
        ("c-false", {"flag": False}),
        ("c-nested", {"flag": {"b": 1, "a": [1, 2]}}),
    ]
    write(
        store.engine,
        conversation_rows=[conversation(cid, metadata) for cid, metadata in values],
        usage_rows=[
            usage_row(cid, "model-b", at(1, 2, 3), input=(index + 1) * M)
            for index, (cid, _) in enumerate(values)
        ],
    )
    report = usage_report(store, by="metadata:flag", prices=PRICES)
    assert [(found.key, found.input_tokens, found.cost) for found in report] == [
        (False, 6 * M, Decimal(6)),
        (True, 1 * M, Decimal(1)),
        (1, 2 * M, Decimal(2)),
        ("1", 3 * M, Decimal(3)),
        ({"a": [1, 2], "b": 1}, 7 * M, Decimal(7)),
        (None, 9 * M, Decimal(9)),
    ]
    assert type(report[1].key) is bool and type(report[2].key) is int
    assert usage_report(store, by="metadata:flag", metadata={"flag": True}, prices=PRICES) == [
        row(True, 1, (M, 0, 0, 0, 0), "1", "0")
    ]


def test_default_prices(store: Store) -> None:
    """Without ``prices``, the shipped list prices: Sonnet 4.5 by its dated id."""
    write(
        store.engine,
        usage_rows=[
            usage_row(
                None,
                "claude-sonnet-4-5-20250929",
                at(1, 5, 12),
                service_tier="batch",
                input=M,
                output=M,
                write_5m=M,
                write_1h=M,
                read=M,
            ),
            usage_row(None, "claude-sonnet-5-5", at(1, 5, 13), input=M),
        ],
    )
    # (3 + 15 + 3.75 + 6 + 0.30) x 0.5 = 14.025; savings (-0.75 - 3 + 2.70) x 0.5 = -0.525
    assert usage_report(store, by="model") == [
        row("claude-sonnet-4-5-20250929", 1, (M, M, M, M, M), "14.025", "-0.525"),
        row("claude-sonnet-5-5", 1, (M, 0, 0, 0, 0), None, None, ("claude-sonnet-5-5",)),
    ]


def test_accepts_engine_store_and_connection(seeded: Store) -> None:
    engine: Engine = seeded.engine
    expected = usage_report(seeded, prices=PRICES)
    assert usage_report(engine, prices=PRICES) == expected
    with engine.connect() as connection:
        assert usage_report(connection, prices=PRICES) == expected


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"by": "user"}, "by"),
        ({"by": "metadata:"}, "by"),
        ({"since": "2026-01-01"}, "since"),
        ({"metadata": {"user": ["a"]}}, "metadata['user']"),
        ({"prices": {"model-a": 3}}, "prices"),
    ],
)
def test_bad_arguments(store: Store, arguments: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidParameter) as raised:
        usage_report(store, **arguments)  # type: ignore[arg-type]
    assert raised.value.field == field


def test_bad_source() -> None:
    with pytest.raises(InvalidParameter) as raised:
        usage_report("sqlite:///x.db")  # type: ignore[arg-type]
    assert raised.value.field == "source"
