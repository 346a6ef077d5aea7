"""Faults found by a fault-injection review, each over real sockets, sync and async:

- a redirect is not followed (the key would go to another host with ``x-api-key``);
- a stream whose opening failed is never sent again by a later read;
- an error body cut short, or a body that does not decode, is a connection failure
  (retried, then ``ConnectionFailed``), never a raw httpx exception;
- a ``retry-after`` date too large for a datetime means backoff, not ``OverflowError``.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator

import pytest
from support import simple_body

from clust import AsyncClient, Client
from clust.messages import errors
from clust.protocol.retry import RetryPolicy
from clust.testing import FakeClaude, Reply

FAST = RetryPolicy(max_retries=2, initial_delay=0.01, max_delay=0.05)
SECRET = "sk-ant-fault-test-SECRET"


def _read_request(conn: socket.socket) -> bool:
    """Read one HTTP request (headers and a Content-Length body); False at EOF."""
    data = b""
    while b"\r\n\r\n" not in data:
        part = conn.recv(65536)
        if not part:
            return False
        data += part
    head, _, rest = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    while len(rest) < length:
        part = conn.recv(65536)
        if not part:
            return False
        rest += part
    return True


@pytest.fixture
def raw_server() -> Iterator[Callable[[bytes], tuple[str, list[int]]]]:
    """A server that answers every request with the same raw bytes, then closes the
    connection; returns its URL and a list that counts the requests."""
    listeners: list[socket.socket] = []

    def start(answer: bytes) -> tuple[str, list[int]]:
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        listeners.append(listener)
        hits: list[int] = []

        def serve() -> None:
            while True:
                try:
                    conn, _ = listener.accept()
                except OSError:
                    return
                with conn:
                    if _read_request(conn):
                        hits.append(1)
                        conn.sendall(answer)

        threading.Thread(target=serve, daemon=True).start()
        return f"http://127.0.0.1:{listener.getsockname()[1]}", hits

    yield start
    for listener in listeners:
        listener.close()


# A 500 announcing a 200-byte JSON body and sending 12 bytes of it before closing.
CUT_ERROR = (
    b"HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/json\r\n"
    b"request-id: req_cut\r\ncontent-length: 200\r\n\r\n"
    b'{"type":"err'
)


@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
def test_an_error_body_cut_short_is_retried_then_connection_failed(
    raw_server: Callable[[bytes], tuple[str, list[int]]], stream: bool
) -> None:
    url, hits = raw_server(CUT_ERROR)
    with (
        Client(api_key=SECRET, base_url=url, retry_policy=FAST) as client,
        pytest.raises(errors.ConnectionFailed) as caught,
    ):
        if stream:
            client.create_a_message_stream(simple_body()).get_final_message()
        else:
            client.create_a_message(simple_body())
    assert len(hits) == 3  # the first attempt and two retries
    assert str(caught.value).startswith("connection failed: ")
    assert str(caught.value) != "connection failed: "


@pytest.mark.anyio
@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
async def test_async_error_body_cut_short_is_retried_then_connection_failed(
    raw_server: Callable[[bytes], tuple[str, list[int]]], stream: bool
) -> None:
    url, hits = raw_server(CUT_ERROR)
    async with AsyncClient(api_key=SECRET, base_url=url, retry_policy=FAST) as client:
        with pytest.raises(errors.ConnectionFailed) as caught:
            if stream:
                await client.create_a_message_stream(simple_body()).get_final_message()
            else:
                await client.create_a_message(simple_body())
    assert len(hits) == 3
    assert str(caught.value) != "connection failed: "  # async httpx errors have no text


def test_a_body_that_does_not_decode_is_a_connection_failure(
    client: Client, fake: FakeClaude
) -> None:
    broken = Reply.raw(b"not gzip at all", headers={"content-encoding": "gzip"})
    fake.enqueue(broken, broken, broken)
    with pytest.raises(errors.ConnectionFailed):
        client.create_a_message(simple_body())
    assert len(fake.requests) == 3


def test_redirects_are_not_followed(fake: FakeClaude) -> None:
    """With ``x-api-key`` httpx would carry the key to whatever host a redirect names."""
    with FakeClaude() as elsewhere:
        target = elsewhere.base_url.replace("127.0.0.1", "localhost") + "/v1/messages"
        fake.enqueue(Reply.raw(b"", status=307, headers={"location": target}))
        with (
            Client(
                api_key=SECRET, base_url=fake.base_url, auth_scheme="x-api-key", max_retries=0
            ) as client,
            pytest.raises(errors.ApiError) as caught,
        ):
            client.create_a_message(simple_body())
        assert caught.value.status_code == 307
        assert elsewhere.requests == []
    assert SECRET not in str(caught.value) and SECRET not in repr(caught.value)


def test_a_stream_that_failed_to_open_is_not_sent_again(client: Client, fake: FakeClaude) -> None:
    fake.enqueue(Reply.error(400, "invalid_request_error", "bad"), Reply.text("never sent"))
    with client.create_a_message_stream(simple_body()) as stream:
        with pytest.raises(errors.InvalidRequestError):
            for _ in stream:
                pass
        with pytest.raises(errors.StreamInterrupted):
            stream.get_final_message()
        assert list(stream) == []
    assert len(fake.requests) == 1


@pytest.mark.anyio
async def test_an_async_stream_that_failed_to_open_is_not_sent_again(
    aclient: AsyncClient, fake: FakeClaude
) -> None:
    fake.enqueue(Reply.error(400, "invalid_request_error", "bad"), Reply.text("never sent"))
    async with aclient.create_a_message_stream(simple_body()) as stream:
        with pytest.raises(errors.InvalidRequestError):
            async for _ in stream:
                pass
        with pytest.raises(errors.StreamInterrupted):
            await stream.get_final_message()
    assert len(fake.requests) == 1


@pytest.mark.parametrize(
    "retry_after",
    [
        "Wed, 21 Oct 9999999999 07:28:00 GMT",
        "Wed, 21 Oct 2015 99999999999999999999:28:00 GMT",
    ],
)
def test_an_overflowing_retry_after_date_means_backoff(
    client: Client, fake: FakeClaude, retry_after: str
) -> None:
    fake.enqueue(
        Reply.error(503, "api_error", "busy", headers={"retry-after": retry_after}),
        Reply.text("ok"),
    )
    assert client.create_a_message(simple_body()).text() == "ok"
    assert len(fake.requests) == 2
