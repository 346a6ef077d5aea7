"""Budgets: checked before a request leaves, from the ledger, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from clust import Client, Store
from clust.messages import BudgetExceeded, InvalidParameter, StoreError
from clust.testing import FakeClaude, Reply
from clust.usage import Budget, Price, PriceTable

MODEL = "claude-sonnet-5-5"
# $10 / $50 per million: a 100-token reply costs $0.005, easy to reason about.
PRICES = PriceTable.default().with_prices(Price(MODEL, date(2020, 1, 1), "10", "50"))


@pytest.fixture
def fake_server() -> FakeClaude:  # type: ignore[misc]
    with FakeClaude() as fake:
        yield fake


@pytest.fixture
def client(fake_server: FakeClaude) -> Client:  # type: ignore[misc]
    with Client(api_key="k", base_url=fake_server.base_url, max_retries=0) as c:
        yield c


def test_a_conversation_budget_stops_the_request_before_it_is_sent(
    db_url: str, fake_server: FakeClaude, client: Client
) -> None:
    # Each request is estimated at (body bytes / 3) input tokens + max_tokens output:
    # with max_tokens=100 that is at most about $0.0065 for a short chat.
    with Store(db_url, budgets=[Budget("0.012")], prices=PRICES) as store:
        conv = store.create_conversation(model=MODEL, max_tokens=100)
        conv.send(client, "one")
        spent = conv.usage()
        sent = len(fake_server.requests)
        with pytest.raises(BudgetExceeded) as refused:
            for index in range(10):
                conv.send(client, f"turn {index}")
        error = refused.value
        assert error.limit == Decimal("0.012")
        assert error.spent > 0 and error.estimate > 0
        assert error.spent + error.estimate > error.limit
        assert error.scope == f"conversation {conv.id}"
        assert "nothing was sent" in str(error)
        # the refused request was neither sent nor stored: no pending turn
        answered = len(fake_server.requests) - sent
        assert len(conv.history) == 2 + 2 * answered
        assert not store.get_conversation(conv.id).pending
        assert conv.usage().requests == spent.requests + answered


def test_a_metadata_budget_is_shared_by_the_conversations_of_one_user(
    db_url: str, fake_server: FakeClaude, client: Client
) -> None:
    with Store(db_url, budgets=[Budget("0.015", per="metadata:user")], prices=PRICES) as store:
        first = store.create_conversation(model=MODEL, max_tokens=100, metadata={"user": "ann"})
        second = store.create_conversation(model=MODEL, max_tokens=100, metadata={"user": "ann"})
        other = store.create_conversation(model=MODEL, max_tokens=100, metadata={"user": "bob"})
        anonymous = store.create_conversation(model=MODEL, max_tokens=100)
        fake_server.enqueue(Reply.text("word " * 400))  # ~400 output tokens: about $0.02
        first.send(client, "hello")
        assert first.usage().output_tokens >= 300
        with pytest.raises(BudgetExceeded) as refused:
            second.send(client, "hello")
        assert refused.value.scope == "metadata user='ann'"
        other.send(client, "hello")  # bob has his own budget
        anonymous.send(client, "hello")  # no user key: this budget does not apply


def test_budgets_need_a_price_for_the_model(db_url: str, client: Client) -> None:
    with Store(db_url, budgets=[Budget("1")], prices=PriceTable(())) as store:
        conv = store.create_conversation(model=MODEL, max_tokens=100)
        with pytest.raises(StoreError, match="no price for model"):
            conv.send(client, "hello")
        assert conv.history == []


@pytest.mark.anyio
async def test_async_sends_and_streams_are_checked_too(
    db_url: str, fake_server: FakeClaude
) -> None:
    from clust import AsyncClient

    async with AsyncClient(api_key="k", base_url=fake_server.base_url) as aclient:
        with Store(db_url, budgets=[Budget("0")], prices=PRICES) as store:
            conv = store.create_conversation(model=MODEL, max_tokens=100)
            with pytest.raises(BudgetExceeded):
                await conv.asend(aclient, "hello")
            with pytest.raises(BudgetExceeded):
                async with conv.astream(aclient, "hello") as stream:
                    await stream.get_final_message()
            assert fake_server.requests == []


@pytest.mark.parametrize(
    ("limit", "per"), [(-1, "conversation"), (0.5, "conversation"), ("1", "user")]
)
def test_bad_budgets_are_refused(limit: object, per: str) -> None:
    with pytest.raises(InvalidParameter):
        Budget(limit, per=per)  # type: ignore[arg-type]


def test_streams_are_checked(db_url: str, fake_server: FakeClaude, client: Client) -> None:
    fake_server.enqueue(Reply.text("hi"))
    with Store(db_url, budgets=[Budget("0")], prices=PRICES) as store:
        conv = store.create_conversation(model=MODEL, max_tokens=100)
        with pytest.raises(BudgetExceeded), conv.stream(client, "hello") as stream:
            stream.get_final_message()
        assert fake_server.requests == []
        assert conv.history == []
