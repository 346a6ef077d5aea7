"""Starting and stopping: thread and async context managers, clean shutdown, the CLI, load."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from clust.testing import FakeClaude, Reply

HEADERS = {"x-api-key": "k", "anthropic-version": "1"}
BODY = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}


def open_fds() -> int | None:
    fd_dir = Path("/proc/self/fd")
    return len(list(fd_dir.iterdir())) if fd_dir.exists() else None


def test_base_url_and_port() -> None:
    with FakeClaude() as fake:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", fake.base_url)
        assert fake.base_url.endswith(f":{fake.port}")
        assert httpx.post(f"{fake.base_url}/v1/messages", json=BODY, headers=HEADERS).is_success


def test_explicit_start_and_close() -> None:
    fake = FakeClaude()
    with pytest.raises(RuntimeError):
        _ = fake.base_url
    assert fake.start() is fake
    assert fake.start() is fake  # idempotent
    url = fake.base_url
    fake.close()
    fake.close()  # idempotent
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/v1/models", headers=HEADERS)
    with pytest.raises(RuntimeError):
        fake.start()


def test_fixed_port() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with FakeClaude(port=port) as fake:
        assert fake.port == port


def test_clean_shutdown_with_idle_keep_alive_and_a_stream_in_flight() -> None:
    threads_before = threading.active_count()
    fds_before = open_fds()
    fake = FakeClaude().start()
    client = httpx.Client(base_url=fake.base_url, headers=HEADERS, verify=False)
    for _ in range(3):
        assert client.post("/v1/messages", json=BODY).is_success  # idle keep-alive afterwards
    fake.enqueue(Reply.text("a slow answer that will not finish").slow(1.0))
    outcome: list[BaseException | None] = []

    def stream() -> None:
        try:
            with httpx.Client(base_url=fake.base_url, headers=HEADERS, verify=False) as other:
                other.post("/v1/messages", json={**BODY, "stream": True})
            outcome.append(None)
        except httpx.HTTPError as error:
            outcome.append(error)

    streamer = threading.Thread(target=stream)
    streamer.start()
    deadline = time.monotonic() + 5
    while len(fake.requests) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.perf_counter()
    fake.close()
    assert time.perf_counter() - started < 1.0
    streamer.join(5)
    assert isinstance(outcome[0], httpx.HTTPError)  # the stream was cut
    client.close()
    assert threading.active_count() == threads_before
    if fds_before is not None:
        assert open_fds() == fds_before


def test_many_keep_alive_requests_are_fast(fake: FakeClaude) -> None:
    payload = json.dumps(BODY).encode()
    request = (
        b"POST /v1/messages HTTP/1.1\r\nhost: x\r\nx-api-key: k\r\nanthropic-version: 1\r\n"
        b"content-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (len(payload), payload)
    )
    count = 1000
    with socket.create_connection(("127.0.0.1", fake.port)) as conn:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        reader = conn.makefile("rb")
        started = time.perf_counter()
        for _ in range(count):
            conn.sendall(request)
            assert reader.readline().startswith(b"HTTP/1.1 200")
            length = 0
            while (line := reader.readline()) != b"\r\n":
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            reader.read(length)
        elapsed = time.perf_counter() - started
    assert elapsed < 5, f"{count / elapsed:.0f} requests/s"


def test_concurrent_clients(fake: FakeClaude) -> None:
    ids: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        with httpx.Client(base_url=fake.base_url, headers=HEADERS, verify=False) as client:
            for _ in range(20):
                message = client.post("/v1/messages", json=BODY).json()
                with lock:
                    ids.append(message["id"])

    workers = [threading.Thread(target=worker) for _ in range(8)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert len(set(ids)) == 160


@pytest.mark.anyio
async def test_async_context_manager() -> None:
    async with FakeClaude() as fake:
        fake.enqueue(Reply.text("async hello"))
        async with httpx.AsyncClient(
            base_url=fake.base_url, headers=HEADERS, verify=False
        ) as client:
            message = (await client.post("/v1/messages", json=BODY)).json()
            assert message["content"][0]["text"] == "async hello"
            async with client.stream("POST", "/v1/messages", json={**BODY, "stream": True}) as r:
                body = (await r.aread()).decode()
            assert body.rstrip().endswith('data: {"type":"message_stop"}')


@pytest.mark.skipif(os.name != "posix", reason="stops the server with SIGINT")
def test_command_line() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "clust.testing", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", base_url)
        response = httpx.post(f"{base_url}/v1/messages", json=BODY, headers=HEADERS)
        assert response.json()["content"][0]["text"] == "Echo: hi"
        process.send_signal(signal.SIGINT)
        assert process.wait(10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def test_command_line_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "clust.testing", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "--port" in result.stdout
