"""The async client's default connection pool: several small httpx pools (shards).

Over real sockets against FakeClaude: requests go to the least busy shard (a lone
caller keeps one connection), a request counts as in flight until its response is
closed (also when it fails or is cancelled), many concurrent requests all get a
connection at once, and closing the client closes every shard's connections.
Connections are counted in the kernel's table (``/proc/net/tcp``), so Linux only.
"""

from __future__ import annotations

import socket
import sys
import threading
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from support import simple_body

from clust import AsyncClient
from clust.client._shards import ShardedAsyncTransport, split_limits
from clust.testing import FakeClaude, Reply

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc/net/tcp")

HEADERS = {"x-api-key": "test-key", "anthropic-version": "2023-06-01"}
BODY: dict[str, Any] = {
    "model": "claude-sonnet-5-5",
    "max_tokens": 16,
    "messages": [{"role": "user", "content": "hi"}],
}
ESTABLISHED = "01"


def open_connections_to(port: int) -> int:
    """Established TCP connections whose remote end is ``port`` (the client sides)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        path = Path(table)
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            remote, state = fields[2], fields[3]
            if state == ESTABLISHED and int(remote.rsplit(":", 1)[1], 16) == port:
                count += 1
    return count


def test_split_limits_share_the_totals_out() -> None:
    shares = split_limits(httpx.Limits(max_connections=1000, max_keepalive_connections=100), 32)
    assert len(shares) == 32
    assert sum(s.max_connections or 0 for s in shares) == 1000
    assert sum(s.max_keepalive_connections or 0 for s in shares) == 100
    assert {s.max_connections for s in shares} == {31, 32}
    assert {s.max_keepalive_connections for s in shares} == {3, 4}
    assert {s.keepalive_expiry for s in shares} == {5.0}
    unlimited = split_limits(httpx.Limits(max_connections=None, keepalive_expiry=1.0), 3)
    assert [(s.max_connections, s.max_keepalive_connections) for s in unlimited] == [
        (None, None)
    ] * 3
    assert {s.keepalive_expiry for s in unlimited} == {1.0}
    with pytest.raises(ValueError, match="shards=0"):
        split_limits(httpx.Limits(), 0)


@pytest.mark.anyio
async def test_a_lone_caller_reuses_one_connection(fake: FakeClaude) -> None:
    async with AsyncClient(api_key="test-key", base_url=fake.base_url) as client:
        for _ in range(5):
            await client.create_a_message(simple_body())
        assert open_connections_to(fake.port) == 1


@pytest.mark.anyio
async def test_concurrent_requests_all_get_a_connection_and_close_closes_every_shard(
    fake: FakeClaude,
) -> None:
    together = 60  # more than one shard's share of connections (1000 / 32)
    # No request is answered before all of them hold a connection at the same time
    # (FakeClaude calls its responder under a lock: the others wait on their sockets).
    all_connected = threading.Event()

    def answer(_request: Any) -> Reply:
        assert all_connected.wait(timeout=10)
        return Reply.echo()

    fake.set_responder(answer)
    client = AsyncClient(api_key="test-key", base_url=fake.base_url)
    replies: list[str] = []

    async def one(index: int) -> None:
        reply = await client.create_a_message(simple_body(f"number {index}"))
        replies.append(reply.text())

    async def watch() -> None:
        with anyio.fail_after(10):
            while open_connections_to(fake.port) < together:
                await anyio.sleep(0.02)
        all_connected.set()

    try:
        async with anyio.create_task_group() as group:
            group.start_soon(watch)
            for index in range(together):
                group.start_soon(one, index)
        assert sorted(replies) == sorted(f"Echo: number {i}" for i in range(together))
        assert 0 < open_connections_to(fake.port) <= together
    finally:
        all_connected.set()
        await client.close()
    assert open_connections_to(fake.port) == 0


def _request(http: httpx.AsyncClient) -> httpx.Request:
    return http.build_request("POST", "/v1/messages", json=BODY, headers=HEADERS)


@pytest.mark.anyio
async def test_the_least_busy_shard_gets_the_request_until_its_response_is_closed(
    fake: FakeClaude,
) -> None:
    transport = ShardedAsyncTransport(httpx.Limits(max_connections=8), shards=4)
    async with httpx.AsyncClient(base_url=fake.base_url, transport=transport) as http:
        held = [await http.send(_request(http), stream=True) for _ in range(6)]
        assert transport.in_flight == [2, 2, 1, 1]
        await held[1].aclose()  # its shard (1) is now among the least busy, first of them
        assert transport.in_flight == [2, 1, 1, 1]
        held.append(await http.send(_request(http), stream=True))
        assert transport.in_flight == [2, 2, 1, 1]
        await held[1].aclose()  # closing twice releases once
        assert transport.in_flight == [2, 2, 1, 1]
        read = await http.send(_request(http))  # read whole, so closed at once
        assert read.json()["type"] == "message"
        assert transport.in_flight == [2, 2, 1, 1]
        for response in held:
            await response.aclose()
        assert transport.in_flight == [0, 0, 0, 0]
    assert open_connections_to(fake.port) == 0


@pytest.mark.anyio
async def test_a_failed_or_cancelled_request_is_no_longer_in_flight(fake: FakeClaude) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        refused_url = f"http://127.0.0.1:{unused.getsockname()[1]}"
    transport = ShardedAsyncTransport(httpx.Limits(max_connections=8), shards=2)
    async with httpx.AsyncClient(transport=transport) as http:
        with pytest.raises(httpx.ConnectError):
            await http.post(f"{refused_url}/v1/messages", json=BODY, headers=HEADERS)
        assert transport.in_flight == [0, 0]

        fake.enqueue(Reply(kind="echo", response_delay=5.0))
        with anyio.move_on_after(0.3) as scope:
            await http.post(f"{fake.base_url}/v1/messages", json=BODY, headers=HEADERS)
        assert scope.cancelled_caught
        assert transport.in_flight == [0, 0]
