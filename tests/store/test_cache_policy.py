"""The automatic cache policy: exact ``cache_control`` placement in what FakeClaude receives,
with the stored history left as the user sent it. FakeClaude validates every request (at most
4 breakpoints, 1h before 5m, none on blocks that cannot carry one), so each send succeeding
is part of every test."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from sqlalchemy import select

from clust import Client, Store
from clust.conversation import CachePolicy
from clust.messages import InvalidParameter
from clust.store import MessageRow
from clust.testing import FakeClaude

MODEL = "claude-sonnet-5-5"  # minimum cacheable prefix: 1024 tokens (the default)
TTL_BETA = "extended-cache-ttl-2025-04-11"
FIVE = {"type": "ephemeral", "ttl": "5m"}
HOUR = {"type": "ephemeral", "ttl": "1h"}
USER_MARK = {"type": "ephemeral"}
LONG = "Follow the house style guide to the letter. " * 400  # ~4,400 tokens
TOOL: dict[str, Any] = {
    "name": "get_weather",
    "description": "The weather in a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}
LONG_TOOL = {**TOOL, "name": "get_forecast", "description": LONG}


def stored_wires(store: Store, conversation_id: str) -> list[str]:
    table = MessageRow.__table__
    with store.engine.connect() as connection:
        found = connection.execute(
            select(table.c.wire)
            .where(table.c.conversation_id == conversation_id)
            .order_by(table.c.position)
        ).all()
    return [row[0] for row in found]


def markers(body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every cache_control in the body with where it is, in prompt order."""
    found: list[tuple[str, dict[str, Any]]] = []

    def walk(value: Any, where: str) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key == "cache_control":
                    found.append((where, item))
                else:
                    walk(item, f"{where}.{key}" if where else key)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                walk(item, f"{where}.{i}")

    for section in ("tools", "system", "messages"):
        walk(body.get(section), section)
    return found


def betas(fake: FakeClaude) -> str:
    return fake.last_request.header("anthropic-beta") or ""


def test_plain_chat_marks_the_newest_turn_in_the_request_only(
    store: Store, client: Client, fake: FakeClaude
) -> None:
    conv = store.create_conversation(model=MODEL, max_tokens=50)
    conv.send(client, LONG)
    body = fake.last_request.body
    # String content became one text block to carry the moving breakpoint.
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": LONG, "cache_control": FIVE}]}
    ]
    assert markers(body) == [("messages.0.content.0", FIVE)]
    conv.send(client, "and now?")
    body = fake.last_request.body
    assert markers(body) == [("messages.2.content.0", FIVE)]
    assert body["messages"][0] == {"role": "user", "content": LONG}  # spliced as stored
    assert TTL_BETA not in betas(fake)
    # Stored exactly as sent by the user: no automatic marker, string content kept.
    wires = stored_wires(store, conv.id)
    assert json.loads(wires[0]) == {"role": "user", "content": LONG}
    assert json.loads(wires[2]) == {"role": "user", "content": "and now?"}
    assert all("cache_control" not in wire for wire in wires)


def test_tools_without_system_mark_the_last_tool(
    store: Store, client: Client, fake: FakeClaude
) -> None:
    conv = store.create_conversation(model=MODEL, max_tokens=50, tools=[TOOL, LONG_TOOL])
    conv.send(client, "Weather in Rome?")
    body = fake.last_request.body
    assert markers(body) == [("tools.1", FIVE), ("messages.0.content.0", FIVE)]
    assert body["tools"][0] == TOOL
    assert conv.tools == [TOOL, LONG_TOOL]  # the stored defaults are untouched


def test_system_and_tools_mark_the_last_system_block(
    store: Store, client: Client, fake: FakeClaude
) -> None:
    conv = store.create_conversation(model=MODEL, max_tokens=50, system=LONG, tools=[TOOL])
    conv.send(client, "hello")
    body = fake.last_request.body
    assert body["system"] == [{"type": "text", "text": LONG, "cache_control": FIVE}]
    assert markers(body) == [("system.0", FIVE), ("messages.0.content.0", FIVE)]
    assert conv.system == LONG


def test_short_prompts_under_the_minimum_get_no_marker(
    store: Store, client: Client, fake: FakeClaude
) -> None:
    conv = store.create_conversation(model=MODEL, max_tokens=50, system="Be brief.", tools=[TOOL])
    conv.send(client, "hi")
    conv.send(client, "again")
    body = fake.last_request.body
    assert markers(body) == []
    assert body["system"] == "Be brief."
    assert body["messages"][-1] == {"role": "user", "content": "again"}


def test_one_user_marker_keeps_both_automatic_ones(
    store: Store, client: Client, fake: FakeClaude
) -> None:
    conv = store.create_conversation(model=MODEL, max_tokens=50, system=LONG)
    conv.send(client, [{"type": "text", "text": "remember this", "cache_control": USER_MARK}])
    body = fake.last_request.body
    # The newest turn's only block already carries the user's marker: nothing added there.
    assert markers(body) == [("system.0", FIVE), ("messages.0.content.0", USER_MARK)]
    conv.send(client, "next")
    assert markers(fake.last_request.body) == [
        ("system.0", FIVE),
        ("messages.0.content.0", USER_MARK),
        ("messages.2.content.0", FIVE),
    ]


