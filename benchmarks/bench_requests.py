"""Client CPU per non-streaming request: raw httpx + json (the floor), the official SDK, clust.

Run: ``python -m benchmarks.bench_requests [N]``. A canned-reply server runs in
another process, so only the client's CPU is measured. Each client does the whole
job per request: build the body from a logical request, send it, parse the reply.
"""

from __future__ import annotations

import json
import sys

import anthropic
import httpx

from benchmarks._harness import async_cpu_per_call, cpu_per_call, fast_server, print_table
from clust import AsyncClient, Client
from clust.messages import Message, MessagesRequestBody

MODEL = "claude-sonnet-5-5"
PROMPT = "Hello, Claude"
HEADERS = {
    "authorization": "Bearer bench-key",
    "anthropic-version": "2026-10-21",
    "content-type": "application/json",
    "accept": "application/json",
}


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    with fast_server() as url:
        rows = [
            ("raw httpx + json (sync floor)", cpu_per_call(_raw_sync(url), n)),
            ("raw httpx + json (async floor)", async_cpu_per_call(_raw_async(url), n)),
            ("anthropic SDK (sync)", cpu_per_call(_sdk_sync(url), n)),
            ("anthropic SDK (async)", async_cpu_per_call(_sdk_async(url), n)),
            ("clust Client", cpu_per_call(_clust_sync(url), n)),
            ("clust AsyncClient", async_cpu_per_call(_clust_async(url), n)),
        ]
    print_table(
        f"Non-streaming request, {n} requests, median of 5",
        rows,
        "raw httpx + json (sync floor)",
        "req",
    )
    floor_async = dict(rows)["raw httpx + json (async floor)"]
    print(f"clust AsyncClient vs async floor: {dict(rows)['clust AsyncClient'] / floor_async:.2f}x")
    print(f"SDK async vs async floor: {dict(rows)['anthropic SDK (async)'] / floor_async:.2f}x")


def _raw_sync(url: str):  # type: ignore[no-untyped-def]
    http = httpx.Client()

    def run(n: int) -> None:
        for _ in range(n):
            body = {
                "model": MODEL,
                "max_tokens": 1024,
                "messages": [{"role": "user", "content": PROMPT}],
            }
            response = http.post(
                url + "/v1/messages", content=json.dumps(body).encode(), headers=HEADERS
            )
            json.loads(response.content)["content"][0]["text"]

    return run


def _raw_async(url: str):  # type: ignore[no-untyped-def]
    http = httpx.AsyncClient()

    async def run(n: int) -> None:
        for _ in range(n):
            body = {
                "model": MODEL,
                "max_tokens": 1024,
                "messages": [{"role": "user", "content": PROMPT}],
            }
            response = await http.post(
                url + "/v1/messages", content=json.dumps(body).encode(), headers=HEADERS
            )
            json.loads(response.content)["content"][0]["text"]

    return run


def _sdk_sync(url: str):  # type: ignore[no-untyped-def]
    sdk = anthropic.Anthropic(api_key="bench-key", base_url=url, max_retries=0)

    def run(n: int) -> None:
        for _ in range(n):
            reply = sdk.messages.create(
                model=MODEL, max_tokens=1024, messages=[{"role": "user", "content": PROMPT}]
            )
            reply.content[0].text  # noqa: B018

    return run


def _sdk_async(url: str):  # type: ignore[no-untyped-def]
    sdk = anthropic.AsyncAnthropic(api_key="bench-key", base_url=url, max_retries=0)

    async def run(n: int) -> None:
        for _ in range(n):
            reply = await sdk.messages.create(
                model=MODEL, max_tokens=1024, messages=[{"role": "user", "content": PROMPT}]
            )
            reply.content[0].text  # noqa: B018

    return run


def _clust_sync(url: str):  # type: ignore[no-untyped-def]
    client = Client(api_key="bench-key", base_url=url, max_retries=0)

    def run(n: int) -> None:
        for _ in range(n):
            body = MessagesRequestBody(
                model=MODEL, max_tokens=1024, messages=[Message.user(PROMPT)]
            )
            client.create_a_message(body).text()

    return run


def _clust_async(url: str):  # type: ignore[no-untyped-def]
    client = AsyncClient(api_key="bench-key", base_url=url, max_retries=0)

    async def run(n: int) -> None:
        for _ in range(n):
            body = MessagesRequestBody(
                model=MODEL, max_tokens=1024, messages=[Message.user(PROMPT)]
            )
            (await client.create_a_message(body)).text()

    return run


if __name__ == "__main__":
    main()
