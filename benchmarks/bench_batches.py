"""Message Batches end to end: create 1,000 requests, wait, stream the results.

Run: ``python -m benchmarks.bench_batches [--requests N] [--text-bytes B] [--repeats R]``.

FakeClaude runs in a child process (answering every batch request with its whole
prompt, so the results file grows with ``--text-bytes``; a batch stays in progress for
0.3 s). Each client runs in a fresh child process of its own, ``--repeats`` times
(medians reported), after a
5-request warm-up batch in the same process:

- wall time of create (building the requests included), wait (polling every 0.05 s
  until ended: the same schedule for every client) and results (streaming every
  result and reading its custom_id, type and reply text);
- traced peaks (``tracemalloc``, in a second pass): while streaming the results, and
  over the whole run (the create body is built in memory by every client);
- the rise of the child's peak RSS (``ru_maxrss``) over the whole untraced run,
  measured from after the warm-up.

Clients: clust ``Client`` / ``AsyncClient`` (typed ``BatchRequest`` objects, validated
like single requests) and the official SDK ``Anthropic`` / ``AsyncAnthropic``
(``messages.batches``; plain dicts, not validated). Ratios are clust / SDK.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from statistics import median
from typing import Any

MODEL = "claude-sonnet-5-5"
POLL = 0.05
PROCESSING_SECONDS = 0.3

SERVER = f"""
import sys
from clust.testing import FakeClaude, Reply
with FakeClaude(batch_processing_seconds={PROCESSING_SECONDS}) as fake:
    fake.set_batch_resolver(lambda _id, params: Reply.text(params["messages"][-1]["content"]))
    print(fake.base_url, flush=True)
    sys.stdin.read()
