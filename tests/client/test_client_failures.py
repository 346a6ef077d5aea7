"""Errors, retries, timeouts and undecodable replies, over real sockets against FakeClaude."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
from support import simple_body

from clust import AsyncClient, Client
from clust.messages import errors
from clust.protocol.retry import RetryPolicy
from clust.testing import FakeClaude, Reply

STATUS_CASES = [
    (400, "invalid_request_error", errors.InvalidRequestError, False),
    (401, "authentication_error", errors.AuthenticationError, False),
    (402, "billing_error", errors.BillingError, False),
    (403, "permission_error", errors.PermissionDeniedError, False),
    (404, "not_found_error", errors.NotFoundError, False),
    (408, "request_timeout", errors.RequestTimeoutError, True),
    (409, "conflict_error", errors.ConflictError, True),
    (413, "request_too_large", errors.RequestTooLargeError, False),
    (422, "unprocessable", errors.ApiError, False),
    (429, "rate_limit_error", errors.RateLimitError, True),
    (500, "api_error", errors.InternalServerError, True),
    (502, "api_error", errors.InternalServerError, True),
    (503, "api_error", errors.ServiceUnavailableError, True),
    (504, "timeout_error", errors.GatewayTimeoutError, True),
    (529, "overloaded_error", errors.OverloadedError, True),
]


@pytest.mark.parametrize(("status", "error_type", "cls", "retried"), STATUS_CASES)
def test_status_raises_typed_error_after_the_right_attempts(
    client: Client,
    fake: FakeClaude,
    status: int,
    error_type: str,
    cls: type[errors.ApiError],
    retried: bool,
) -> None:
    for _ in range(3):
        fake.enqueue(Reply.error(status, error_type, f"{error_type} happened"))
    with pytest.raises(cls) as caught:
        client.create_a_message(simple_body())
    error = caught.value
    assert type(error) is cls
    assert error.status_code == status
    assert error.error_type == error_type
    assert error.message == f"{error_type} happened"
    assert error.request_id is not None and error.request_id.startswith("req_")
    assert len(fake.requests) == (3 if retried else 1)


@pytest.mark.parametrize(("status", "error_type", "cls", "retried"), STATUS_CASES[::3])
@pytest.mark.anyio
async def test_async_status_errors(
    aclient: AsyncClient,
    fake: FakeClaude,
    status: int,
    error_type: str,
    cls: type[errors.ApiError],
    retried: bool,
) -> None:
    for _ in range(3):
        fake.enqueue(Reply.error(status, error_type, "nope"))
    with pytest.raises(cls):
        await aclient.create_a_message(simple_body())
    assert len(fake.requests) == (3 if retried else 1)


def test_retry_then_success(client: Client, fake: FakeClaude) -> None:
    fake.enqueue(Reply.error(529, "overloaded_error", "Overloaded"), Reply.text("ok"))
    assert client.create_a_message(simple_body()).text() == "ok"
    assert len(fake.requests) == 2


def test_retry_after_ms_is_honoured(client: Client, fake: FakeClaude) -> None:
    fake.enqueue(
        Reply.error(429, "rate_limit_error", "slow down", headers={"retry-after-ms": "300"}),
        Reply.text("ok"),
    )
    start = time.monotonic()
    client.create_a_message(simple_body())
    assert time.monotonic() - start >= 0.3


def test_retry_after_seconds_is_honoured(client: Client, fake: FakeClaude) -> None:
    fake.enqueue(
        Reply.error(503, "api_error", "busy", headers={"retry-after": "0.25"}), Reply.text("ok")
    )
    start = time.monotonic()
    client.create_a_message(simple_body())
    assert time.monotonic() - start >= 0.25


def test_backoff_delays_grow(fake: FakeClaude) -> None:
    policy = RetryPolicy(max_retries=2, initial_delay=0.1, max_delay=1.0)
    for _ in range(3):
        fake.enqueue(Reply.error(500, "api_error", "boom"))
    with Client(api_key="k", base_url=fake.base_url, retry_policy=policy) as client:
        start = time.monotonic()
        with pytest.raises(errors.InternalServerError):
            client.create_a_message(simple_body())
        elapsed = time.monotonic() - start
    # 0.1 + 0.2 seconds, each shortened by at most 25 %.
    assert 0.075 + 0.15 <= elapsed < 1.5


def test_server_wait_over_ceiling_raises_at_once(client: Client, fake: FakeClaude) -> None:
    fake.enqueue(
        Reply.error(429, "rate_limit_error", "come back tomorrow", headers={"retry-after": "86400"})
    )
    start = time.monotonic()
    with pytest.raises(errors.RateLimitError) as caught:
        client.create_a_message(simple_body())
    assert time.monotonic() - start < 1
    assert caught.value.retry_after == 86400
    assert len(fake.requests) == 1


def test_should_retry_header_overrides(client: Client, fake: FakeClaude) -> None:
    fake.enqueue(
        Reply.error(400, "invalid_request_error", "flaky", headers={"x-should-retry": "true"}),
        Reply.text("ok"),
    )
    assert client.create_a_message(simple_body()).text() == "ok"
    fake.clear()
    fake.enqueue(Reply.error(529, "overloaded_error", "final", headers={"x-should-retry": "false"}))
    with pytest.raises(errors.OverloadedError):
        client.create_a_message(simple_body())
    assert len(fake.requests) == 1


def test_per_call_max_retries(client: Client, fake: FakeClaude) -> None:
    for _ in range(2):
        fake.enqueue(Reply.error(529, "overloaded_error", "Overloaded"))
    with pytest.raises(errors.OverloadedError):
        client.create_a_message(simple_body(), max_retries=0)
    assert len(fake.requests) == 1


def test_error_details_code(client: Client, fake: FakeClaude) -> None:
    fake.enqueue(
        Reply.error(
            400, "invalid_request_error", "taken", details={"error_code": "tool_name_conflict"}
        )
    )
    with pytest.raises(errors.InvalidRequestError) as caught:
        client.create_a_message(simple_body())
    assert caught.value.error_code == "tool_name_conflict"


def test_fake_validation_error_comes_back_typed(client: Client, fake: FakeClaude) -> None:
    body = simple_body().model_copy(update={"max_tokens": -1})
    with pytest.raises(errors.InvalidRequestError, match="max_tokens"):
        client.create_a_message(body)


def test_default_headers_cannot_replace_credentials(fake: FakeClaude) -> None:
    with Client(
        api_key="k", base_url=fake.base_url, default_headers={"Authorization": ""}
    ) as client:
        client.create_a_message(simple_body())  # the credentials header always wins
    assert fake.last_request.headers["authorization"] == "Bearer k"


def test_malformed_json_reply(client: Client, fake: FakeClaude) -> None:
    fake.enqueue(Reply.malformed())
    with pytest.raises(errors.ResponseDecodeError) as caught:
        client.create_a_message(simple_body())
    assert caught.value.request_id is not None


def test_event_stream_reply_to_non_stream_request(client: Client, fake: FakeClaude) -> None:
    fake.enqueue(Reply.raw("event: ping\ndata: {}\n\n", content_type="text/event-stream"))
    with pytest.raises(errors.ResponseDecodeError, match="event stream"):
        client.create_a_message(simple_body())


def test_dropped_connection_is_retried_then_raised(client: Client, fake: FakeClaude) -> None:
    for _ in range(3):
        fake.enqueue(Reply.disconnect())
    with pytest.raises(errors.ConnectionFailed):
        client.create_a_message(simple_body())
    assert len(fake.requests) == 3


def test_dropped_connection_then_success(client: Client, fake: FakeClaude) -> None:
    fake.enqueue(Reply.disconnect(), Reply.text("second time lucky"))
    assert client.create_a_message(simple_body()).text() == "second time lucky"


def test_connection_refused(unused_port: int) -> None:
    policy = RetryPolicy(max_retries=1, initial_delay=0.01)
    with (
        Client(
            api_key="k", base_url=f"http://127.0.0.1:{unused_port}", retry_policy=policy
        ) as client,
        pytest.raises(errors.ConnectionFailed),
    ):
        client.create_a_message(simple_body())


@pytest.mark.anyio
async def test_async_connection_refused(unused_port: int) -> None:
    async with AsyncClient(
        api_key="k", base_url=f"http://127.0.0.1:{unused_port}", max_retries=0
    ) as client:
        with pytest.raises(errors.ConnectionFailed):
            await client.create_a_message(simple_body())


def test_timeout_is_retried_then_raised(silent_server: str) -> None:
    policy = RetryPolicy(max_retries=1, initial_delay=0.01)
    with Client(api_key="k", base_url=silent_server, timeout=0.2, retry_policy=policy) as client:
        start = time.monotonic()
        with pytest.raises(errors.RequestTimedOut):
            client.create_a_message(simple_body())
        assert 0.35 < time.monotonic() - start < 3


@pytest.mark.anyio
async def test_async_timeout(silent_server: str) -> None:
    async with AsyncClient(
        api_key="k", base_url=silent_server, timeout=0.2, max_retries=0
    ) as client:
        with pytest.raises(errors.RequestTimedOut):
            await client.create_a_message(simple_body())


def test_slow_reply_within_per_call_timeout(client: Client, fake: FakeClaude) -> None:
    fake.enqueue(Reply.text("late").delayed(0.5))
    with pytest.raises(errors.RequestTimedOut):
        client.create_a_message(simple_body(), timeout=0.1, max_retries=0)


@pytest.fixture
def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A server that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.05)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            accepted.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        listener.close()
