"""``clust conversations list|show|export|delete`` on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from cli.cli_support import assert_one_line_failure, clean_env, clust

from clust import Client, Store
from clust.testing import FakeClaude, Reply

MODEL = "claude-sonnet-5-5"


@pytest.fixture
def two_chats(fake: FakeClaude, db_url: str) -> Iterator[tuple[str, str]]:
    """Two stored conversations (the older has a tool call); their ids, newest first."""
    fake.enqueue(
        Reply.tool_use("get_weather", {"city": "Oslo"}, text="Checking."),
        Reply.text("Snow in Oslo."),
        Reply.text("Bonjour !"),
    )
    with Store(db_url) as store, Client(api_key="k", base_url=fake.base_url) as client:
        from clust.tools import tool

        @tool
        def get_weather(city: str) -> str:
            """Weather of a city."""
            return f"-3 C and snow in {city}"

        older = store.create_conversation(
            model=MODEL,
            max_tokens=512,
            system="You are terse.",
            tools=[get_weather.definition],
            metadata={"user": "ana"},
            title="Oslo weather",
        )
        older.run(client, "Weather in Oslo?", tools=[get_weather])
        newer = store.create_conversation(model="claude-haiku-4-5", max_tokens=256)
        newer.send(client, "Salut")
    yield newer.id, older.id


def test_list(tmp_path: Path, db_url: str, two_chats: tuple[str, str]) -> None:
    env = clean_env(tmp_path)
    newer, older = two_chats
    table = clust("conversations", "list", "--db", db_url, env=env)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["id", "created", "model", "title"]
    assert lines[2].startswith(newer) and "claude-haiku-4-5" in lines[2]
    assert lines[3].startswith(older) and "Oslo weather" in lines[3]

    listed = clust("conversations", "list", "--json", "--db", db_url, env=env)
    assert listed.returncode == 0, listed.stderr
    document = json.loads(listed.stdout)
    assert [entry["id"] for entry in document] == [newer, older]
    assert document[1]["metadata"] == {"user": "ana"}
    assert document[1]["title"] == "Oslo weather"

    limited = clust("conv", "list", "--limit", "1", "--json", "--db", db_url, env=env)
    assert [entry["id"] for entry in json.loads(limited.stdout)] == [newer]

    bad = clust("conversations", "list", "--limit", "0", "--db", db_url, env=env)
    assert bad.returncode == 2 and "--limit" in bad.stderr


def test_list_empty(tmp_path: Path, db_url: str) -> None:
    result = clust("conversations", "list", "--db", db_url, env=clean_env(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "no conversations yet" in result.stdout
    assert (
        clust(
            "conversations", "list", "--json", "--db", db_url, env=clean_env(tmp_path)
        ).stdout.strip()
        == "[]"
    )


def test_show(tmp_path: Path, db_url: str, two_chats: tuple[str, str]) -> None:
    newer, older = two_chats
    result = clust("conversations", "show", older, "--db", db_url, env=clean_env(tmp_path))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"conversation {older}" in out
    assert "title:   Oslo weather" in out
    assert f"model:   {MODEL} (max_tokens 512)" in out
    assert "system:  You are terse." in out
    assert "tools:   get_weather" in out
    assert "4 turns:" in out
    assert "[0] user: Weather in Oslo?" in out
    assert "[1] assistant: Checking." in out
    assert '[tool call get_weather({"city": "Oslo"})]' in out
    assert "[2] user: [tool result: -3 C and snow in Oslo]" in out
    assert "[3] assistant: Snow in Oslo." in out
    assert "usage: 2 requests" in out
    assert f"cost: n/a, no known price for {MODEL}" in out

    priced = tmp_path / "prices.json"
    priced.write_text(
        json.dumps(
            {
                "prices": [
                    {"model": MODEL, "effective_from": "2020-01-01", "input": "3", "output": "15"}
                ]
            }
        )
    )
    with Store(db_url) as store:
        totals = store.get_conversation(older).usage()
    expected = Decimal(totals.input_tokens * 3 + totals.output_tokens * 15) / 1_000_000
    assert totals.cache_creation_input_tokens == totals.cache_read_input_tokens == 0
    with_prices = clust(
        "conversations", "show", older, "--prices", str(priced), "--db", db_url,
        env=clean_env(tmp_path),
    )  # fmt: skip
    cost = next(line for line in with_prices.stdout.splitlines() if line.startswith("cost: "))
    assert Decimal(cost.split()[1]) == expected, cost

    haiku = clust("conversations", "show", newer, "--db", db_url, env=clean_env(tmp_path))
    assert "[1] assistant: Bonjour !" in haiku.stdout
    assert "cost: " in haiku.stdout and "n/a" not in haiku.stdout  # a shipped list price


def test_export(tmp_path: Path, db_url: str, two_chats: tuple[str, str]) -> None:
    _, older = two_chats
    with Store(db_url) as store:
        expected = json.loads(json.dumps(store.export_conversation(older)))
    to_stdout = clust("conversations", "export", older, "--db", db_url, env=clean_env(tmp_path))
    assert to_stdout.returncode == 0, to_stdout.stderr
    assert json.loads(to_stdout.stdout) == expected

    target = tmp_path / "export.json"
    to_file = clust(
        "conversations", "export", older, "-o", str(target), "--db", db_url, env=clean_env(tmp_path)
    )
    assert to_file.returncode == 0, to_file.stderr
    assert "4 turns" in to_file.stdout
    assert json.loads(target.read_text(encoding="utf-8")) == expected

    with Store(db_url) as store:  # the document imports back
        copy = store.import_conversation(expected)
        assert len(copy.history) == 4

    unwritable = clust(
        "conversations", "export", older, "-o", str(tmp_path / "no" / "dir.json"), "--db", db_url,
        env=clean_env(tmp_path),
    )  # fmt: skip
    assert_one_line_failure(unwritable)


def test_delete(tmp_path: Path, db_url: str, two_chats: tuple[str, str]) -> None:
    newer, older = two_chats
    env = clean_env(tmp_path)
    refused = clust("conversations", "delete", older, "--db", db_url, env=env)  # stdin: a pipe
    line = assert_one_line_failure(refused)
    assert "--yes" in line
    deleted = clust("conversations", "delete", older, "--yes", "--db", db_url, env=env)
    assert deleted.returncode == 0, deleted.stderr
    assert f"deleted conversation {older}" in deleted.stdout
    with Store(db_url) as store:
        assert [conv.id for conv in store.list_conversations()] == [newer]
    again = clust("conversations", "delete", older, "--yes", "--db", db_url, env=env)
    assert older in assert_one_line_failure(again)


@pytest.mark.parametrize("command", ["show", "export", "delete"])
def test_unknown_conversation(tmp_path: Path, db_url: str, command: str) -> None:
    extra = ["--yes"] if command == "delete" else []
    result = clust(
        "conversations", command, "nope", *extra, "--db", db_url, env=clean_env(tmp_path)
    )
    line = assert_one_line_failure(result)
    assert "'nope'" in line
