"""``clust usage`` over the usage tests' hand-computed data set (see
``tests/usage/test_report.py`` for the arithmetic), on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from cli.cli_support import assert_one_line_failure, clean_env, clust
from usage.usage_support import conversation, message_rows, usage_row, write

from clust import Store

M = 1_000_000
K = 1_000


def at(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=timezone.utc)


PRICE_FILE = {
    "prices": [
        {"model": "model-a", "effective_from": "2026-01-01", "input": "3", "output": "15"},
        {"model": "model-a", "effective_from": "2026-03-01", "input": "2", "output": "10"},
        {
            "model": "model-b",
            "effective_from": "2026-01-01",
            "input": "1",
            "output": "5",
            "cache_read": "0.05",
        },
    ]
}


@pytest.fixture
def seeded(db_url: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """The data set of tests/usage/test_report.py; (database URL, price file)."""
    with Store(db_url) as store:
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
                    "c1", "model-a", at(2, 10, 10, 45), stop_reason="tool_use",
                    input=100 * K, output=50 * K, read=200 * K,
                ),
                usage_row(
                    "c2", "model-a", at(3, 5, 8), input=500 * K, output=100 * K,
                    write_1h=100 * K, read=400 * K,
                ),
                usage_row(
                    "c2", "model-b-20260101", at(3, 5, 9, 30), stop_reason="max_tokens",
                    input=M, output=M, write_5m=M, write_1h=M, read=M,
                ),
                usage_row(
                    "c-gone", "model-a", at(3, 6, 0, 30), position=1, service_tier="batch",
                    input=2 * M,
                ),
                usage_row("c1", "model-x", at(3, 6, 1), input=10, output=10),
            ],
        )  # fmt: skip
        store.delete_conversation("c-gone")
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps(PRICE_FILE))
    yield db_url, str(prices)


def usage_json(tmp_path: Path, url: str, *args: str) -> dict[str, Any]:
    result = clust("usage", "--format", "json", "--db", url, *args, env=clean_env(tmp_path))
    assert result.returncode == 0, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def money(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def test_by_model_json(tmp_path: Path, seeded: tuple[str, str]) -> None:
    url, prices = seeded
    report = usage_json(tmp_path, url, "--prices", prices)  # --by model is the default
    assert report["by"] == "model"
    rows = {row["key"]: row for row in report["rows"]}
    assert list(rows) == ["model-a", "model-b-20260101", "model-x"]
    a = rows["model-a"]
    assert a["requests"] == 4
    assert (a["input_tokens"], a["output_tokens"]) == (3_600_000, 250_000)
    assert (a["cache_write_5m_tokens"], a["cache_write_1h_tokens"]) == (200_000, 100_000)
    assert a["cache_read_tokens"] == 600_000
    assert isinstance(a["cost_usd"], str)  # exact, never a float
    assert money(a["cost_usd"]) == Decimal("10.84")  # 5.25 + 1.11 + 2.48 + 2.00
    assert money(a["cache_savings_usd"]) == Decimal("0.91")  # -0.15 + 0.54 + 0.52 + 0
    assert money(rows["model-b-20260101"]["cost_usd"]) == Decimal("9.30")
    assert money(rows["model-b-20260101"]["cache_savings_usd"]) == Decimal("-0.30")
    assert rows["model-x"]["cost_usd"] is None and rows["model-x"]["cache_savings_usd"] is None
    assert rows["model-x"]["unpriced_models"] == ["model-x"]
    total = report["total"]
    assert total["requests"] == 6
    assert total["cost_usd"] is None  # one unknown price makes the sum unknown, never 0
    assert total["unpriced_models"] == ["model-x"]

    without_prices = usage_json(tmp_path, url)
    assert all(row["cost_usd"] is None for row in without_prices["rows"])


def test_filters(tmp_path: Path, seeded: tuple[str, str]) -> None:
    url, prices = seeded
    march = usage_json(
        tmp_path, url, "--prices", prices, "--since", "2026-03-01", "--until", "2026-03-06"
    )
    rows = {row["key"]: money(row["cost_usd"]) for row in march["rows"]}
    assert rows == {"model-a": Decimal("2.48"), "model-b-20260101": Decimal("9.30")}
    assert money(march["total"]["cost_usd"]) == Decimal("11.78")

    only_a = usage_json(
        tmp_path, url, "--prices", prices, "--model", "model-a", "--until", "2026-03-06T00:45:00Z"
    )
    assert only_a["total"]["requests"] == 4
    assert money(only_a["total"]["cost_usd"]) == Decimal("10.84")

    one = usage_json(tmp_path, url, "--prices", prices, "--conversation", "c2", "--by", "total")
    assert one["rows"] == [] and one["by"] is None
    assert money(one["total"]["cost_usd"]) == Decimal("11.78")


@pytest.mark.parametrize(
    ("by", "expected"),
    [
        ("user", {"alice": None, "bob": Decimal("11.78"), None: Decimal("2.00")}),
        ("metadata:team", {7: None, None: Decimal("2.00")}),
        ("day", {"2026-02-10": Decimal("6.36"), "2026-03-05": Decimal("11.78"),
                 "2026-03-06": None}),
        ("stop_reason", {"end_turn": None, "max_tokens": Decimal("9.30"),
                         "tool_use": Decimal("1.11")}),
    ],
)  # fmt: skip
def test_groupings(
    tmp_path: Path, seeded: tuple[str, str], by: str, expected: dict[Any, Decimal | None]
) -> None:
    url, prices = seeded
    report = usage_json(tmp_path, url, "--prices", prices, "--by", by)
    assert {row["key"]: money(row["cost_usd"]) for row in report["rows"]} == expected


def test_by_hour_and_conversation(tmp_path: Path, seeded: tuple[str, str]) -> None:
    url, prices = seeded
    hours = usage_json(tmp_path, url, "--prices", prices, "--by", "hour")
    assert [row["key"] for row in hours["rows"]][:2] == [
        "2026-02-10T10:00:00+00:00",
        "2026-03-05T08:00:00+00:00",
    ]
    by_conversation = usage_json(tmp_path, url, "--prices", prices, "--by", "conversation")
    assert [row["key"] for row in by_conversation["rows"]] == ["c1", "c2", None]


def test_table(tmp_path: Path, seeded: tuple[str, str]) -> None:
    url, prices = seeded
    result = clust("usage", "--prices", prices, "--db", url, env=clean_env(tmp_path))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["model", "requests", "input"]
    model_a = next(line for line in lines if line.startswith("model-a "))
    assert model_a.split()[-2:] == ["10.84", "0.91"]
    assert "3,600,000" in model_a
    model_x = next(line for line in lines if line.startswith("model-x "))
    assert model_x.split()[-2:] == ["n/a", "n/a"]
    total = next(line for line in lines if line.startswith("total "))
    assert total.split()[1] == "6" and total.split()[-2:] == ["n/a", "n/a"]
    assert "no price known for model-x" in lines[-1]

    by_user = clust("usage", "--by", "user", "--db", url, env=clean_env(tmp_path))
    assert by_user.stdout.splitlines()[0].startswith("user ")
    assert any(line.startswith("(none) ") for line in by_user.stdout.splitlines())


def test_csv(tmp_path: Path, seeded: tuple[str, str]) -> None:
    url, prices = seeded
    result = clust(
        "usage", "--format", "csv", "--by", "day", "--prices", prices, "--db", url,
        env=clean_env(tmp_path),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [row["day"] for row in rows] == ["2026-02-10", "2026-03-05", "2026-03-06"]
    assert rows[0]["cost_usd"] == "6.36"
    assert rows[2]["cost_usd"] == "" and rows[2]["unpriced_models"] == "model-x"
    assert rows[0]["requests"] == "2"


def test_empty_database(tmp_path: Path, db_url: str) -> None:
    table = clust("usage", "--db", db_url, env=clean_env(tmp_path))
    assert table.returncode == 0, table.stderr
    assert "no stored requests match" in table.stdout
    report = usage_json(tmp_path, db_url, "--by", "total")
    assert report["total"]["requests"] == 0
    assert report["total"]["cost_usd"] == "0"


@pytest.mark.parametrize(
    "args",
    [
        ["--by", "weekday"],
        ["--by", "metadata:"],
        ["--since", "yesterday"],
        ["--format", "xml"],
        ["--since", "2026-03-02", "--until", "2026-03-01"],
    ],
)
def test_bad_arguments(tmp_path: Path, sqlite_url: str, args: list[str]) -> None:
    result = clust("usage", *args, "--db", sqlite_url, env=clean_env(tmp_path))
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr
    assert result.stderr.strip()


@pytest.mark.parametrize(
    "content", [None, "{not json", '{"prices": [{"model": "m", "input": "1", "output": "2"}]}']
)
def test_bad_price_file(tmp_path: Path, sqlite_url: str, content: str | None) -> None:
    path = tmp_path / "prices.json"
    if content is not None:
        path.write_text(content)
    result = clust("usage", "--prices", str(path), "--db", sqlite_url, env=clean_env(tmp_path))
    line = assert_one_line_failure(result)
    assert "prices.json" in line or "effective_from" in line
