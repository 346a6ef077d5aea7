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
    "benchmarks.bench_concurrency",
]


def main() -> None:
    missed: list[str] = []
    for name in BENCHMARKS:
        print(f"\n=== {name} ===", flush=True)
        sys.argv = [name]
        try:
            runpy.run_module(name, run_name="__main__")
        except SystemExit as stop:  # a benchmark that missed its targets: run the rest
            if stop.code not in (None, 0):
                missed.append(name)
    if missed:
        print(f"\ntargets missed in: {', '.join(missed)}")
        raise SystemExit(1)


if __name__ == "__main__":
    main()