def test_three_user_markers_leave_room_for_the_moving_one_only(
    store: Store, client: Client, fake: FakeClaude
) -> None:
    system = [
        {"type": "text", "text": LONG, "cache_control": USER_MARK},
        {"type": "text", "text": "Answer in English."},
    ]
    conv = store.create_conversation(
        model=MODEL, max_tokens=50, system=system, tools=[{**TOOL, "cache_control": USER_MARK}]
    )
    conv.send(client, [{"type": "text", "text": "first", "cache_control": USER_MARK}])
    conv.send(client, "second")
    assert markers(fake.last_request.body) == [
        ("tools.0", USER_MARK),
        ("system.0", USER_MARK),
        ("messages.0.content.0", USER_MARK),
        ("messages.2.content.0", FIVE),
    ]


def test_four_user_markers_get_no_automatic_marker(
    store: Store, client: Client, fake: FakeClaude
) -> None:
    system = [
        {"type": "text", "text": LONG, "cache_control": USER_MARK},
        {"type": "text", "text": "Answer in English."},
    ]
    conv = store.create_conversation(
        model=MODEL, max_tokens=50, system=system, tools=[{**TOOL, "cache_control": USER_MARK}]
    )
    conv.send(
        client,
        [
            {"type": "text", "text": "a", "cache_control": USER_MARK},
            {"type": "text", "text": "b", "cache_control": USER_MARK},
        ],
    )
    conv.send(client, "plain")
    body = fake.last_request.body
    assert len(markers(body)) == 4
    assert all(marker == USER_MARK for _, marker in markers(body))
    assert body["messages"][-1] == {"role": "user", "content": "plain"}


def test_one_hour_system_and_five_minute_moving_breakpoint(
    db_url: str, client: Client, fake: FakeClaude
) -> None:
    with Store(db_url, cache=CachePolicy(system_ttl="1h")) as store:
        conv = store.create_conversation(model=MODEL, max_tokens=50, system=LONG)
        assert conv.cache == CachePolicy(system_ttl="1h", history_ttl="5m")
        conv.send(client, "hello")
        assert markers(fake.last_request.body) == [
            ("system.0", HOUR),
            ("messages.0.content.0", FIVE),
        ]
        assert TTL_BETA in betas(fake)
        reply = conv.send(client, "again")
        assert reply.usage.cache_read_input_tokens > 0
        assert all("cache_control" not in wire for wire in stored_wires(store, conv.id))


def test_a_later_user_one_hour_marker_upgrades_the_automatic_one(
    store: Store, client: Client, fake: FakeClaude
) -> None:
    conv = store.create_conversation(model=MODEL, max_tokens=50, system=LONG)
    conv.send(
        client,
        [{"type": "text", "text": "keep", "cache_control": HOUR}, {"type": "text", "text": "q"}],
    )
    # 1h must not follow 5m: the system breakpoint takes the user's 1h, the moving one
    # (after the user's 1h marker) stays 5m.
    assert markers(fake.last_request.body) == [
        ("system.0", HOUR),
        ("messages.0.content.0", HOUR),
        ("messages.0.content.1", FIVE),
    ]


def test_an_earlier_user_five_minute_marker_downgrades_a_one_hour_policy(
    store: Store, client: Client, fake: FakeClaude
) -> None:
    conv = store.create_conversation(
        model=MODEL, max_tokens=50, system=[{"type": "text", "text": LONG, "cache_control": FIVE}]
    )
    conv.cache = CachePolicy(system_ttl="1h", history_ttl="1h")
    conv.send(client, "hello")
    assert markers(fake.last_request.body) == [("system.0", FIVE), ("messages.0.content.0", FIVE)]


def test_cache_none_or_off_places_nothing(store: Store, client: Client, fake: FakeClaude) -> None:
    conv = store.create_conversation(model=MODEL, max_tokens=50, system=LONG)
    conv.cache = None
    conv.send(client, "hello")
    assert markers(fake.last_request.body) == []
    conv.cache = CachePolicy.off()
    conv.send(client, "again")
    assert markers(fake.last_request.body) == []
    with pytest.raises(InvalidParameter):
        CachePolicy(system_ttl="10m")  # type: ignore[arg-type]


def test_a_multi_turn_chat_reads_the_cache_from_turn_two_on(
    store: Store, client: Client, fake: FakeClaude
) -> None:
    conv = store.create_conversation(model=MODEL, max_tokens=50, system=LONG)
    reads = []
    for turn in range(6):
        reply = conv.send(client, f"question {turn}")
        reads.append(reply.usage.cache_read_input_tokens)
        usage = reply.usage
        total = usage.input_tokens + usage.cache_read_input_tokens
        total += usage.cache_creation_input_tokens or 0
        if turn:
            assert usage.cache_read_input_tokens / total > 0.9
    assert reads[0] == 0
    assert all(later > earlier for earlier, later in itertools.pairwise(reads[1:]))  # moving
    assert all("cache_control" not in wire for wire in stored_wires(store, conv.id))
