"""Many conversations at once on one event loop: clust's ``asend`` against in-memory anchors.

Run: ``python -m benchmarks.bench_concurrency [--sizes 20,500] [--pg URL] [--threads N]
[--backend asyncio|trio]`` (``pip install -e '.[bench]'``). PostgreSQL only when a URL
is given: ``--pg``, else ``CLUST_BENCH_POSTGRES_URL`` or ``CLUST_TEST_POSTGRES_URL``.

The workload, for each size N: N conversations (created before the clock starts),
then 3 turns each, all N at once per turn (one task group per turn), on one event
loop, with one client. A heartbeat task ticks every 10 ms on the same loop; its
largest gap between two ticks says how long the loop was held at a stretch (a
responsive loop shows ~10 ms). Before the clock starts every system sends one
warm-up turn (the client builds its connection pool and finishes its lazy imports),
and the objects made so far are frozen out of the collector's full passes
(``gc.freeze``), so that those measure only what the turns allocate.

Systems, all against the same FakeClaude, served from a child process (``python -m
clust.testing``) so its threads do not share the measured process's GIL:

- raw httpx + json: ``httpx.AsyncClient`` with clust's and the SDK's pool limits
  (1,000 connections, 100 kept alive); the history a list in memory;
- anthropic SDK: ``AsyncAnthropic().messages.create``; the history in memory;
- clust SQLite / clust PostgreSQL: ``Store`` + ``Conversation.asend``: each turn
  claims the conversation, stores the user turn and the ledger's intent row, sends
  the stored history, stores the reply and its usage (two write transactions, in the
  store's worker threads).

Reported per system: turns per second, total time of the 3 turns, the largest
heartbeat gap, p50/p99 of one turn's latency (one ``asend`` or request), the event
loop thread's CPU per turn, and time ratios against raw httpx (what persistence
costs). Target: the largest gap under 100 ms at 500 conversations, for clust.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import anthropic
import anyio
import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from clust import AsyncClient, Conversation, Store
from clust.conversation.offload import DEFAULT_THREADS

MODEL = "claude-sonnet-5-5"
MAX_TOKENS = 64
TURNS = 3
TICK = 0.01
MAX_GAP = 0.1
TARGET_SIZE = 500
# What clust's AsyncClient and the SDK use (POOL_LIMITS, DEFAULT_CONNECTION_LIMITS).
LIMITS = httpx.Limits(max_connections=1000, max_keepalive_connections=100)
HEADERS = {"x-api-key": "bench-key", "anthropic-version": "2023-06-01"}

HTTPX = "raw httpx + json (memory)"
SDK = "anthropic SDK (memory)"
CLUST_SQLITE = "clust asend, SQLite file"
CLUST_POSTGRES = "clust asend, PostgreSQL"


@dataclass(frozen=True)
class Result:
    """One system's run at one size."""

    system: str
    size: int
    seconds: float
    latencies: list[float]
    largest_gap: float
    loop_cpu: float

    @property
    def turns(self) -> int:
        return len(self.latencies)

    def percentile(self, share: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


class Heartbeat:
    """Ticks every :data:`TICK` s; ``largest_gap``: the longest time between two ticks."""

    def __init__(self) -> None:
        self.largest_gap = 0.0

    async def run(self) -> None:
        last = time.perf_counter()
        while True:
            await anyio.sleep(TICK)
            now = time.perf_counter()
            self.largest_gap = max(self.largest_gap, now - last)
            last = now


Turn = Callable[[int, int], Awaitable[None]]
"""``turn(conversation index, turn number)``: one turn of one conversation."""


async def measure(system: str, size: int, turn: Turn) -> Result:
    """Run ``TURNS`` turns of ``size`` conversations, all at once per turn, with the
    heartbeat ticking; time each turn and the whole."""
    latencies: list[float] = []
    heartbeat = Heartbeat()

    async def timed(index: int, number: int) -> None:
        started = time.perf_counter()
        await turn(index, number)
        latencies.append(time.perf_counter() - started)

    gc.collect()
    gc.freeze()  # what exists before (imports, setup) stays out of full collections
    cpu = time.thread_time()
    started = time.perf_counter()
    try:
        async with anyio.create_task_group() as ticking:
            ticking.start_soon(heartbeat.run)
            for number in range(TURNS):
                async with anyio.create_task_group() as group:
                    for index in range(size):
                        group.start_soon(timed, index, number)
            ticking.cancel_scope.cancel()
    finally:
        gc.unfreeze()
    seconds = time.perf_counter() - started
    loop_cpu = time.thread_time() - cpu
    assert len(latencies) == size * TURNS
    return Result(system, size, seconds, latencies, heartbeat.largest_gap, loop_cpu)


def said(index: int, number: int) -> str:
    return f"conversation {index}, turn {number}: tell me something about the number {index}."


async def run_httpx(url: str, size: int) -> Result:
    histories: list[list[dict[str, Any]]] = [[] for _ in range(size + 1)]
    async with httpx.AsyncClient(base_url=url, limits=LIMITS, headers=HEADERS) as http:

        async def turn(index: int, number: int) -> None:
            history = histories[index]
            history.append({"role": "user", "content": said(index, number)})
            body = {"model": MODEL, "max_tokens": MAX_TOKENS, "messages": history}
            response = await http.post(
                "/v1/messages",
                content=json.dumps(body).encode(),
                headers={"content-type": "application/json"},
            )
            response.raise_for_status()
            reply = json.loads(response.content)
            history.append({"role": "assistant", "content": reply["content"]})

        await turn(size, 0)  # warm-up
        return await measure(HTTPX, size, turn)


async def run_sdk(url: str, size: int) -> Result:
    histories: list[list[Any]] = [[] for _ in range(size + 1)]
    async with anthropic.AsyncAnthropic(base_url=url, api_key="bench-key") as client:

        async def turn(index: int, number: int) -> None:
            history = histories[index]
            history.append({"role": "user", "content": said(index, number)})
            reply = await client.messages.create(
                model=MODEL, max_tokens=MAX_TOKENS, messages=history
            )
            history.append({"role": "assistant", "content": reply.content})

        await turn(size, 0)
        return await measure(SDK, size, turn)


async def run_clust(url: str, system: str, db_url: str, size: int, threads: int) -> Result:
    async with (
        await Store.aopen(db_url, threads=threads) as store,
        AsyncClient(api_key="bench-key", base_url=url) as client,
    ):
        conversations: list[Conversation] = []

        async def create() -> None:
            conversations.append(
                await store.acreate_conversation(model=MODEL, max_tokens=MAX_TOKENS)
            )

        async with anyio.create_task_group() as group:
            for _ in range(size + 1):
                group.start_soon(create)

        async def turn(index: int, number: int) -> None:
            await conversations[index].asend(client, said(index, number))

        await turn(size, 0)
        result = await measure(system, size, turn)
        usage = await conversations[0].ausage()
        if usage.requests != TURNS or usage.unknown_attempts:
            raise SystemExit(f"{system}: a conversation's ledger is wrong: {usage}")
        return result


@contextmanager
def fake_claude() -> Iterator[str]:
    """FakeClaude in a child process; its base URL."""
    child = subprocess.Popen(
        [sys.executable, "-m", "clust.testing", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert child.stdout is not None
        yield child.stdout.readline().strip()
    finally:
        child.terminate()
        child.wait(timeout=10)


@contextmanager
def postgres_schema(base: str) -> Iterator[str]:
    """A fresh schema on ``base`` (dropped after); the URL that uses it."""
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    separator = "&" if "?" in base else "?"
    try:
        yield f"{base}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def run_size(size: int, pg: str | None, threads: int, backend: str) -> list[Result]:
    """Every system at one size, each on a fresh event loop and a fresh FakeClaude."""
    results: list[Result] = []

    def once(run: Callable[[str], Awaitable[Result]]) -> None:
        with fake_claude() as url:
            result = anyio.run(run, url, backend=backend)
        print(
            f"  {size} conversations: {result.system}: {result.seconds:.1f} s, "
            f"largest gap {result.largest_gap * 1e3:.0f} ms",
            flush=True,
        )
        results.append(result)

    once(partial(run_httpx, size=size))
    once(partial(run_sdk, size=size))
    clust = partial(run_clust, size=size, threads=threads)
    with tempfile.TemporaryDirectory(prefix="clust-bench-") as tmp:
        once(partial(clust, system=CLUST_SQLITE, db_url=f"sqlite:///{Path(tmp) / 'store.db'}"))
    if pg is not None:
        with postgres_schema(pg) as db_url:
            once(partial(clust, system=CLUST_POSTGRES, db_url=db_url))
    return results


def print_table(results: list[Result]) -> None:
    sizes = sorted({r.size for r in results})
    print(
        f"\n{'system':<28} {'convs':>5} {'turns/s':>8} {'total s':>8} {'p50 ms':>8} "
        f"{'p99 ms':>8} {'gap ms':>7} {'loop CPU':>9} {'x httpx':>8}"
    )
    print(f"{'':<28} {'':>5} {'':>8} {'':>8} {'':>8} {'':>8} {'':>7} {'ms/turn':>9} {'time':>8}")
    for size in sizes:
        rows = [r for r in results if r.size == size]
        floor = next(r for r in rows if r.system == HTTPX)
        for r in rows:
            print(
                f"{r.system:<28} {r.size:>5} {r.turns / r.seconds:>8,.0f} {r.seconds:>8.2f} "
                f"{r.percentile(0.5) * 1e3:>8.0f} {r.percentile(0.99) * 1e3:>8.0f} "
                f"{r.largest_gap * 1e3:>7.0f} {r.loop_cpu / r.turns * 1e3:>9.2f} "
                f"{r.seconds / floor.seconds:>8.2f}"
            )


def postgres_url(given: str | None) -> str | None:
    return (
        given
        or os.environ.get("CLUST_BENCH_POSTGRES_URL")
        or os.environ.get("CLUST_TEST_POSTGRES_URL")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="20,500", help="conversation counts (default 20,500)")
    parser.add_argument("--pg", default=None, help="PostgreSQL URL (default: from the env)")
    parser.add_argument(
        "--threads", type=int, default=DEFAULT_THREADS, help="Store(threads=) for clust"
    )
    parser.add_argument("--backend", default="asyncio", choices=["asyncio", "trio"])
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    pg = postgres_url(args.pg)

    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    results: list[Result] = []
    for size in sizes:
        results += run_size(size, pg, args.threads, args.backend)

    print(
        f"\n{TURNS} turns x N conversations, all N at once per turn, one {args.backend} event "
        f"loop; clust Store(threads={args.threads}); heartbeat every {TICK * 1e3:.0f} ms"
    )
    print_table(results)
    if pg is None:
        print("\nPostgreSQL skipped: give --pg URL or set CLUST_TEST_POSTGRES_URL")
    else:
        print(f"\nPostgreSQL: {make_url(pg).render_as_string()}")
    print(
        f"{os.cpu_count()} CPUs; load average {load_before:.1f} at start, "
        f"{os.getloadavg()[0]:.1f} at end; run took {time.perf_counter() - started:.0f} s"
    )

    checks = [
        (f"{r.system} at {r.size}: largest gap {r.largest_gap * 1e3:.0f} ms < 100 ms", ok)
        for r in results
        if r.size == TARGET_SIZE and r.system in (CLUST_SQLITE, CLUST_POSTGRES)
        for ok in [r.largest_gap < MAX_GAP]
    ]
    if checks:
        print("\nTargets:")
        for what, ok in checks:
            print(f"  {'PASS' if ok else 'FAIL'}  {what}")
    if not all(ok for _, ok in checks):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
