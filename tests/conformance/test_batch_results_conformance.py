"""Batch results conformance: clust and the official SDK read the same JSONL the same way.

Two sources of JSONL:

- FakeClaude, with a resolver giving every outcome (text, tool use, thinking, citations,
  errors of several types, canceled, expired) to a 60-request batch;
- the wire examples (``tests/fixtures/api-examples/*.jsonl``, and ``shared/api/examples``
  beside the repository when present), served by a tiny local server in 7-byte chunks.

For every line, in order, clust's ``BatchResult.to_wire()`` and the SDK's
``model_dump(mode="json", exclude_unset=True)`` must both equal the line's JSON, and the
fields an app reads (custom_id, result type, message id/content/usage, error type/message)
must agree attribute by attribute.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest

from clust import AsyncClient, Client
from clust.messages import (
    BatchRequest,
    BatchResult,
    ErroredResult,
    Message,
    MessagesRequestBody,
    SucceededResult,
)
from clust.testing import FakeClaude, Reply

HERE = Path(__file__).resolve()
EXAMPLE_DIRS = [
    HERE.parents[1] / "fixtures" / "api-examples",
    HERE.parents[3] / "shared/api/examples",
]
# By file name: the repository's copy and the reference's own, when both exist.
EXAMPLES_BY_NAME = {
    path.name: path
    for folder in EXAMPLE_DIRS
    if folder.is_dir()
    for path in sorted(folder.glob("*.jsonl"))
}
EXAMPLE_FILES = sorted(EXAMPLES_BY_NAME.items())
BATCH_ID = "msgbatch_conformance_01"
N = 60

CITATION = {
    "type": "char_location",
    "cited_text": "The grass is green.",
    "document_index": 0,
    "document_title": "Facts",
    "start_char_index": 0,
    "end_char_index": 19,
}


def outcome(custom_id: str, params: object) -> str | Reply | None:
    i = int(custom_id.rsplit("-", 1)[1])
    match i % 10:
        case 0:
            return Reply.tool_use("get_weather", {"city": "Zürich", "n": [1, 2.5]}, id=f"tu_{i}")
        case 1:
            return Reply.thinking("Hmm, ünïcode 🎉", signature="sig==", then=Reply.text("ok"))
        case 2:
            return Reply(content=({"type": "text", "text": "green", "citations": [CITATION]},))
        case 3:
            return "errored"
        case 4:
            return Reply.error(529, "overloaded_error", "Overloaded")
        case 5:
            return Reply.error(400, "invalid_request_error", 'bad "quote" é')
        case 6:
            return "canceled"
        case 7:
            return "expired"
        case _:
            return None  # the echo


def check_same(ours: list[BatchResult], theirs: list[Any], raw: list[dict[str, Any]]) -> None:
    assert len(ours) == len(theirs) == len(raw)
    for mine, sdk, line in zip(ours, theirs, raw, strict=True):
        assert mine.to_wire() == line
        assert sdk.model_dump(mode="json", exclude_unset=True) == line
        assert mine.custom_id == sdk.custom_id
        assert mine.result.type == sdk.result.type
        result = mine.result
        if isinstance(result, SucceededResult):
            message, sdk_message = result.message, sdk.result.message
            assert message.id == sdk_message.id and message.model == sdk_message.model
            assert message.stop_reason == sdk_message.stop_reason
            assert [b.to_wire() for b in message.content] == [
                b.model_dump(mode="json", exclude_unset=True) for b in sdk_message.content
            ]
            assert message.usage.input_tokens == sdk_message.usage.input_tokens
            assert message.usage.output_tokens == sdk_message.usage.output_tokens
            assert message.usage.service_tier == sdk_message.usage.service_tier == "batch"
        elif isinstance(result, ErroredResult):
            assert result.error_type == sdk.result.error.error.type
            assert result.error_message == sdk.result.error.error.message
            assert result.error.request_id == sdk.result.error.request_id


# --- FakeClaude ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ended_batch() -> Iterator[tuple[FakeClaude, str, list[dict[str, Any]]]]:
    with FakeClaude() as fake, Client(api_key="k", base_url=fake.base_url) as client:
        fake.set_batch_resolver(outcome)
        body = MessagesRequestBody(
            model="claude-sonnet-5-5", max_tokens=200, messages=[Message.user("Hi ☃")]
        )
        batch = client.create_message_batch([BatchRequest(f"req-{i}", body) for i in range(N)])
        ended = client.wait_for_message_batch(batch.id, poll_interval=0.01)
        assert ended.request_counts.total == N
        raw_body = httpx.get(
            ended.results_url or "", headers={"authorization": "Bearer k", "anthropic-version": "1"}
        ).content
        raw = [json.loads(line) for line in raw_body.splitlines()]
        yield fake, batch.id, raw


def test_every_outcome_is_read_alike(
    ended_batch: tuple[FakeClaude, str, list[dict[str, Any]]],
) -> None:
    fake, batch_id, raw = ended_batch
    with (
        Client(api_key="k", base_url=fake.base_url) as client,
        client.message_batch_results(batch_id) as results,
    ):
        ours = list(results)
    sdk = anthropic.Anthropic(base_url=fake.base_url, api_key="k")
    theirs = list(sdk.messages.batches.results(batch_id))
    assert {r.result.type for r in ours} == {"succeeded", "errored", "canceled", "expired"}
    check_same(ours, theirs, raw)


@pytest.mark.anyio
async def test_async_readers_agree(
    ended_batch: tuple[FakeClaude, str, list[dict[str, Any]]], anyio_backend: str
) -> None:
    fake, batch_id, raw = ended_batch
    async with (
        AsyncClient(api_key="k", base_url=fake.base_url) as client,
        client.message_batch_results(batch_id) as results,
    ):
        ours = [item async for item in results]
    if anyio_backend == "asyncio":  # the SDK's async client runs on asyncio only
        sdk = anthropic.AsyncAnthropic(base_url=fake.base_url, api_key="k")
        theirs = [item async for item in await sdk.messages.batches.results(batch_id)]
        check_same(ours, theirs, raw)
    else:
        assert [r.to_wire() for r in ours] == raw


# --- the wire examples, from a tiny server ------------------------------------------------


class _ExampleServer(ThreadingHTTPServer):
    daemon_threads = True
    body = b""
    chunk = 7


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _ExampleServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        base = f"http://127.0.0.1:{self.server.server_address[1]}"
        path = f"/v1/messages/batches/{BATCH_ID}"
        if self.path == path:
            batch = json.loads((EXAMPLE_DIRS[0] / "batch-object.json").read_text())["ended"]
            payload = json.dumps({**batch, "id": BATCH_ID, "results_url": base + path + "/results"})
            data = payload.encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        elif self.path == path + "/results":
            self.send_response(200)
            self.send_header("content-type", "application/binary")
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            body, step = self.server.body, self.server.chunk
            for start in range(0, len(body), step):
                piece = body[start : start + step]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_error(404)


@pytest.fixture(scope="module")
def example_server() -> Iterator[_ExampleServer]:
    server = _ExampleServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_examples_exist() -> None:
    assert EXAMPLE_FILES, "no *.jsonl wire example found"


@pytest.mark.parametrize(("name", "path"), EXAMPLE_FILES, ids=[name for name, _ in EXAMPLE_FILES])
@pytest.mark.parametrize("chunk", [7, 4096])
def test_wire_examples_are_read_alike(
    example_server: _ExampleServer, name: str, path: Path, chunk: int
) -> None:
    example_server.body = path.read_bytes()
    example_server.chunk = chunk
    raw = [json.loads(line) for line in example_server.body.splitlines() if line.strip()]
    url = f"http://127.0.0.1:{example_server.server_address[1]}"
    with Client(api_key="k", base_url=url) as client:
        ours = list(client.message_batch_results(BATCH_ID))
    # Keep the SDK client referenced (and close it): collected mid-read, it closes the
    # connection the results are still streaming on.
    with anthropic.Anthropic(base_url=url, api_key="k") as sdk:
        theirs = list(sdk.messages.batches.results(BATCH_ID))
    check_same(ours, theirs, raw)
    assert {r.result.type for r in ours} >= {"succeeded", "errored"}
