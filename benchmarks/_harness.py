"""Shared benchmark plumbing: a server in another process, CPU timing, a result table."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from statistics import median

import anyio

HERE = Path(__file__).resolve().parent


@contextmanager
def fast_server(stream_file: Path | None = None, chunk_size: int = 0) -> Iterator[str]:
    """Run benchmarks/_fast_server.py in a child process; yield its base URL."""
    args = [sys.executable, str(HERE / "_fast_server.py"), "0"]
    if stream_file is not None:
        args += [str(stream_file), str(chunk_size)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def cpu_per_call(run: Callable[[int], None], n: int, repeats: int = 5) -> float:
    """Median client CPU seconds per call of ``run(n)`` (after a warm-up run)."""
    run(max(n // 10, 1))
    samples = []
    for _ in range(repeats):
        start = time.process_time()
        run(n)
        samples.append((time.process_time() - start) / n)
    return median(samples)


def async_cpu_per_call(run: Callable[[int], Awaitable[None]], n: int, repeats: int = 5) -> float:
    """Like :func:`cpu_per_call` for an async ``run``, all in one event loop."""

    async def measure() -> float:
        await run(max(n // 10, 1))
        samples = []
        for _ in range(repeats):
            start = time.process_time()
            await run(n)
            samples.append((time.process_time() - start) / n)
        return median(samples)

    return anyio.run(measure)


def print_table(title: str, rows: list[tuple[str, float]], floor_name: str, unit: str) -> None:
    """Rows of (name, seconds per unit); ratios against the row named ``floor_name``."""
    floor = dict(rows)[floor_name]
    print(f"\n{title}")
    print(f"{'client':<34} {'CPU us/' + unit:>14} {unit + '/s CPU':>14} {'x floor':>8}")
    for name, seconds in rows:
        print(f"{name:<34} {seconds * 1e6:>14.1f} {1 / seconds:>14,.0f} {seconds / floor:>8.2f}")
