"""Child processes of ``tests/store/test_batch_send.py``: one job each, chosen by argv.

Run as ``python batch_worker.py <job> '<json config>'`` with the checkout on
``PYTHONPATH``. Each job opens its own :class:`clust.Store` (nothing is shared with the
test but the database and FakeClaude's URL) and reports on stdout, one JSON object per
line, flushed at once.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from clust import Client, Store
from clust.protocol.retry import RetryPolicy

NO_RETRIES = RetryPolicy(max_retries=0)


def say(**fields: Any) -> None:
    print(json.dumps(fields, ensure_ascii=False), flush=True)


def client(config: dict[str, Any]) -> Client:
    return Client(api_key="test-key", base_url=config["base_url"], retry_policy=NO_RETRIES)


def submit(config: dict[str, Any]) -> None:
    """Open the conversations by id and send their next turns as one batch."""
    with (
        Store(config["db_url"], lease_seconds=config.get("lease_seconds", 900.0)) as store,
        client(config) as api,
    ):
        say(event="ready")
        batch = store.batch_send(api, [(cid, content) for cid, content in config["pairs"]])
        say(event="submitted", id=batch.id, api_id=batch.api_id, state=batch.state)


def collect(config: dict[str, Any]) -> None:
    """Collect every batch still open, as a restarted process would."""
    with Store(config["db_url"]) as store, client(config) as api:
        found = store.open_batches()
        collected = []
        for batch in found:
            done = store.collect_batch(api, batch, wait=True, poll_interval=0.01)
            collected.append(
                {
                    "id": done.batch.id,
                    "ended": done.ended,
                    "stored": done.stored,
                    "errored": done.errored,
                    "expired": done.expired,
                    "canceled": done.canceled,
                    "skipped": done.skipped,
                    "missing": done.missing,
                }
            )
        say(event="collected", batches=collected)


JOBS = {"submit": submit, "collect": collect}

if __name__ == "__main__":
    JOBS[sys.argv[1]](json.loads(sys.argv[2]))
