"""Message Batches over real sockets: create, wait, stream results, cancel, delete, list."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from support import simple_body

from clust import AsyncClient, Client
from clust.messages import (
    BatchNotEnded,
    BatchRequest,
    BatchResult,
    BatchWaitTimeout,
    CacheControl,
    CacheTtl,
    CanceledResult,
    DeletedMessageBatch,
    ErroredResult,
    ExpiredResult,
    InvalidParameter,
    InvalidRequestError,
    Message,
    MessageBatch,
    MessagesRequestBody,
    NotFoundError,
    ProcessingStatus,
    SucceededResult,
    TextContentBlock,
)
from clust.testing import FakeClaude, Reply

MODEL = "claude-sonnet-5-5"
N = 1000
PROCESSING_SECONDS = 600.0


def question(i: int) -> str:
    return f"Question number {i}?"


def outcome(custom_id: str, params: object) -> str | Reply | None:
    """Every 10th errored, every 25th expired, every 40th canceled (first rule wins)."""
    i = int(custom_id.rsplit("-", 1)[1])
    if i % 10 == 3:
        return "errored" if i % 20 == 3 else Reply.error(529, "overloaded_error", "busy")
    if i % 25 == 4:
        return "expired"
    if i % 40 == 5:
        return "canceled"
    return None


def expected_type(i: int) -> str:
    if i % 10 == 3:
        return "errored"
    if i % 25 == 4:
        return "expired"
    if i % 40 == 5:
        return "canceled"
    return "succeeded"


def thousand_requests() -> list[BatchRequest | dict[str, Any]]:
    """Half typed ``BatchRequest`` objects, half plain mappings (wire dicts)."""
    requests: list[BatchRequest | dict[str, Any]] = []
    for i in range(N):
        if i % 2:
            requests.append(
                {
                    "custom_id": f"req-{i}",
                    "params": {
                        "model": MODEL,
                        "max_tokens": 100,
                        "messages": [{"role": "user", "content": question(i)}],
                    },
                }
            )
        else:
            body = MessagesRequestBody(
                model=MODEL, max_tokens=100, messages=[Message.user(question(i))]
            )
            requests.append(BatchRequest(f"req-{i}", body))
    return requests


@pytest.fixture
def slow_fake() -> Iterator[FakeClaude]:
    with FakeClaude(batch_processing_seconds=PROCESSING_SECONDS) as fake:
        fake.set_batch_resolver(outcome)
        yield fake


@pytest.fixture
def slow_client(slow_fake: FakeClaude) -> Iterator[Client]:
    with Client(api_key="k", base_url=slow_fake.base_url) as client:
        yield client


def check_results(results: list[BatchResult]) -> None:
    assert len(results) == N
    assert len({r.custom_id for r in results}) == N
    types = Counter(r.result.type for r in results)
    assert types == Counter(expected_type(i) for i in range(N))
    assert types["errored"] and types["expired"] and types["canceled"]
    for item in results:
        i = int(item.custom_id.split("-")[1])
        result = item.result
        if isinstance(result, SucceededResult):
            assert item.message is result.message
            assert result.message.text() == f"Echo: {question(i)}"
            assert result.message.usage.service_tier == "batch"
            assert result.message.usage.input_tokens > 0
        elif isinstance(result, ErroredResult):
            assert item.message is None
            wanted = "api_error" if i % 20 == 3 else "overloaded_error"
            assert result.error_type == wanted and result.error.type == "error"
            assert result.error_message
        else:
            assert isinstance(result, ExpiredResult | CanceledResult)


def test_thousand_requests_created_waited_and_streamed(
    slow_fake: FakeClaude, slow_client: Client
) -> None:
    batch = slow_client.create_message_batch(thousand_requests())
    assert batch.processing_status is ProcessingStatus.IN_PROGRESS
    assert batch.request_counts.processing == N and batch.request_counts.total == N
    assert batch.results_url is None and not batch.ended
    sent = slow_fake.last_request
    assert sent.path == "/v1/messages/batches"
    assert "anthropic-beta" not in sent.headers
    assert [r["custom_id"] for r in sent.body["requests"]] == [f"req-{i}" for i in range(N)]
    assert sent.body["requests"][0]["params"] == {
        "model": MODEL,
        "max_tokens": 100,
        "messages": [{"role": "user", "content": question(0)}],
    }
    assert sent.body["requests"][1]["params"]["messages"][0]["content"] == question(1)

    progress: list[MessageBatch] = []
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        slow_fake.advance_time(seconds)

    ended = slow_client.wait_for_message_batch(
        batch.id,
        poll_interval=10,
        max_interval=120,
        on_progress=progress.append,
        sleep=sleep,
        clock=lambda: slow_fake.now,
    )
    assert ended.ended and ended.results_url is not None
    assert slept[:4] == [10, 20, 40, 80] and max(slept) == 120  # doubling, capped
    assert len(progress) == len(slept) + 1 and progress[-1] == ended
    assert all(p.request_counts.processing == N for p in progress[:-1])
    counts = ended.request_counts
    assert counts.processing == 0 and counts.total == N
    assert counts.errored == sum(expected_type(i) == "errored" for i in range(N))

    with slow_client.message_batch_results(batch.id) as results:
        streamed = list(results)
        assert results.request_id is not None and results.count == N
    check_results(streamed)
    assert slow_fake.last_request.headers["accept"] == "application/binary"


@pytest.mark.anyio
async def test_async_thousand_requests(slow_fake: FakeClaude) -> None:
    progress: list[int] = []

    async def on_progress(batch: MessageBatch) -> None:
        progress.append(batch.request_counts.processing)

    async def sleep(seconds: float) -> None:
        slow_fake.advance_time(seconds)

    async with AsyncClient(api_key="k", base_url=slow_fake.base_url) as client:
        batch = await client.create_message_batch(thousand_requests())
        ended = await client.wait_for_message_batch(
            batch.id, poll_interval=60, on_progress=on_progress, sleep=sleep
        )
        assert progress[0] == N and progress[-1] == 0 and ended.ended
        # An ended batch passed in is used as is: no second lookup.
        slow_fake.clear()
        async with client.message_batch_results(ended) as results:
            streamed = [item async for item in results]
        assert [r.path for r in slow_fake.requests] == [f"/v1/messages/batches/{batch.id}/results"]
    check_results(streamed)


def test_plain_iteration_and_early_exit_close_the_response(
    client: Client, fake: FakeClaude
) -> None:
    batch = client.create_message_batch(
        [BatchRequest(f"r{i}", simple_body(f"q{i}")) for i in range(5)]
    )
    assert [r.custom_id for r in client.message_batch_results(batch.id)] == [
        f"r{i}" for i in range(5)
    ]
    results = client.message_batch_results(batch.id)
    first = next(results)
    assert first.custom_id == "r0"
    results.close()
    assert list(results) == []
    with client.message_batch_results(batch.id) as results:
        first = next(iter(results))
    assert first.custom_id == "r0"
    assert list(results) == []


def test_results_before_the_batch_ended(slow_fake: FakeClaude, slow_client: Client) -> None:
    batch = slow_client.create_message_batch([BatchRequest("only", simple_body())])
    slow_fake.clear()
    with pytest.raises(BatchNotEnded) as caught, slow_client.message_batch_results(batch.id):
        pass
    assert caught.value.batch_id == batch.id
    assert caught.value.processing_status == "in_progress"
    assert "wait_for_message_batch" in str(caught.value)
    with pytest.raises(BatchNotEnded):
        list(slow_client.message_batch_results(batch))
    # Only lookups were sent: never the results endpoint.
    assert {r.path for r in slow_fake.requests} == {f"/v1/messages/batches/{batch.id}"}


@pytest.mark.anyio
async def test_async_results_before_the_batch_ended(slow_fake: FakeClaude) -> None:
    async with AsyncClient(api_key="k", base_url=slow_fake.base_url) as client:
        batch = await client.create_message_batch([BatchRequest("only", simple_body())])
        with pytest.raises(BatchNotEnded):
            async with client.message_batch_results(batch.id):
                pass
        with pytest.raises(BatchNotEnded):
            async for _ in client.message_batch_results(batch.id):
                pass


def test_cancel_then_delete(slow_fake: FakeClaude, slow_client: Client) -> None:
    batch = slow_client.create_message_batch(
        [BatchRequest(f"c{i}", simple_body()) for i in range(3)]
    )
    with pytest.raises(InvalidRequestError) as refused:
        slow_client.delete_message_batch(batch.id)
    assert refused.value.status_code == 400 and refused.value.request_id
    canceling = slow_client.cancel_message_batch(batch.id)
    assert canceling.processing_status is ProcessingStatus.CANCELING
    assert canceling.cancel_initiated_at is not None
    cancel_request = slow_fake.last_request
    assert cancel_request.method == "POST" and cancel_request.raw == b""
    assert cancel_request.path == f"/v1/messages/batches/{batch.id}/cancel"
    ended = slow_client.wait_for_message_batch(batch.id, poll_interval=0.01)
    assert ended.request_counts.canceled == 3
    results = list(slow_client.message_batch_results(ended))
    assert all(isinstance(r.result, CanceledResult) for r in results)
    deleted = slow_client.delete_message_batch(batch.id)
    assert deleted == DeletedMessageBatch(id=batch.id)
    assert slow_fake.last_request.method == "DELETE"
    with pytest.raises(NotFoundError) as missing:
        slow_client.get_message_batch(batch.id)
    assert missing.value.error_type == "not_found_error"


@pytest.mark.anyio
async def test_async_cancel_delete_and_list(slow_fake: FakeClaude) -> None:
    async with AsyncClient(api_key="k", base_url=slow_fake.base_url) as client:
        ids = []
        for i in range(4):
            created = await client.create_message_batch([BatchRequest(f"x{i}", simple_body())])
            ids.append(created.id)
        listed = [b.id async for b in client.list_message_batches(limit=3)]
        assert listed == ids[::-1]
        canceling = await client.cancel_message_batch(ids[0])
        assert canceling.processing_status == "canceling"
        assert (await client.get_message_batch(ids[0])).ended
        deleted = await client.delete_message_batch(ids[0])
        assert deleted.type == "message_batch_deleted"
        assert [b.id async for b in client.list_message_batches()] == ids[:0:-1]


def test_list_paginates_newest_first(client: Client, fake: FakeClaude) -> None:
    ids = [client.create_message_batch([BatchRequest(f"b{i}", simple_body())]).id for i in range(7)]
    fake.clear()
    listed = [b.id for b in client.list_message_batches(limit=3)]
    assert listed == ids[::-1]
    queries = [r.query for r in fake.requests]
    assert queries == [
        {"limit": ["3"]},
        {"limit": ["3"], "after_id": [ids[4]]},
        {"limit": ["3"], "after_id": [ids[1]]},
    ]
    assert [b.id for b in client.list_message_batches(after_id=ids[3])] == ids[2::-1]
    backwards = [b.id for b in client.list_message_batches(limit=2, before_id=ids[0])]
    assert sorted(backwards) == sorted(ids[1:])


def test_wait_times_out_with_the_last_batch(slow_fake: FakeClaude, slow_client: Client) -> None:
    batch = slow_client.create_message_batch([BatchRequest("t", simple_body())])
    seen: list[MessageBatch] = []
    with pytest.raises(BatchWaitTimeout) as caught:
        slow_client.wait_for_message_batch(
            batch.id,
            poll_interval=30,
            timeout=100,
            on_progress=seen.append,
            sleep=slow_fake.advance_time,
            clock=lambda: slow_fake.now,
        )
    error = caught.value
    assert error.batch_id == batch.id and error.timeout == 100
    assert isinstance(error.batch, MessageBatch) and not error.batch.ended
    assert isinstance(error, TimeoutError)
    assert len(seen) == 4  # at 0, 30, 90 and 100 s (the last wait shortened to the deadline)


def test_wait_real_time() -> None:
    with (
        FakeClaude(batch_processing_seconds=0.5) as fake,
        Client(api_key="k", base_url=fake.base_url) as real,
    ):
        batch = real.create_message_batch([BatchRequest("t", simple_body())])
        with pytest.raises(BatchWaitTimeout):
            real.wait_for_message_batch(batch.id, poll_interval=0.01, timeout=0.05)
        polls: list[MessageBatch] = []
        ended = real.wait_for_message_batch(
            batch.id, poll_interval=0.02, max_interval=0.05, on_progress=polls.append
        )
        assert ended.ended and len(polls) >= 2 and not polls[0].ended


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"poll_interval": 0}, "poll_interval"),
        ({"max_interval": -1}, "max_interval"),
        ({"poll_interval": 10, "max_interval": 5}, "max_interval"),
        ({"timeout": 0}, "timeout"),
    ],
)
def test_wait_arguments_checked_first(
    client: Client, fake: FakeClaude, kwargs: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidParameter) as caught:
        client.wait_for_message_batch("msgbatch_x", **kwargs)
    assert caught.value.field == field
    assert fake.requests == []


GOOD = simple_body()
GOOD_WIRE = GOOD.to_wire()


def wire(**changes: Any) -> dict[str, Any]:
    return {**GOOD_WIRE, **changes}


def ok(params: Any) -> dict[str, Any]:
    return {"custom_id": "ok", "params": params}


STREAMING = GOOD.model_copy(update={"stream": True})
P0 = "requests[0].params"

INVALID_BATCHES: dict[str, tuple[Any, str]] = {
    "empty": ([], "requests"),
    "duplicate": (
        [BatchRequest("same", GOOD), {"custom_id": "same", "params": GOOD}],
        "requests[1].custom_id",
    ),
    "blank id": ([{"custom_id": "", "params": GOOD}], "requests[0].custom_id"),
    "int id": ([{"custom_id": 7, "params": GOOD}], "requests[0].custom_id"),
    "max_tokens": ([ok(wire(max_tokens=10**7))], f"{P0}.max_tokens"),
    "temperature": ([ok(wire(temperature=3))], f"{P0}.temperature"),
    "no messages": ([ok(wire(messages=[]))], f"{P0}.messages"),
    "stream dict": ([ok(wire(stream=True))], f"{P0}.stream"),
    "stream body": ([ok(STREAMING)], f"{P0}.stream"),
    "no params": ([{"custom_id": "ok"}], P0),
    "extra key": ([{"custom_id": "ok", "params": GOOD, "extra": 1}], "requests[0].extra"),
    "not a mapping": ([BatchRequest("a", GOOD), "not a request"], "requests[1]"),
    "a single mapping": ({"custom_id": "a", "params": GOOD}, "requests"),
}


@pytest.mark.parametrize(
    ("requests", "field"), list(INVALID_BATCHES.values()), ids=list(INVALID_BATCHES)
)
def test_create_is_validated_before_the_network(
    client: Client, fake: FakeClaude, requests: Any, field: str
) -> None:
    with pytest.raises(InvalidParameter) as caught:
        client.create_message_batch(requests)
    assert caught.value.field == field
    assert fake.requests == []


def test_batch_request_checks_itself() -> None:
    with pytest.raises(InvalidParameter) as caught:
        BatchRequest("", GOOD)
    assert caught.value.field == "custom_id"
    # The format is the API's to judge (it states none): only emptiness is refused here.
    assert BatchRequest("any id, even this one!", GOOD).custom_id == "any id, even this one!"
    request = BatchRequest(custom_id="ok", params=GOOD)
    assert request.to_wire() == {"custom_id": "ok", "params": GOOD_WIRE}


def test_too_many_requests_fail_before_the_network(client: Client, fake: FakeClaude) -> None:
    many = ({"custom_id": f"r{i}", "params": GOOD} for i in range(100_001))
    with pytest.raises(InvalidParameter, match="100,000"):
        client.create_message_batch(many)
    wire = GOOD.to_json()
    with pytest.raises(InvalidParameter, match="100,000"):
        client.create_message_batch_from_wire([(f"r{i}", wire) for i in range(100_001)])
    assert fake.requests == []


def test_body_over_256_mb_fails_before_the_network(client: Client, fake: FakeClaude) -> None:
    big = b'{"model":"m","max_tokens":1,"messages":[{"role":"user","content":"%s"}]}' % (
        b"x" * (20 * 1024 * 1024)
    )
    with pytest.raises(InvalidParameter, match="256 MB"):
        client.create_message_batch_from_wire([(f"r{i}", big) for i in range(13)])
    assert fake.requests == []


ONE_HOUR = CacheControl(ttl=CacheTtl.ONE_HOUR)


def test_one_hour_ttl_adds_the_beta_merged_with_others(client: Client, fake: FakeClaude) -> None:
    cached = MessagesRequestBody(
        model=MODEL,
        max_tokens=100,
        messages=[Message.user([TextContentBlock(text="long context", cache_control=ONE_HOUR)])],
    )
    client.create_message_batch(
        [BatchRequest("plain", GOOD), BatchRequest("cached", cached)],
        betas=["some-beta-2026-01-01"],
    )
    assert fake.last_request.headers["anthropic-beta"] == (
        "some-beta-2026-01-01,extended-cache-ttl-2025-04-11"
    )
    client.create_message_batch([BatchRequest("plain", GOOD)])
    assert "anthropic-beta" not in fake.last_request.headers


def test_create_from_wire_splices_the_bytes(client: Client, fake: FakeClaude) -> None:
    # Odd but valid JSON spacing survives: the params are not re-encoded.
    first = (
        b'{"model": "claude-sonnet-5-5", "max_tokens": 50,'
        b' "messages": [{"role": "user", "content": "a"}]}'
    )
    second = MessagesRequestBody(
        model=MODEL,
        max_tokens=50,
        messages=[Message.user([TextContentBlock(text="b", cache_control=ONE_HOUR)])],
    ).to_json()
    batch = client.create_message_batch_from_wire([("w-1", first), ("w-2", second)])
    assert batch.request_counts.processing == 2
    sent = fake.last_request
    assert sent.raw == (
        b'{"requests":[{"custom_id":"w-1","params":' + first + b"},"
        b'{"custom_id":"w-2","params":' + second + b"}]}"
    )
    assert sent.headers["anthropic-beta"] == "extended-cache-ttl-2025-04-11"
    client.create_message_batch_from_wire([("w-1", first)], betas=["b1"])
    assert fake.last_request.headers["anthropic-beta"] == "b1"
    results = {r.custom_id: r for r in client.message_batch_results(batch.id)}
    assert results["w-1"].message is not None and results["w-1"].message.text() == "Echo: a"
    with pytest.raises(InvalidParameter) as caught:
        client.create_message_batch_from_wire([("w-1", first), ("w-1", first)])
    assert caught.value.field == "requests[1].custom_id"
    with pytest.raises(InvalidParameter) as caught:
        client.create_message_batch_from_wire([("", first)])
    assert caught.value.field == "requests[0].custom_id"
    with pytest.raises(InvalidParameter) as caught:
        client.create_message_batch_from_wire([("w1", b"[1, 2]")])
    assert caught.value.field == "requests[0].params"
    with pytest.raises(InvalidParameter):
        client.create_message_batch_from_wire([])


@pytest.mark.anyio
async def test_async_create_from_wire(aclient: AsyncClient, fake: FakeClaude) -> None:
    batch = await aclient.create_message_batch_from_wire([("a-1", GOOD.to_json())], betas=["x"])
    assert fake.last_request.headers["anthropic-beta"] == "x"
    assert json.loads(fake.last_request.raw)["requests"][0]["params"] == GOOD_WIRE
    async with aclient.message_batch_results(batch.id) as results:
        items = [item async for item in results]
    assert [item.custom_id for item in items] == ["a-1"]


def test_bad_batch_ids_fail_at_once(client: Client, fake: FakeClaude) -> None:
    for call in (
        client.get_message_batch,
        client.cancel_message_batch,
        client.delete_message_batch,
        client.message_batch_results,
        client.wait_for_message_batch,
    ):
        with pytest.raises(InvalidParameter) as caught:
            call("")
        assert caught.value.field == "batch_id"
    assert fake.requests == []
    with pytest.raises(NotFoundError):
        client.get_message_batch("msgbatch_nope")
    with pytest.raises(NotFoundError):
        list(client.message_batch_results("msgbatch_nope"))
