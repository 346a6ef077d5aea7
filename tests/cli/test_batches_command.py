"""``clust batches list|status|collect`` on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli.cli_support import assert_one_line_failure, clean_env, clust

from clust import Client, Store
from clust.testing import FakeClaude

MODEL = "claude-sonnet-5-5"
PROCESSING = 3600.0  # seconds a batch stays in progress on the fake clock


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeClaude]:
    """Batches stay in progress until the test moves the fake clock."""
    with FakeClaude(batch_processing_seconds=PROCESSING) as fake:
        yield fake


def test_list_status_collect(tmp_path: Path, db_url: str, fake: FakeClaude) -> None:
    with Store(db_url) as store, Client(api_key="k", base_url=fake.base_url) as client:
        convs = [store.create_conversation(model=MODEL, max_tokens=64) for _ in range(4)]
        fake.script_batch_result(f"{convs[2].id}_0", "errored")
        batch = store.batch_send(client, [(conv, f"hello {i}") for i, conv in enumerate(convs)])
    assert batch.api_id is not None
    offline = clean_env(tmp_path)
    online = clean_env(tmp_path, fake.base_url)

    listed = clust("batches", "list", "--db", db_url, env=offline)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["batch", "state", "created", "requests", "progress"]
    assert lines[2].startswith(batch.api_id)
    assert "submitted" in lines[2] and "in_progress: 0/4 processed" in lines[2]

    stored = clust("batches", "status", batch.id, "--stored", "--db", db_url, env=offline)
    assert stored.returncode == 0, stored.stderr
    assert f"batch {batch.api_id}" in stored.stdout and "turns:     open 4" in stored.stdout
    assert f"clust batches collect {batch.api_id}" in stored.stdout

    needs_key = clust("batches", "status", batch.api_id, "--db", db_url, env=offline)
    assert "ANTHROPIC_API_KEY" in assert_one_line_failure(needs_key, code=2)

    # collect polls; the test ends the batch once the bar showed it in progress
    collector = subprocess.Popen(
        [sys.executable, "-m", "clust", "batches", "collect", "--poll", "0.05", "--db", db_url],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=online,
    )
    try:
        assert collector.stderr is not None
        first = collector.stderr.readline()
        assert first.startswith(f"{batch.api_id} [---") and "0/4 processed" in first, first
        fake.advance_time(PROCESSING + 1)
        stdout, rest = collector.communicate(timeout=60)
    finally:
        if collector.poll() is None:
            collector.kill()
            collector.communicate()
    assert collector.returncode == 0, rest
    last = rest.splitlines()[-1]
    assert last.startswith(f"{batch.api_id} [###") and last.endswith("ended")
    assert "4/4 processed (3 succeeded, 1 errored, 0 expired, 0 canceled)" in last
    assert stdout.strip() == (
        f"batch {batch.api_id}: 3 replies stored, 1 errored; 1 turns are pending "
        "(conv.retry(client) resends them)"
    )

    status = clust("batches", "status", batch.api_id, "--json", "--db", db_url, env=online)
    assert status.returncode == 0, status.stderr
    document = json.loads(status.stdout)
    assert document["state"] == "collected" and document["processing_status"] == "ended"
    assert document["items"] == {"succeeded": 3, "errored": 1}
    assert document["request_counts"]["succeeded"] == 3

    nothing_open = clust("batches", "collect", "--db", db_url, env=online)
    assert nothing_open.stdout.strip() == "no batches to collect"
    again = clust("batches", "collect", batch.id, "--db", db_url, env=online)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == f"batch {batch.api_id}: already collected, nothing new"

    listed = clust("batches", "list", "--json", "--db", db_url, env=offline)
    [entry] = json.loads(listed.stdout)
    assert entry["api_id"] == batch.api_id and entry["state"] == "collected"
    table = clust("batches", "list", "--db", db_url, env=offline)
    assert "3 replies stored, 1 turns pending" in table.stdout

    with Store(db_url) as store:
        for index, conv in enumerate(convs):
            history = store.get_conversation(conv.id).history
            expected = 1 if index == 2 else 2
            assert len(history) == expected


def test_unknown_batch_and_empty_store(tmp_path: Path, sqlite_url: str) -> None:
    env = clean_env(tmp_path)
    empty = clust("batches", "list", "--db", sqlite_url, env=env)
    assert empty.returncode == 0 and empty.stdout.strip() == "no batches yet"
    unknown = clust("batches", "status", "msgbatch_nope", "--stored", "--db", sqlite_url, env=env)
    line = assert_one_line_failure(unknown)
    assert "no batch 'msgbatch_nope' in this database" in line
