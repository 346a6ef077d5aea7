"""Client CPU to consume a long SSE stream into a final message.

Run: ``python -m benchmarks.bench_streaming [DELTAS]`` (default 20,000 text deltas).

Compared in the same run, against a canned-stream server in another process:
raw httpx ``iter_lines`` + ``json.loads`` of every data line (the floor), the
official SDK's ``messages.stream(...).get_final_message()``, and clust's sync and
async ``create_a_message_stream(...).get_final_message()``. Two deliveries: the
body in one piece, and in 256-byte HTTP chunks. Then peak RSS of a child process
consuming 20,000 vs 200,000 deltas, to show memory stays flat.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

from benchmarks._harness import async_cpu_per_call, cpu_per_call, fast_server, print_table
from clust import AsyncClient, Client
from clust.messages import Message, MessagesRequestBody

MODEL = "claude-sonnet-5-5"
HEADERS = {
    "authorization": "Bearer k",
    "anthropic-version": "2026-10-21",
    "content-type": "application/json",
    "accept": "application/json",
}
SMALL_CHUNK = 256


def make_stream(deltas: int) -> bytes:
    """A text reply of ``deltas`` text_delta events, framed as the API frames it."""

    def event(name: str, data: dict[str, object]) -> str:
        return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"

    parts = [
        event(
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": "msg_bench",
                    "type": "message",
                    "role": "assistant",
                    "model": MODEL,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {"input_tokens": 12, "output_tokens": 1},
                },
            },
        ),
        event(
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
    ]
    words = ["Hello", " world", ", this", " is a", " streamed", " reply", " é☃", " ok."]
    for i in range(deltas):
        parts.append(
            event(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": words[i % len(words)]},
                },
            )
        )
        if i % 5000 == 0:
            parts.append(event("ping", {"type": "ping"}))
    parts += [
        event("content_block_stop", {"type": "content_block_stop", "index": 0}),
        event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": deltas},
            },
        ),
        event("message_stop", {"type": "message_stop"}),
    ]
    return "".join(parts).encode()


def body() -> MessagesRequestBody:
    return MessagesRequestBody(model=MODEL, max_tokens=1024, messages=[Message.user("Hi")])


def raw_floor(url: str):  # type: ignore[no-untyped-def]
    http = httpx.Client()

    def run(n: int) -> None:
        for _ in range(n):
            payload = {
                "model": MODEL,
                "max_tokens": 1024,
                "stream": True,
                "messages": [{"role": "user", "content": "Hi"}],
            }
            with http.stream(
                "POST", url + "/v1/messages", headers=HEADERS, content=json.dumps(payload).encode()
            ) as response:
                for line in response.iter_lines():
                    if line.startswith("data:"):
                        json.loads(line[5:])

    return run


def sdk_sync(url: str):  # type: ignore[no-untyped-def]
    import anthropic  # here, so that the RSS child measures clust alone

    sdk = anthropic.Anthropic(api_key="k", base_url=url, max_retries=0)

    def run(n: int) -> None:
        for _ in range(n):
            with sdk.messages.stream(
                model=MODEL, max_tokens=1024, messages=[{"role": "user", "content": "Hi"}]
            ) as stream:
                stream.get_final_message()

    return run


def clust_sync(url: str):  # type: ignore[no-untyped-def]
    client = Client(api_key="k", base_url=url, max_retries=0)

    def run(n: int) -> None:
        for _ in range(n):
            with client.create_a_message_stream(body()) as stream:
                stream.get_final_message()

    return run


def clust_async(url: str):  # type: ignore[no-untyped-def]
    client = AsyncClient(api_key="k", base_url=url, max_retries=0)

    async def run(n: int) -> None:
        for _ in range(n):
            async with client.create_a_message_stream(body()) as stream:
                await stream.get_final_message()

    return run


def raw_floor_async(url: str):  # type: ignore[no-untyped-def]
    http = httpx.AsyncClient()

    async def run(n: int) -> None:
        for _ in range(n):
            payload = {
                "model": MODEL,
                "max_tokens": 1024,
                "stream": True,
                "messages": [{"role": "user", "content": "Hi"}],
            }
            async with http.stream(
                "POST", url + "/v1/messages", headers=HEADERS, content=json.dumps(payload).encode()
            ) as response:
                async for line in response.aiter_lines():
                    if line.startswith("data:"):
                        json.loads(line[5:])

    return run


def compare(deltas: int, stream_file: Path, chunk: int, label: str, runs: int) -> None:
    events = deltas + 7
    with fast_server(stream_file, chunk) as url:
        rows = [
            ("raw httpx iter_lines + json (floor)", cpu_per_call(raw_floor(url), runs)),
            ("raw httpx async (async floor)", async_cpu_per_call(raw_floor_async(url), runs)),
            ("anthropic SDK get_final_message", cpu_per_call(sdk_sync(url), runs)),
            ("clust Client", cpu_per_call(clust_sync(url), runs)),
            ("clust AsyncClient", async_cpu_per_call(clust_async(url), runs)),
        ]
    per_event = [(name, seconds / events) for name, seconds in rows]
    print_table(
        f"{deltas:,} deltas, {label}: CPU per event",
        per_event,
        "raw httpx iter_lines + json (floor)",
        "event",
    )
    floor_async = dict(per_event)["raw httpx async (async floor)"]
    ratio = dict(per_event)["clust AsyncClient"] / floor_async
    print(f"clust AsyncClient vs async floor: {ratio:.2f}x")


def peak_rss_child(deltas: int) -> float:
    """Peak RSS (MB) of a fresh process that streams ``deltas`` deltas with clust.

    The stream is written here, so the measured process only consumes it.
    """
    with tempfile.NamedTemporaryFile(suffix=".sse") as handle:
        handle.write(make_stream(deltas))
        handle.flush()
        out = subprocess.run(
            [sys.executable, "-m", "benchmarks.bench_streaming", "--rss-child", handle.name],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    return float(out.strip().splitlines()[-1])


def rss_child(stream_file: str) -> None:
    with fast_server(Path(stream_file), SMALL_CHUNK * 16) as url:
        client = Client(api_key="k", base_url=url, max_retries=0)
        with client.create_a_message_stream(body()) as stream:
            for _ in stream:
                pass
    print(_peak_rss_mb())


def _peak_rss_mb() -> float:
    """This process's peak RSS. VmHWM starts afresh at exec; ru_maxrss would report
    the forking parent's size when that was larger."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    if sys.argv[1:2] == ["--rss-child"]:
        rss_child(sys.argv[2])
        return
    deltas = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    with tempfile.NamedTemporaryFile(suffix=".sse") as handle:
        handle.write(make_stream(deltas))
        handle.flush()
        path = Path(handle.name)
        compare(deltas, path, 0, "stream in one piece", 5)
        compare(deltas, path, SMALL_CHUNK, f"{SMALL_CHUNK}-byte chunks", 5)
    small, large = peak_rss_child(20_000), peak_rss_child(200_000)
    print(
        f"\nPeak RSS consuming events with clust: 20,000 deltas {small:.0f} MB, "
        f"200,000 deltas {large:.0f} MB"
    )


if __name__ == "__main__":
    main()
