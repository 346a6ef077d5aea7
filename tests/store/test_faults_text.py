"""Text the databases cannot store as is, on SQLite and PostgreSQL.

- NUL characters (U+0000): PostgreSQL refuses them in text and in JSONB (even as the
  ``\\u0000`` escape). Wherever a user, a tool or the model can put one (a title,
  metadata keys and values, the system prompt, a tool's input, result or error text)
  it is stored losslessly and comes back byte-equal: in the history, the export, the
  next request and the tool results given to the model. A tool call's row reaches its
  final status, so a resumed run never runs a completed tool again.
- Metadata keys holding ``"`` (or a NUL) match on both databases: in
  ``list_conversations``, ``usage_report(by=...)`` and ``Budget(per=...)``.
- Input no database can store (lone surrogates, metadata nested thousands deep, an id
  that is not a string) raises a typed clust error before anything is stored or sent.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest
from sqlalchemy import func, select

from clust import Client, Conversation, Store
from clust.messages import (
    BudgetExceeded,
    ConversationNotFound,
    InvalidParameter,
    TextContentBlock,
)
from clust.store import ConversationRow, MessageRow, ToolCallRow, UsageRow
from clust.testing import FakeClaude, Reply
from clust.tools import tool
from clust.usage import Budget, Price, PriceTable, usage_report

MODEL = "claude-sonnet-5-5"
NUL = "\x00"
LONE = "\ud800"
# Strings the stored form must not confuse with an encoded NUL: U+FDD0 is the mark of
# an encoded string, and a backslash its escape.
TRICKY = ["a\x00b", "\x00", "\ufdd0", "\ufdd0\\0", "\\0", "a\\\x00\\b", "plain"]


def new_conversation(store: Store, **options: Any) -> Conversation:
    conv = store.create_conversation(model=MODEL, max_tokens=256, **options)
    conv.cache = None  # no automatic markers: each request repeats the last one's bytes
    return conv


def stored_wires(store: Store, conversation_id: str) -> list[bytes]:
    table = MessageRow.__table__
    with store.engine.connect() as connection:
        found = connection.execute(
            select(table.c.wire)
            .where(table.c.conversation_id == conversation_id)
            .order_by(table.c.position)
        ).all()
    return [row[0].encode() for row in found]


def tool_rows(store: Store, conversation_id: str) -> dict[str, dict[str, Any]]:
    table = ToolCallRow.__table__
    with store.engine.connect() as connection:
        found = connection.execute(
            select(table).where(table.c.conversation_id == conversation_id)
        ).all()
    return {row.tool_use_id: dict(row._mapping) for row in found}


def counts(store: Store) -> tuple[int, ...]:
    """How many rows the conversation, message, usage and tool call tables hold."""
    tables = (ConversationRow, MessageRow, UsageRow, ToolCallRow)
    with store.engine.connect() as connection:
        return tuple(
            connection.execute(select(func.count()).select_from(row.__table__)).scalar_one()
            for row in tables
        )


def assert_history_byte_equal(store: Store, fake: FakeClaude, conv: Conversation) -> None:
    """Every stored turn is in the last request as it is stored (one splice, byte for
    byte), the reopened history and the export hold the same turns."""
    wires = stored_wires(store, conv.id)
    body = fake.requests[-1].raw
    sent = b'"messages":[' + b",".join(wires[:-1]) + b"]"
    assert sent in body
    reopened = store.get_conversation(conv.id)
    assert [m.to_wire() for m in reopened.history] == [json.loads(w) for w in wires]
    exported = store.export_conversation(conv.id)["messages"]
    assert exported == [json.loads(w) for w in wires]


# -- NUL characters -------------------------------------------------------------------------


def test_titles_and_metadata_with_nul_come_back_equal(store: Store) -> None:
    metadata: dict[str, Any] = {text: text for text in TRICKY}
    metadata["nested"] = {"k\x00": ["\x00", {"\ufdd0": "x\x00"}], "n": 1}
    created = [store.create_conversation(model=MODEL, max_tokens=8, title=t) for t in TRICKY]
    conv = store.create_conversation(
        model=MODEL, max_tokens=8, title="t\x00", metadata=metadata, system="sys\x00tem"
    )

    reopened = store.get_conversation(conv.id)
    assert (reopened.title, reopened.metadata, reopened.system) == ("t\x00", metadata, "sys\x00tem")
    assert [store.get_conversation(c.id).title for c in created] == TRICKY
    listed = {c.id: c for c in store.list_conversations(limit=100)}
    assert [listed[c.id].title for c in created] == TRICKY
    assert listed[conv.id].metadata == metadata
    document = store.export_conversation(conv.id)
    assert (document["title"], document["metadata"]) == ("t\x00", metadata)
    imported = store.import_conversation(document)
    assert (imported.title, store.get_conversation(imported.id).metadata) == ("t\x00", metadata)


def test_metadata_with_nul_matches_in_filters_and_reports(
    store: Store, fake: FakeClaude, client: Client
) -> None:
    conv = new_conversation(store, metadata={"user\x00": "ann\x00", "k": "\ufdd0v"})
    other = new_conversation(store, metadata={"user": "ann", "k": "v"})
    conv.send(client, "hi")
    other.send(client, "hi")

    assert [c.id for c in store.list_conversations(metadata={"user\x00": "ann\x00"})] == [conv.id]
    assert [c.id for c in store.list_conversations(metadata={"k": "\ufdd0v"})] == [conv.id]
    assert store.list_conversations(metadata={"user\x00": "ann"}) == []
    report = usage_report(store, by="metadata:user\x00")
    assert [(row.key, row.requests) for row in report] == [("ann\x00", 1), (None, 1)]
    assert [row.requests for row in usage_report(store, metadata={"k": "\ufdd0v"})] == [1]


def test_nul_in_a_system_prompt_and_stop_sequence_is_sent_as_stored(
    store: Store, fake: FakeClaude, client: Client
) -> None:
    conv = new_conversation(store, system="be\x00brief", params={"stop_sequences": ["\x00"]})
    store.get_conversation(conv.id).send(client, "hi")
    body = fake.requests[-1].body
    assert (body["system"], body["stop_sequences"]) == ("be\x00brief", ["\x00"])
    assert b'"system":"be\\u0000brief"' in fake.requests[-1].raw


def test_nul_in_tool_input_result_and_error_text(
    store: Store, fake: FakeClaude, client: Client
) -> None:
    ran: list[str] = []

    @tool
    def echo(text: str) -> str:
        """Echo the text."""
        ran.append(text)
        return f"got {text}\x00"

    @tool
    def boom(text: str) -> str:
        """Always fails."""
        raise ValueError(f"bad\x00{text}")

    fake.enqueue(
        Reply.tool_uses(
            [("echo", {"text": "in\x00put"}, "toolu_1"), ("boom", {"text": "\x00"}, "toolu_2")]
        ),
        Reply.text("done"),
        Reply.text("and again"),
    )
    conv = new_conversation(store)

    result = conv.run(client, "go", tools=[echo, boom])

    assert result.stop == "end_turn" and ran == ["in\x00put"]
    one, two = result.steps[0].tool_calls
    assert (one.input, one.content, one.status) == (
        {"text": "in\x00put"},
        "got in\x00put\x00",
        "succeeded",
    )
    assert (two.error, two.status) == ("ValueError: bad\x00\x00", "failed")
    rows = tool_rows(store, conv.id)
    assert rows["toolu_1"]["input"] == {"text": "in\x00put"}
    assert json.loads(rows["toolu_1"]["result"]) == "got in\x00put\x00"
    assert (rows["toolu_2"]["status"], rows["toolu_2"]["error"]) == (
        "failed",
        "ValueError: bad\x00\x00",
    )
    results = fake.requests[1].body["messages"][-1]["content"]
    assert [block["content"] for block in results] == [
        "got in\x00put\x00",
        "Error: boom failed: ValueError: bad\x00\x00",
    ]

    conv.send(client, "and?")  # the next request repeats every stored turn byte for byte
    assert_history_byte_equal(store, fake, conv)
    assert b'"got in\\u0000put\\u0000"' in fake.requests[-1].raw


@pytest.mark.parametrize(("idempotent", "fails"), [(False, True), (True, True), (False, False)])
def test_a_resumed_run_reuses_a_result_holding_nul(
    store: Store, fake: FakeClaude, client: Client, idempotent: bool, fails: bool
) -> None:
    """The tool got a NUL in its input and finished (its result or error text holds
    one), and the run stopped before sending the result: the next run sends the stored
    result, neither "interrupted" nor from a second run of the tool."""
    ran: list[str] = []

    class Stop(BaseException):
        pass

    @tool(idempotent=idempotent)
    def charge(amount: int, note: str) -> str:
        """Charge the card."""
        ran.append(note)
        if fails:
            raise RuntimeError(f"declined {note}")
        return f"charged {note}"

    def stop(step: Any) -> None:
        raise Stop

    call = {"amount": 5, "note": "n\x00"}
    fake.enqueue(Reply.tool_use("charge", call, id="toolu_c"), Reply.text("Done."))
    conv = new_conversation(store)
    with pytest.raises(Stop):
        conv.run(client, "buy", tools=[charge], on_step=stop)
    assert tool_rows(store, conv.id)["toolu_c"]["status"] == ("failed" if fails else "succeeded")

    result = store.get_conversation(conv.id).run(client, tools=[charge])

    assert result.text == "Done." and ran == ["n\x00"]
    (outcome,) = result.steps[0].tool_calls
    assert outcome.reused and outcome.input == call
    (sent,) = fake.requests[-1].body["messages"][-1]["content"]
    if fails:
        assert outcome.error == "RuntimeError: declined n\x00"
        assert sent["content"] == "Error: charge failed: RuntimeError: declined n\x00"
    else:
        assert sent == {"type": "tool_result", "tool_use_id": "toolu_c", "content": "charged n\x00"}
    assert_history_byte_equal(store, fake, conv)


def test_a_tool_result_that_cannot_be_encoded_is_an_error_result(
    store: Store, fake: FakeClaude, client: Client
) -> None:
    class Unprintable(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no message")

    @tool
    def broken(kind: str) -> str:
        """Returns a lone surrogate, or raises."""
        if kind == "surrogate":
            return "half \ud800"
        if kind == "error":
            raise ValueError("half \udc00")
        raise Unprintable

    calls = [("broken", {"kind": k}, f"toolu_{k}") for k in ("surrogate", "error", "unprintable")]
    fake.enqueue(Reply.tool_uses(calls), Reply.text("ok"))
    conv = new_conversation(store)

    result = conv.run(client, "go", tools=[broken])

    assert result.text == "ok"
    rows = tool_rows(store, conv.id)
    assert {key: row["status"] for key, row in rows.items()} == dict.fromkeys(rows, "failed")
    assert rows["toolu_surrogate"]["error"] == "InvalidResult: a lone surrogate in the result"
    assert rows["toolu_error"]["error"] == "ValueError: half \\udc00"
    assert rows["toolu_unprintable"]["error"].startswith("Unprintable: <")
    sent = fake.requests[-1].body["messages"][-1]["content"]
    assert [block["is_error"] for block in sent] == [True, True, True]
    assert sent[0]["content"] == "Error: broken returned text that is not valid Unicode."


# -- metadata keys SQLite's JSON paths cannot spell -----------------------------------------


@pytest.mark.parametrize("key", ['a"b', '"', "a\\b", "k\x00"])
def test_metadata_keys_match_in_filters_and_reports(
    store: Store, fake: FakeClaude, client: Client, key: str
) -> None:
    conv = new_conversation(store, metadata={key: "q", "other": 1})
    new_conversation(store, metadata={"other": 1}).send(client, "hi")
    conv.send(client, "hi")

    assert [c.id for c in store.list_conversations(metadata={key: "q"})] == [conv.id]
    report = usage_report(store, by=f"metadata:{key}")
    assert [(row.key, row.requests) for row in report] == [("q", 1), (None, 1)]
    assert [row.requests for row in usage_report(store, metadata={key: "q"})] == [1]


@pytest.mark.parametrize("key", ['a"b', "k\x00"])
def test_a_budget_per_metadata_key_with_a_quote_or_nul_counts(
    db_url: str, fake: FakeClaude, client: Client, key: str
) -> None:
    prices = PriceTable.default().with_prices(Price(MODEL, date(2020, 1, 1), "10", "50"))
    budget = Budget("0.015", per=f"metadata:{key}")
    with Store(db_url, budgets=[budget], prices=prices) as store:
        first = store.create_conversation(model=MODEL, max_tokens=100, metadata={key: "ann"})
        second = store.create_conversation(model=MODEL, max_tokens=100, metadata={key: "ann"})
        fake.enqueue(Reply.text("word " * 400))  # ~400 output tokens: about $0.02
        first.send(client, "hello")
        with pytest.raises(BudgetExceeded):
            second.send(client, "hello")
    assert len(fake.requests) == 1


# -- input no database can store ------------------------------------------------------------


def deep(levels: int) -> Any:
    value: Any = "bottom"
    for _ in range(levels):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda s, c: s.create_conversation(model=MODEL, max_tokens=8, title=LONE), "title"),
        (lambda s, c: s.create_conversation(model=MODEL, max_tokens=8, system=LONE), "system"),
        (
            lambda s, c: s.create_conversation(model=MODEL, max_tokens=8, metadata={"k": LONE}),
            "metadata['k']",
        ),
        (
            lambda s, c: s.create_conversation(model=MODEL, max_tokens=8, metadata={LONE: 1}),
            "metadata key",
        ),
        (
            lambda s, c: s.create_conversation(
                model=MODEL, max_tokens=8, metadata={"d": deep(2000)}
            ),
            "metadata['d']" + "[0]" * 99,
        ),
        (lambda s, c: s.create_conversation(model="m\x00", max_tokens=8), "model"),
        (lambda s, c: c.send(None, "text " + LONE), "content"),
        (lambda s, c: c.send(None, [TextContentBlock(text=LONE)]), "content[0]['text']"),
        (lambda s, c: c.send(None, "hi", system=LONE), "system"),
        (lambda s, c: s.get_conversation(LONE), "conversation_id"),
        (lambda s, c: s.delete_conversation(LONE), "conversation_id"),
        (lambda s, c: s.list_conversations(metadata={"k": LONE}), "metadata['k']"),
        (lambda s, c: s.list_conversations(after=LONE), "after"),
        (lambda s, c: usage_report(s, by="metadata:" + LONE), "by"),
        (lambda s, c: usage_report(s, conversation_id=LONE), "conversation_id"),
        (lambda s, c: usage_report(s, metadata={LONE: 1}), "metadata key"),
        (lambda s, c: Budget("1", per="metadata:" + LONE), "per"),
    ],
)
def test_input_no_database_stores_is_refused_before_anything_is_stored_or_sent(
    store: Store, fake: FakeClaude, client: Client, call: Any, field: str
) -> None:
    conv = new_conversation(store, metadata={"k": "v"})
    conv.send(client, "hi")
    before, sent = counts(store), len(fake.requests)

    with pytest.raises(InvalidParameter) as raised:
        call(store, _Bound(conv, client))

    assert raised.value.field == field
    assert str(raised.value)  # printable, even for a value nested 2,000 deep
    assert counts(store) == before and len(fake.requests) == sent


class _Bound:
    """A conversation whose ``send`` uses the test's client (the lambdas pass None)."""

    def __init__(self, conv: Conversation, client: Client) -> None:
        self.conv, self.client = conv, client

    def send(self, _client: object, content: Any, **options: Any) -> Any:
        return self.conv.send(self.client, content, **options)


@pytest.mark.parametrize("bad_id", [123, b"id", "a\x00b", "\udc00"])
def test_an_id_that_cannot_name_a_conversation_is_not_found(store: Store, bad_id: Any) -> None:
    store.create_conversation(model=MODEL, max_tokens=8)
    before = counts(store)
    for call in (
        store.get_conversation,
        store.delete_conversation,
        store.break_lease,
        store.export_conversation,
        lambda cid: store.fork(cid, 0),
        lambda cid: store.list_conversations(after=cid),
    ):
        with pytest.raises(ConversationNotFound) as raised:
            call(bad_id)
        assert isinstance(raised.value, InvalidParameter)
    assert counts(store) == before
