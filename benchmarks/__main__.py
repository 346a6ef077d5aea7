"""Run every benchmark: ``python -m benchmarks`` (a few minutes; figures go to the README)."""

from __future__ import annotations

import runpy
import sys

BENCHMARKS = [
    "benchmarks.bench_import",
    "benchmarks.bench_requests",
    "benchmarks.bench_streaming",
    "benchmarks.bench_sse_decoder",
    "benchmarks.bench_store",
    "benchmarks.bench_usage",
    "benchmarks.bench_batches",
    "benchmarks.bench_cache",
]


def main() -> None:
    for name in BENCHMARKS:
        print(f"\n=== {name} ===", flush=True)
        sys.argv = [name]
        runpy.run_module(name, run_name="__main__")


if __name__ == "__main__":
    main()
