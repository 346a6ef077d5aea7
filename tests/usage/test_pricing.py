"""Prices: defaults of the cache rates, the price in force, prefixes, files."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from clust.messages.errors import InvalidParameter
from clust.usage import BATCH_DISCOUNT, Price, PriceTable

D = Decimal


def test_cache_rates_default_to_multiples_of_input() -> None:
    price = Price("m", date(2026, 1, 1), "3", 15)
    assert (price.input, price.output) == (D(3), D(15))
    assert price.cache_write_5m == D("3.75")
    assert price.cache_write_1h == D(6)
    assert price.cache_read == D("0.3")
    assert price.batch_discount == BATCH_DISCOUNT == D("0.5")
    given = Price(
        "m",
        date(2026, 1, 1),
        D("0.25"),
        D("1.25"),
        cache_write_5m="0.30",
        cache_read=D("0.03"),
        batch_discount=1,
    )
    assert (given.cache_write_5m, given.cache_write_1h, given.cache_read) == (
        D("0.30"),
        D("0.50"),
        D("0.03"),
    )
    assert given.batch_discount == 1


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"input": 3.0}, "input"),  # floats are not exact
        ({"output": "-1"}, "output"),
        ({"output": "NaN"}, "output"),
        ({"input": "three"}, "input"),
        ({"input": True}, "input"),
        ({"cache_read": 0.1}, "cache_read"),
        ({"batch_discount": "1.5"}, "batch_discount"),
        ({"model": ""}, "model"),
        ({"effective_from": datetime(2026, 1, 1)}, "effective_from"),
        ({"effective_from": "2026-01-01"}, "effective_from"),
    ],
)
def test_bad_prices(arguments: dict[str, object], field: str) -> None:
    values: dict[str, object] = {
        "model": "m",
        "effective_from": date(2026, 1, 1),
        "input": 3,
        "output": 15,
    }
    values.update(arguments)
    with pytest.raises(InvalidParameter) as raised:
        Price(**values)  # type: ignore[arg-type]
    assert raised.value.field == field


TABLE = PriceTable(
    [
        Price("fam-1", date(2026, 1, 1), 10, 10),
        Price("fam-1", date(2026, 3, 1), 8, 8),
        Price("fam-1-2", date(2026, 2, 1), 5, 5),
        Price("fam-1-2-20260101", date(2026, 6, 1), 1, 1),
    ]
)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, sec: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, sec, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("model", "at", "expected"),
    [
        ("fam-1", utc(2025, 12, 31, 23, 59), None),  # before any price
        ("fam-1", utc(2026, 1, 1), D(10)),
        ("fam-1", utc(2026, 2, 28, 23, 59, 59), D(10)),
        ("fam-1", utc(2026, 3, 1), D(8)),
        ("fam-1-7", utc(2026, 3, 2), D(8)),  # prefix
        ("fam-1-2-20260101", utc(2026, 1, 15), D(10)),  # fam-1-2 not yet in force
        ("fam-1-2-20260101", utc(2026, 2, 15), D(5)),  # longest prefix in force
        ("fam-1-2-20260101", utc(2026, 6, 1), D(1)),  # exact id first
        ("fam-1-2", utc(2026, 4, 1), D(5)),
        ("fam-10", utc(2026, 4, 1), None),  # a prefix only at a "-" boundary
        ("fam", utc(2026, 4, 1), None),
        ("other", utc(2026, 4, 1), None),
        # The UTC day counts: 2026-02-28 21:00 at -05:00 is 2026-03-01 02:00 UTC.
        ("fam-1", datetime(2026, 2, 28, 21, tzinfo=timezone(timedelta(hours=-5))), D(8)),
        ("fam-1", datetime(2026, 2, 28, 23, 59), D(10)),  # naive: UTC
        ("fam-1", date(2026, 3, 1), D(8)),
    ],
)
def test_price_in_force(model: str, at: datetime, expected: Decimal | None) -> None:
    price = TABLE.price_for(model, at)
    assert (None if price is None else price.input) == expected


def test_with_prices_replaces_same_model_and_date() -> None:
    changed = TABLE.with_prices(
        Price("fam-1", date(2026, 3, 1), 7, 7), Price("new", date(2026, 1, 1), 1, 2)
    )
    assert len(changed) == len(TABLE) + 1
    assert changed.price_for("fam-1", utc(2026, 4, 1)).input == D(7)  # type: ignore[union-attr]
    assert TABLE.price_for("fam-1", utc(2026, 4, 1)).input == D(8)  # type: ignore[union-attr]
    assert changed.effective_dates() == (
        date(2026, 1, 1),
        date(2026, 2, 1),
        date(2026, 3, 1),
        date(2026, 6, 1),
    )


@pytest.mark.parametrize(
    ("model", "input_price", "output_price", "write_5m", "read"),
    [
        ("claude-sonnet-4-5-20250929", "3", "15", "3.75", "0.30"),
        ("claude-sonnet-4-5", "3", "15", "3.75", "0.30"),
        ("claude-haiku-4-5-20251001", "1", "5", "1.25", "0.10"),
        ("claude-opus-4-5-20251101", "5", "25", "6.25", "0.50"),
        ("claude-opus-4-1-20250805", "15", "75", "18.75", "1.50"),
        ("claude-opus-4-20250514", "15", "75", "18.75", "1.50"),
        ("claude-sonnet-4-20250514", "3", "15", "3.75", "0.30"),
        ("claude-3-7-sonnet-20250219", "3", "15", "3.75", "0.30"),
        ("claude-3-5-haiku-20241022", "0.80", "4", "1", "0.08"),
        ("claude-3-haiku-20240307", "0.25", "1.25", "0.30", "0.03"),
        ("claude-3-opus-20240229", "15", "75", "18.75", "1.50"),
    ],
)
def test_default_list_prices(
    model: str, input_price: str, output_price: str, write_5m: str, read: str
) -> None:
    price = PriceTable.default().price_for(model, utc(2026, 1, 1))
    assert price is not None
    assert (price.input, price.output, price.cache_write_5m, price.cache_read) == (
        D(input_price),
        D(output_price),
        D(write_5m),
        D(read),
    )
    assert price.cache_write_1h == 2 * price.input


@pytest.mark.parametrize(
    "model",
    [
        "claude-opus-4-6",
        "claude-sonnet-4-6",
        "claude-opus-4-8",
        "claude-sonnet-5-5",
        "claude-haiku-5-5",
        "claude-opus-4-10",
        "claude-2.1",
        "gpt-4",
    ],
)
def test_no_default_price_for_unknown_models(model: str) -> None:
    assert PriceTable.default().price_for(model, utc(2026, 6, 1)) is None


def test_default_price_not_before_the_model() -> None:
    assert PriceTable.default().price_for("claude-haiku-4-5", utc(2025, 9, 30)) is None


def test_from_file(tmp_path: Path) -> None:
    path = tmp_path / "prices.json"
    path.write_text(
        '{"prices": ['
        '{"model": "mine", "effective_from": "2026-01-01", "input": "2", "output": 8,'
        ' "cache_read": 0.25},'
        '{"model": "claude-sonnet-4-5", "effective_from": "2026-02-01",'
        ' "input": "1.1", "output": "2.2", "batch_discount": "0.4"}'
        "]}",
        encoding="utf-8",
    )
    alone = PriceTable.from_file(path)
    assert len(alone) == 2
    mine = alone.price_for("mine", utc(2026, 1, 2))
    assert mine == Price("mine", date(2026, 1, 1), 2, 8, cache_read="0.25")
    assert mine is not None and type(mine.cache_read) is Decimal

    merged = PriceTable.from_file(str(path), base=PriceTable.default())
    assert len(merged) == len(PriceTable.default()) + 2
    before, after = (
        merged.price_for("claude-sonnet-4-5-20250929", utc(2026, 1, 31)),
        merged.price_for("claude-sonnet-4-5-20250929", utc(2026, 2, 1)),
    )
    assert before is not None and before.input == D(3)
    assert after is not None and (after.input, after.batch_discount) == (D("1.1"), D("0.4"))

    # A bare list works too, and what as_mapping writes reads back the same.
    path.write_text(json.dumps([price.as_mapping() for price in merged]), encoding="utf-8")
    assert PriceTable.from_file(path).prices == merged.prices


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ('[{"model": "m", "effective_from": "2026-01-01", "input": 1}]', "prices[0].output"),
        (
            '[{"model": "m", "effective_from": "2026-13-01", "input": 1, "output": 1}]',
            "prices[0].effective_from",
        ),
        (
            '[{"model": "m", "effective_from": "2026-01-01", "input": 1, "output": 1, "cache": 1}]',
            "prices[0].cache",
        ),
        ("[1]", "prices[0]"),
        ('{"price": []}', "path"),
        ("not json", "path"),
    ],
)
def test_bad_price_files(tmp_path: Path, document: str, field: str) -> None:
    path = tmp_path / "prices.json"
    path.write_text(document, encoding="utf-8")
    with pytest.raises(InvalidParameter) as raised:
        PriceTable.from_file(path)
    assert raised.value.field.endswith(field)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameter):
        PriceTable.from_file(tmp_path / "absent.json")
