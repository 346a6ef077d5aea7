"""Per-turn cache visibility: each request names the previous reply
(``diagnostics.previous_message_id``), each usage row keeps the reply's id and the
cache-miss reason the API gave, and ``conv.usage()`` reports the hit ratio and the saving."""

from __future__ import annotations

from decimal import Decimal

import pytest

from clust import AsyncClient, Client, Store
from clust.conversation import CachePolicy
from clust.testing import FakeClaude
from clust.usage import PriceTable, cache_savings, cost_of

MODEL = "claude-sonnet-5-5"  # minimum cacheable prefix: 1024 tokens
PRICED_MODEL = "claude-sonnet-4-5"  # the same minimum, and a list price
SYSTEM = "Answer as the house style guide says. " * 400  # ~3,600 tokens
OTHER_SYSTEM = "Answer tersely, in the style of a telegram. " * 400


def diagnostics_sent(fake: FakeClaude) -> list[object]:
    return [r.body.get("diagnostics") for r in fake.requests if r.path == "/v1/messages"]


def test_each_turn_names_the_previous_reply_and_the_row_keeps_the_id(
    store: Store, client: Client, fake: FakeClaude
) -> None:
    conv = store.create_conversation(model=MODEL, system=SYSTEM, max_tokens=50)
    first = conv.send(client, "Hello")
    second = conv.send(client, "And then?")
    conv.send(client, "Thanks")
    assert diagnostics_sent(fake) == [
        None,
        {"previous_message_id": first.id},
        {"previous_message_id": second.id},
    ]
    turns = conv.usage_by_turn()
    assert [t.position for t in turns] == [1, 3, 5]
    assert turns[0].message_id == first.id and turns[1].message_id == second.id
    # Turn 1 wrote the system prompt; turns 2 and 3 read it: hits, and no miss reason.
    assert [t.cache_hit for t in turns] == [False, True, True]
    assert [t.cache_miss_reason for t in turns] == [None, None, None]


def test_a_reopened_conversation_reads_the_previous_reply_id_from_the_store(
    db_url: str, client: Client, fake: FakeClaude
) -> None:
    with Store(db_url) as first_store:
        conv = first_store.create_conversation(model=MODEL, system=SYSTEM, max_tokens=50)
        reply = conv.send(client, "Hello")
    with Store(db_url) as second_store:
        second_store.get_conversation(conv.id).send(client, "Again")
    assert diagnostics_sent(fake)[-1] == {"previous_message_id": reply.id}


def test_a_changed_system_prompt_is_recorded_as_the_miss_reason(
    store: Store, client: Client, fake: FakeClaude
) -> None:
    conv = store.create_conversation(model=MODEL, system=SYSTEM, max_tokens=50)
    conv.send(client, "Hello")
    conv.send(client, "Now differently", system=OTHER_SYSTEM)
    last = conv.usage_by_turn()[-1]
    assert not last.cache_hit
    assert last.cache_miss_reason == "system_changed"
    assert last.cache_missed_input_tokens is not None and last.cache_missed_input_tokens > 1000


def test_a_model_change_is_recorded_as_the_miss_reason(
    store: Store, client: Client, fake: FakeClaude
) -> None:
    conv = store.create_conversation(model=MODEL, system=SYSTEM, max_tokens=50)
    conv.send(client, "Hello")
    conv.send(client, "Same, elsewhere", model="claude-opus-5")
    assert conv.usage_by_turn()[-1].cache_miss_reason == "model_changed"


def test_no_diagnostics_without_a_cache_policy_or_when_the_caller_sets_them(
    store: Store, client: Client, fake: FakeClaude
) -> None:
    conv = store.create_conversation(model=MODEL, system=SYSTEM, max_tokens=50)
    conv.cache = CachePolicy.off()
    conv.send(client, "Hello")
    conv.send(client, "Again")
    conv.cache = None
    conv.send(client, "Once more")
    assert diagnostics_sent(fake) == [None, None, None]
    conv.cache = CachePolicy()
    conv.send(client, "Mine", params={"diagnostics": {"previous_message_id": None}})
    assert diagnostics_sent(fake)[-1] == {"previous_message_id": None}


def test_usage_reports_hits_ratio_cost_and_saving(
    store: Store, client: Client, fake: FakeClaude
) -> None:
    conv = store.create_conversation(model=PRICED_MODEL, system=SYSTEM, max_tokens=50)
    for text in ("one", "two", "three", "four"):
        conv.send(client, text)
    totals = conv.usage()
    assert totals.requests == 4
    assert totals.cache_hits == 3
    assert totals.cache_hit_ratio == totals.cache_read_input_tokens / totals.total_input_tokens
    assert totals.cache_hit_ratio > 0.6
    price = PriceTable.default().price_for(PRICED_MODEL, conv.usage_by_turn()[0].started_at)
    assert price is not None
    assert totals.cost == cost_of(totals, price)
    assert totals.cache_savings == cache_savings(totals, price)
    assert totals.cache_savings is not None and totals.cache_savings > Decimal(0)


def test_usage_of_a_model_without_a_price_has_no_cost(
    db_url: str, client: Client, fake: FakeClaude
) -> None:
    with Store(db_url, prices=PriceTable()) as store:
        conv = store.create_conversation(model=MODEL, max_tokens=50)
        conv.send(client, "Hello")
        totals = conv.usage()
    assert totals.requests == 1
    assert totals.cost is None and totals.cache_savings is None
    assert totals.cache_hits == 0 and totals.cache_hit_ratio == 0.0


@pytest.mark.anyio
async def test_async_turns_name_the_previous_reply_too(
    store: Store, aclient: AsyncClient, fake: FakeClaude
) -> None:
    conv = store.create_conversation(model=MODEL, system=SYSTEM, max_tokens=50)
    first = await conv.asend(aclient, "Hello")
    async with conv.astream(aclient, "Stream it") as stream:
        async for _ in stream:
            pass
    assert diagnostics_sent(fake)[-1] == {"previous_message_id": first.id}
    assert [t.cache_hit for t in conv.usage_by_turn()] == [False, True]
