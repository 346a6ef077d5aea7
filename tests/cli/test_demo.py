"""``clust demo`` end to end: offline, on an SQLite file (or --db), in seconds."""

from __future__ import annotations

import json
import re
import time
from decimal import Decimal
from pathlib import Path

from cli.cli_support import clean_env, clust

from clust import Store
from clust.usage import PriceTable, usage_report


def test_demo_end_to_end(tmp_path: Path) -> None:
    env = clean_env(tmp_path)  # no API key, no base URL: the demo needs neither
    started = time.monotonic()
    result = clust("demo", env=env, timeout=60)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert elapsed < 30, elapsed
    assert "Traceback" not in result.stderr
    out = result.stdout

    url = re.search(r"^database: (sqlite:///\S+)$", out, re.M)
    assert url is not None, out
    database = url.group(1)
    assert database.startswith(f"sqlite:///{(tmp_path / 'tmp').as_posix()}/clust-demo-")
    conversation_id = re.search(r"a new conversation, id (\S+)", out)
    assert conversation_id is not None
    conversation = conversation_id.group(1)

    # What a newcomer is told: the tool call, the resume, the cache, the bill.
    assert 'get_weather({"city": "Paris"}) returned' in out
    assert f"resumed {conversation}: 4 stored turns" in out
    assert "Tomorrow looks drier" in out
    assert "DEMO PRICES" in out
    assert re.search(r"Cache savings: \$0\.\d+", out), out
    assert re.search(r"cache write 1,\d{3} \(1h TTL\), cache read 0", out), out
    assert len(re.findall(r"cache write 0, cache read 1,\d{3}", out)) == 2, out

    with Store(database) as store:
        conv = store.get_conversation(conversation)
        assert [m.role for m in conv.history] == ["user", "assistant"] * 3
        totals = conv.usage()
        assert totals.requests == 3
        assert totals.cache_creation_1h_input_tokens > 1024  # over the cacheable minimum
        assert totals.cache_read_input_tokens == 2 * totals.cache_creation_1h_input_tokens

    # The price file it leaves gives `clust usage` the demo's figures.
    price_file = re.search(r"--prices (\S+)", out)
    assert price_file is not None
    table = PriceTable.from_file(price_file.group(1))
    with Store(database) as store:
        [expected] = usage_report(store, prices=table)
    assert expected.cost is not None and expected.cache_savings is not None
    assert expected.cache_savings > 0
    assert f"they cost ${expected.cost.normalize():f}" in out
    report = clust(
        "usage", "--format", "json", "--prices", price_file.group(1), "--db", database, env=env
    )
    assert report.returncode == 0, report.stderr
    total = json.loads(report.stdout)["total"]
    assert Decimal(total["cost_usd"]) == expected.cost
    assert Decimal(total["cache_savings_usd"]) == expected.cache_savings


def test_demo_on_a_given_database(tmp_path: Path, db_url: str) -> None:
    env = clean_env(tmp_path)
    for _ in range(2):  # a second run adds a second conversation; each reports its own
        result = clust("demo", "--db", db_url, env=env, timeout=60)
        assert result.returncode == 0, result.stderr
        assert re.search(r"^claude-sonnet-5-5\s+3\s", result.stdout, re.M), result.stdout
    with Store(db_url) as store:
        assert len(store.list_conversations()) == 2
