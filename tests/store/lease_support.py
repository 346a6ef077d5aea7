"""Helpers of the lease and ledger tests: a child process with deadlines on its output,
a scripted reply body, and direct reads of the lease and the ledger."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import select, text

from clust import Store
from clust.messages import MessagesResponseBody
from clust.store.schema import ConversationRow, UsageRow

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).resolve().parent / "procs" / "lease_worker.py"
STARTUP = 60.0  # seconds a child may take to import clust and say ready (2 busy CPUs)
MODEL = "claude-sonnet-5-5"


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["PYTHONIOENCODING"] = "utf-8"
    return env


class JsonLinesChild:
    """A worker script running with ``config`` (JSON) as its argument; each line it
    prints is a JSON object put on ``lines`` (``None`` once its output ends)."""

    def __init__(
        self,
        worker: Path,
        config: dict[str, Any],
        lines: queue.Queue[dict[str, Any] | None] | None = None,
    ) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(worker), json.dumps(config)],
            cwd=ROOT,
            env=child_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )
        self.lines: queue.Queue[dict[str, Any] | None] = (
            lines if lines is not None else queue.Queue()
        )
        self._stderr: list[str] = []
        self._pumps = [
            threading.Thread(target=self._pump_out, daemon=True),
            threading.Thread(target=self._pump_err, daemon=True),
        ]
        for pump in self._pumps:
            pump.start()

    def _pump_out(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))
        self.lines.put(None)

    def _pump_err(self) -> None:
        assert self.proc.stderr is not None
        self._stderr.extend(self.proc.stderr)

    def stderr(self) -> str:
        """What the child wrote to stderr (all of it once it has exited)."""
        if self.proc.poll() is not None:
            self._pumps[1].join(timeout=5)
        return "".join(self._stderr)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        for pump in self._pumps:
            pump.join(timeout=5)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


class Child(JsonLinesChild):
    """``procs/lease_worker.py`` running."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(WORKER, config)

    def expect(self, event: str, timeout: float) -> dict[str, Any]:
        """The next line with this ``event`` (fails at the deadline or on exit)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                item = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(
                    f"no {event!r} line within {timeout} s\n{self.stderr()}"
                ) from None
            if item is None:
                self.lines.put(None)
                code = self.proc.wait(timeout=10)
                raise AssertionError(f"exited ({code}) before {event!r}:\n{self.stderr()}")
            if item.get("event") == event:
                return item

    def go(self) -> None:
        """Let the child go on (to its ``then`` send)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()


def poll(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


def response(
    text_: str = "an answer", *, input_tokens: int = 120, output_tokens: int = 30
) -> MessagesResponseBody:
    """A reply as the API would return it (for the turn functions, without HTTP)."""
    return MessagesResponseBody.model_validate(
        {
            "id": "msg_test",
            "type": "message",
            "role": "assistant",
            "model": MODEL,
            "content": [{"type": "text", "text": text_}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
        }
    )


def ledger(store: Store, conversation_id: str) -> list[dict[str, Any]]:
    """The usage rows of a conversation, in the order written."""
    table = UsageRow.__table__
    with store.engine.connect() as connection:
        found = connection.execute(
            select(table).where(table.c.conversation_id == conversation_id).order_by(table.c.id)
        ).all()
    return [dict(row._mapping) for row in found]


def lease_of(store: Store, conversation_id: str) -> tuple[str | None, datetime | None]:
    """The conversation's stored lease: (holder, expiry in UTC)."""
    table = ConversationRow.__table__
    with store.engine.connect() as connection:
        holder, expiry = connection.execute(
            select(table.c.lease_holder, table.c.lease_expires_at).where(
                table.c.id == conversation_id
            )
        ).one()
    if expiry is not None and expiry.tzinfo is None:
        expiry = expiry.replace(tzinfo=timezone.utc)
    return holder, expiry


def database_now(store: Store) -> datetime:
    """Now by the database's clock (PostgreSQL) or this process's (SQLite)."""
    if store.engine.dialect.name != "postgresql":
        return datetime.now(timezone.utc)
    with store.engine.connect() as connection:
        value = connection.execute(text("SELECT clock_timestamp()")).scalar_one()
    return value  # type: ignore[no-any-return]


def message_requests(fake: Any) -> int:
    return sum(1 for request in fake.requests if request.path == "/v1/messages")


def clust_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m clust ARGS`` from this checkout (no ``CLUST_DATABASE_URL``)."""
    env = {key: value for key, value in child_env().items() if key != "CLUST_DATABASE_URL"}
    return subprocess.run(
        [sys.executable, "-m", "clust", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