"""

CLIENTS = ["clust Client", "clust AsyncClient", "anthropic SDK (sync)", "anthropic SDK (async)"]


@contextmanager
def batch_server() -> Iterator[str]:
    """FakeClaude in a child process until the block ends; yields its base URL."""
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        yield proc.stdout.readline().strip()
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=30)


def prompt(i: int, text_bytes: int) -> str:
    return f"Request {i}: " + "lorem ipsum é " * (text_bytes // 15)


# --- the four workloads (run in a child process) ------------------------------------------


def _clust_sync(url: str, text_bytes: int) -> Callable[[int, bool], dict[str, float]]:
    from clust import Client
    from clust.messages import BatchRequest, Message, MessagesRequestBody

    client = Client(api_key="bench-key", base_url=url)

    def results(batch_id: str) -> int:
        size = 0
        with client.message_batch_results(batch_id) as stream:
            for item in stream:
                message = item.message
                size += len(item.custom_id) + len(item.result.type)
                size += len(message.text()) if message is not None else 0
        return size

    def run(n: int, trace: bool) -> dict[str, float]:
        phases = Phases(trace)
        requests = [
            BatchRequest(
                f"req-{i}",
                MessagesRequestBody(
                    model=MODEL, max_tokens=4096, messages=[Message.user(prompt(i, text_bytes))]
                ),
            )
            for i in range(n)
        ]
        batch = client.create_message_batch(requests)
        del requests
        phases.created()
        client.wait_for_message_batch(batch.id, poll_interval=POLL, max_interval=POLL)
        phases.waited()
        return phases.done(results(batch.id))

    return run


def _clust_async(url: str, text_bytes: int) -> Callable[[int, bool], dict[str, float]]:
    import anyio

    from clust import AsyncClient
    from clust.messages import BatchRequest, Message, MessagesRequestBody

    async def results(client: AsyncClient, batch_id: str) -> int:
        size = 0
        async with client.message_batch_results(batch_id) as stream:
            async for item in stream:
                message = item.message
                size += len(item.custom_id) + len(item.result.type)
                size += len(message.text()) if message is not None else 0
        return size

    async def main(n: int, trace: bool) -> dict[str, float]:
        async with AsyncClient(api_key="bench-key", base_url=url) as client:
            await client.get_model(MODEL)  # a fresh event loop: open the pool untimed
            phases = Phases(trace)
            requests = [
                BatchRequest(
                    f"req-{i}",
                    MessagesRequestBody(
                        model=MODEL,
                        max_tokens=4096,
                        messages=[Message.user(prompt(i, text_bytes))],
                    ),
                )
                for i in range(n)
            ]
            batch = await client.create_message_batch(requests)
            del requests
            phases.created()
            await client.wait_for_message_batch(batch.id, poll_interval=POLL, max_interval=POLL)
            phases.waited()
            return phases.done(await results(client, batch.id))

    return lambda n, trace: anyio.run(main, n, trace)


def _sdk_requests(n: int, text_bytes: int) -> list[Any]:
    return [
        {
            "custom_id": f"req-{i}",
            "params": {
                "model": MODEL,
                "max_tokens": 4096,
                "messages": [{"role": "user", "content": prompt(i, text_bytes)}],
            },
        }
        for i in range(n)
    ]


def _sdk_text(item: Any) -> int:
    size = len(item.custom_id) + len(item.result.type)
    if item.result.type == "succeeded":
        size += len("".join(b.text for b in item.result.message.content if b.type == "text"))
    return size


def _sdk_sync(url: str, text_bytes: int) -> Callable[[int, bool], dict[str, float]]:
    import anthropic

    sdk = anthropic.Anthropic(api_key="bench-key", base_url=url)

    def results(batch_id: str) -> int:
        return sum(_sdk_text(item) for item in sdk.messages.batches.results(batch_id))

    def run(n: int, trace: bool) -> dict[str, float]:
        phases = Phases(trace)
        batch = sdk.messages.batches.create(requests=_sdk_requests(n, text_bytes))
        phases.created()
        while batch.processing_status != "ended":
            time.sleep(POLL)
            batch = sdk.messages.batches.retrieve(batch.id)
        phases.waited()
        return phases.done(results(batch.id))

    return run


def _sdk_async(url: str, text_bytes: int) -> Callable[[int, bool], dict[str, float]]:
    import asyncio

    import anthropic

    async def main(n: int, trace: bool) -> dict[str, float]:
        sdk = anthropic.AsyncAnthropic(api_key="bench-key", base_url=url)
        await sdk.models.retrieve(MODEL)  # as for clust
        phases = Phases(trace)
        batch = await sdk.messages.batches.create(requests=_sdk_requests(n, text_bytes))
        phases.created()
        while batch.processing_status != "ended":
            await asyncio.sleep(POLL)
            batch = await sdk.messages.batches.retrieve(batch.id)
        phases.waited()
        size = 0
        async for item in await sdk.messages.batches.results(batch.id):
            size += _sdk_text(item)
        figures = phases.done(size)
        await sdk.close()
        return figures

    return lambda n, trace: asyncio.run(main(n, trace))


class Phases:
    """Wall-clock marks of one run and, when ``trace``, its traced memory peaks: over the
    whole run, and over the results phase alone."""

    def __init__(self, trace: bool) -> None:
        self.trace = trace
        if trace:
            tracemalloc.start()
        self.marks = [time.perf_counter()]
        self.peak_before_results = 0

    def created(self) -> None:
        self.marks.append(time.perf_counter())

    def waited(self) -> None:
        self.marks.append(time.perf_counter())
        if self.trace:
            self.peak_before_results = tracemalloc.get_traced_memory()[1]
            tracemalloc.reset_peak()

    def done(self, size: int) -> dict[str, float]:
        start, created, waited = self.marks
        end = time.perf_counter()
        figures = {
            "create": created - start,
            "wait": waited - created,
            "results": end - waited,
            "total": end - start,
            "result_chars": float(size),
        }
        if self.trace:
            results_peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            figures["results_peak"] = float(results_peak)
            figures["run_peak"] = float(max(self.peak_before_results, results_peak))
        return figures


WORKLOADS = {
    CLIENTS[0]: _clust_sync,
    CLIENTS[1]: _clust_async,
    CLIENTS[2]: _sdk_sync,
    CLIENTS[3]: _sdk_async,
}


def child(name: str, url: str, n: int, text_bytes: int) -> None:
    """One client, one fresh process: a 5-request warm-up (first-use imports, the
    connection pool), an untraced run (times, RSS), then a traced one."""
    run = WORKLOADS[name](url, text_bytes)
    run(5, False)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    figures = run(n, False)
    figures["rss_rise"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) * 1024
    traced = run(n, True)
    figures["results_peak"] = traced["results_peak"]
    figures["run_peak"] = traced["run_peak"]
    print(json.dumps(figures))


# --- the parent: run every child, print the table ------------------------------------------


def measure(name: str, url: str, n: int, text_bytes: int, repeats: int) -> dict[str, float]:
    command = [sys.executable, "-m", "benchmarks.bench_batches", "--child", name, "--url", url]
    command += ["--requests", str(n), "--text-bytes", str(text_bytes)]
    runs = []
    for _ in range(repeats):
        out = subprocess.run(
            command,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        runs.append(json.loads(out.strip().splitlines()[-1]))
    return {key: median(run[key] for run in runs) for key in runs[0]}


def print_table(rows: dict[str, dict[str, float]]) -> None:
    print(
        f"\n{'client':<24}{'create s':>9}{'wait s':>8}{'results s':>10}{'total s':>9}"
        f"{'results peak MB':>16}{'run peak MB':>12}{'RSS rise MB':>12}"
    )
    for name, f in rows.items():
        print(
            f"{name:<24}{f['create']:>9.3f}{f['wait']:>8.3f}{f['results']:>10.3f}"
            f"{f['total']:>9.3f}{f['results_peak'] / 1e6:>16.2f}{f['run_peak'] / 1e6:>12.2f}"
            f"{f['rss_rise'] / 1e6:>12.1f}"
        )
    print("\nratios clust / SDK (below 1: clust is faster or smaller)")
    for ours, theirs in ((CLIENTS[0], CLIENTS[2]), (CLIENTS[1], CLIENTS[3])):
        a, b = rows[ours], rows[theirs]
        print(
            f"  {ours:<19} create {a['create'] / b['create']:.2f}x, "
            f"results {a['results'] / b['results']:.2f}x, total {a['total'] / b['total']:.2f}x, "
            f"results peak {a['results_peak'] / b['results_peak']:.2f}x, "
            f"run peak {a['run_peak'] / b['run_peak']:.2f}x, "
            f"RSS rise {a['rss_rise'] / max(b['rss_rise'], 1):.2f}x"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--text-bytes", type=int, default=2000, help="prompt (= reply) size")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", choices=CLIENTS, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.url, args.requests, args.text_bytes)
        return
    with batch_server() as url:
        rows = {}
        for name in CLIENTS:
            rows[name] = measure(name, url, args.requests, args.text_bytes, args.repeats)
            print(f"{name}: done", flush=True)
    sizes = {round(f["result_chars"]) for f in rows.values()}
    assert len(sizes) == 1, f"the clients read different results: {sizes}"
    print(
        f"\n{args.requests:,} requests of ~{args.text_bytes:,} B each; results text read: "
        f"{sizes.pop() / 1e6:.1f} M characters; medians of {args.repeats} fresh processes"
    )
    print_table(rows)


if __name__ == "__main__":
    main()
