"""Batch results are streamed in constant memory: a results body of many MB is decoded
with a traced peak far below its size.

FakeClaude runs in a child process here, so the traced allocations are the client's
alone (an in-process fake would build the whole results body in this process).
"""

from __future__ import annotations

import subprocess
import sys
import tracemalloc
from collections.abc import Iterator

import pytest

from clust import AsyncClient, Client
from clust.messages import BatchRequest, Message, MessagesRequestBody

REQUESTS = 400
TEXT_BYTES = 50_000  # each reply repeats its ~50 KB prompt: ~20 MB of results in all

# FakeClaude in a child process, answering every batch request with its whole prompt
# (the default echo is cut short), until its stdin closes.
CHILD = """
import sys
from clust.testing import FakeClaude, Reply
with FakeClaude() as fake:
    fake.set_batch_resolver(lambda _id, params: Reply.text(params["messages"][-1]["content"]))
    print(fake.base_url, flush=True)
    sys.stdin.read()
"""


@pytest.fixture(scope="module")
def remote_fake() -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        yield proc.stdout.readline().strip()
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=10)


def requests() -> list[BatchRequest]:
    return [
        BatchRequest(
            f"big-{i}",
            MessagesRequestBody(
                model="claude-sonnet-5-5",
                max_tokens=16_384,
                messages=[Message.user(f"{i:04d}" + "x" * TEXT_BYTES)],
            ),
        )
        for i in range(REQUESTS)
    ]


def test_sync_results_stream_in_constant_memory(remote_fake: str) -> None:
    with Client(api_key="k", base_url=remote_fake) as client:
        batch = client.create_message_batch(requests())
        ended = client.wait_for_message_batch(batch.id, poll_interval=0.01)
        seen = 0
        text_bytes = 0
        tracemalloc.start()
        try:
            with client.message_batch_results(ended) as results:
                for item in results:
                    assert item.message is not None
                    text_bytes += len(item.message.text())
                    seen += 1
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert seen == REQUESTS
    assert text_bytes > REQUESTS * TEXT_BYTES  # ~20 MB of reply text went through
    print(f"\nresults text {text_bytes / 1e6:.1f} MB, traced peak {peak / 1e6:.2f} MB")
    assert peak < text_bytes / 10


@pytest.mark.anyio
async def test_async_results_stream_in_constant_memory(remote_fake: str) -> None:
    async with AsyncClient(api_key="k", base_url=remote_fake) as client:
        batch = await client.create_message_batch(requests())
        ended = await client.wait_for_message_batch(batch.id, poll_interval=0.01)
        seen = 0
        text_bytes = 0
        tracemalloc.start()
        try:
            async with client.message_batch_results(ended) as results:
                async for item in results:
                    assert item.message is not None
                    text_bytes += len(item.message.text())
                    seen += 1
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert seen == REQUESTS
    print(f"\nresults text {text_bytes / 1e6:.1f} MB, traced peak {peak / 1e6:.2f} MB")
    assert peak < text_bytes / 10
