"""``python -m clust.testing --port N``: run FakeClaude until Ctrl-C."""

from __future__ import annotations

import argparse
import contextlib
import sys
import threading
from collections.abc import Sequence

from .fake import FakeClaude


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, serve, print the base URL, stop cleanly on Ctrl-C."""
    parser = argparse.ArgumentParser(
        prog="python -m clust.testing", description="Run FakeClaude, a local fake Claude API."
    )
    parser.add_argument("--port", type=int, default=8765, help="TCP port (0 = any free port)")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind")
    parser.add_argument("--chunk-size", type=int, default=None, help="SSE TCP chunk size")
    parser.add_argument(
        "--batch-seconds", type=float, default=0.0, help="batch processing time in seconds"
    )
    parser.add_argument(
        "--require-ttl-beta", action="store_true", help="1h cache TTL needs the beta header"
    )
    args = parser.parse_args(argv)
    fake = FakeClaude(
        port=args.port,
        host=args.host,
        chunk_size=args.chunk_size,
        batch_processing_seconds=args.batch_seconds,
        require_ttl_beta=args.require_ttl_beta,
    )
    with fake:
        print(fake.base_url, flush=True)
        print(
            f"FakeClaude is listening; try ANTHROPIC_BASE_URL={fake.base_url} "
            "ANTHROPIC_API_KEY=test. Ctrl-C stops it.",
            file=sys.stderr,
            flush=True,
        )
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
