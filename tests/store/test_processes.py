"""Acceptance tests of issue 5 across real processes, on SQLite and on PostgreSQL.

Each child is a fresh Python process (``tests/store/procs/worker.py``) that imports
clust from this checkout and opens its own :class:`Store`; FakeClaude runs here and
records every request, so the tests read what the children actually sent, byte for
byte. Nothing waits on a sleep: the parent polls with deadlines (FakeClaude's
recorder, the children's stdout lines, the library's own ``wait=``).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from clust import Client, Store
from clust.messages import ConversationBusy, Message, PendingTurn
from clust.protocol.request import ONE_HOUR_TTL_BETA
from clust.store.schema import ConversationRow, MessageRow, UsageRow
from clust.testing import FakeClaude, RecordedRequest, Reply

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).resolve().parent / "procs" / "worker.py"
STARTUP = 60.0  # seconds a child may take to import clust and say ready (8 at once, 2 CPUs)
MODEL = "claude-sonnet-5-5"
LEASE = 1.5  # lease of the child killed mid-send: short, so the test waits little for it


# -- reading raw request bodies ----------------------------------------------------------

_DECODER = json.JSONDecoder()


def _skip_space(text: str, index: int) -> int:
    while text[index] in " \t\r\n":
        index += 1
    return index


def top_level_spans(raw: bytes) -> dict[str, bytes]:
    """The raw bytes of each top-level field value of a JSON object body, as sent.

    Walks the original text with ``raw_decode`` (never re-serialises), so each span is
    exactly the bytes the client put on the wire.
    """
    text = raw.decode("utf-8")
    index = _skip_space(text, 0)
    assert text[index] == "{", text[:80]
    index = _skip_space(text, index + 1)
    spans: dict[str, bytes] = {}
    while text[index] != "}":
        key, index = _DECODER.raw_decode(text, index)
        index = _skip_space(text, index)
        assert text[index] == ":"
        start = _skip_space(text, index + 1)
        _, end = _DECODER.raw_decode(text, start)
        spans[key] = text[start:end].encode("utf-8")
        index = _skip_space(text, end)
        if text[index] == ",":
            index = _skip_space(text, index + 1)
    return spans


def array_spans(raw_array: bytes) -> list[bytes]:
    """The raw bytes of each element of a JSON array, as sent."""
    text = raw_array.decode("utf-8")
    assert text[0] == "[", text[:80]
    index = _skip_space(text, 1)
    items: list[bytes] = []
    while text[index] != "]":
        _, end = _DECODER.raw_decode(text, index)
        items.append(text[index:end].encode("utf-8"))
        index = _skip_space(text, end)
        if text[index] == ",":
            index = _skip_space(text, index + 1)
    return items


def message_spans(request: RecordedRequest) -> list[bytes]:
    """The raw bytes of each message object of a Messages API request body."""
    return array_spans(top_level_spans(request.raw)["messages"])


def message_requests(fake: FakeClaude) -> list[RecordedRequest]:
    return [r for r in fake.requests if r.method == "POST" and r.path == "/v1/messages"]


def betas(request: RecordedRequest) -> list[str]:
    return [b.strip() for b in (request.header("anthropic-beta") or "").split(",") if b.strip()]


# -- child processes ---------------------------------------------------------------------


def child_command(job: str, config: dict[str, Any]) -> list[str]:
    return [sys.executable, str(WORKER), job, json.dumps(config)]


def child_env() -> dict[str, str]:
    """The environment of a child: this checkout first on the import path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["PYTHONIOENCODING"] = "utf-8"
    return env


def run_job(job: str, config: dict[str, Any], timeout: float = 60.0) -> list[dict[str, Any]]:
    """Run one child to completion; its stdout lines, parsed."""
    done = subprocess.run(
        child_command(job, config),
        cwd=ROOT,
        env=child_env(),
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"{job} exited with {done.returncode}:\n{done.stderr}"
    return [json.loads(line) for line in done.stdout.splitlines()]


class Child:
    """A running child whose stdout lines arrive in a queue (so reads have deadlines)."""

    def __init__(self, job: str, config: dict[str, Any]) -> None:
        self.job = job
        self.proc = subprocess.Popen(
            child_command(job, config),
            cwd=ROOT,
            env=child_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            bufsize=1,
        )
        self.seen: list[dict[str, Any]] = []
        self._lines: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._stderr: list[str] = []
        self._pumps = [
            threading.Thread(target=self._pump_stdout, daemon=True),
            threading.Thread(target=self._pump_stderr, daemon=True),
        ]
        for pump in self._pumps:
            pump.start()

    def _pump_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                self._lines.put(json.loads(line))
            except ValueError:
                self._lines.put({"event": "text", "line": line})
        self._lines.put(None)

    def _pump_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._stderr.append(line)

    def stderr(self) -> str:
        if self.proc.poll() is not None:
            self._pumps[1].join(timeout=5)
        return "".join(self._stderr)

    def expect(self, event: str, timeout: float) -> dict[str, Any]:
        """Read lines until one with this ``event``; fail at the deadline or on exit."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                item = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(
                    f"{self.job}: no {event!r} line within {timeout} s\n{self.stderr()}"
                ) from None
            if item is None:
                self._lines.put(None)
                code = self.proc.wait(timeout=10)
                raise AssertionError(
                    f"{self.job} exited ({code}) before {event!r}:\n{self.stderr()}"
                )
            self.seen.append(item)
            if item.get("event") == event:
                return item

    def go(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def finish(self, timeout: float) -> dict[str, Any]:
        """The ``done`` line, once the child exited with status 0."""
        done = self.expect("done", timeout)
        code = self.proc.wait(timeout=timeout)
        assert code == 0, f"{self.job} exited with {code}:\n{self.stderr()}"
        return done

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


@pytest.fixture
def spawn() -> Iterator[Callable[[str, dict[str, Any]], Child]]:
    """Start children; any still running at the end of the test is killed."""
    started: list[Child] = []

    def start(job: str, config: dict[str, Any]) -> Child:
        child = Child(job, config)
        started.append(child)
        return child

    yield start
    for child in started:
        child.close()


def poll(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.005)


# -- reading the store directly -----------------------------------------------------------


def stored_messages(store: Store, conversation_id: str) -> list[tuple[int, str, str]]:
    with store.engine.connect() as connection:
        rows = connection.execute(
            select(MessageRow.position, MessageRow.role, MessageRow.wire)
            .where(MessageRow.conversation_id == conversation_id)
            .order_by(MessageRow.position)
        ).all()
    return [(row[0], row[1], row[2]) for row in rows]


def usage_positions(store: Store, conversation_id: str) -> list[int | None]:
    with store.engine.connect() as connection:
        return list(
            connection.execute(
                select(UsageRow.message_position)
                .where(UsageRow.conversation_id == conversation_id)
                .order_by(UsageRow.message_position)
            ).scalars()
        )


def attempts(store: Store, conversation_id: str) -> list[tuple[int | None, str]]:
    """The ledger's rows of a conversation, in the order written: (position, outcome)."""
    with store.engine.connect() as connection:
        found = connection.execute(
            select(UsageRow.message_position, UsageRow.outcome)
            .where(UsageRow.conversation_id == conversation_id)
            .order_by(UsageRow.id)
        ).all()
    return [(row[0], row[1]) for row in found]


def lease_expiry(store: Store, conversation_id: str) -> datetime | None:
    """When the conversation's lease runs out (UTC), or ``None`` when nobody holds it."""
    with store.engine.connect() as connection:
        expiry = connection.execute(
            select(ConversationRow.lease_expires_at).where(ConversationRow.id == conversation_id)
        ).scalar()
    if expiry is None:
        return None
    return expiry if expiry.tzinfo else expiry.replace(tzinfo=timezone.utc)  # SQLite: naive


def next_position(store: Store, conversation_id: str) -> int:
    with store.engine.connect() as connection:
        return int(
            connection.execute(
                select(ConversationRow.next_position).where(ConversationRow.id == conversation_id)
            ).scalar_one()
        )


def count_usage(store: Store, conversation_id: str) -> int:
    with store.engine.connect() as connection:
        return int(
            connection.execute(
                select(func.count())
                .select_from(UsageRow)
                .where(UsageRow.conversation_id == conversation_id)
            ).scalar_one()
        )


def text_of(wire: str | bytes) -> Any:
    return json.loads(wire)["content"]


def echo_of(text: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": f"Echo: {text}"}]


# -- 1. resume in another process ---------------------------------------------------------

SYSTEM = [
    {
        "type": "text",
        "text": "Tu es un assistant météo. Réponds en français — toujours.",
        "cache_control": {"type": "ephemeral", "ttl": "1h"},
    },
    {
        "type": "text",
        "text": "Règles : 温度は摂氏で答えてください。",
        "cache_control": {"type": "ephemeral"},
    },
]
TOOLS = [
    {
        "name": "get_weather",
        "description": "Météo actuelle d'une ville",
        "input_schema": {
            "type": "object",
            "properties": {
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "city": {"type": "string", "description": "ville, p. ex. Zürich"},
            },
            "required": ["city"],
        },
    }
]
TOOL_USE_ID = "toolu_resume_0001"
A_TURNS: list[Any] = [
    [
        {"type": "text", "text": "Grüß Gott ! 日本語のテキスト 🎉"},
        {
            "type": "text",
            "text": "Contexte « long » à garder en cache.",
            "cache_control": {"type": "ephemeral"},
        },
    ],
    "Quel temps fait-il à Zürich ? Ça va ?",
    [
        {
            "type": "tool_result",
            "tool_use_id": TOOL_USE_ID,
            "content": "21 °C, ensoleillé ☀",
            "cache_control": {"type": "ephemeral"},
        }
    ],
]
A_REPLIES = [
    Reply.text("Bonjour ! Ça marche — « très bien » ✓"),
    Reply.tool_use("get_weather", {"city": "Zürich"}, id=TOOL_USE_ID, text="Je regarde…"),
    Reply.text("Il fait 21 °C à Zürich ☀."),
]
B_TURN = "Et demain ? 明日の天気は"


def test_resume_in_another_process_sends_history_byte_for_byte(db_url: str) -> None:
    # The fake refuses a 1h cache marker without the beta header, on top of the check below.
    with FakeClaude(require_ttl_beta=True) as fake:
        fake.enqueue(*A_REPLIES, Reply.text("Merci, à demain 👋"))
        common = {"db_url": db_url, "base_url": fake.base_url}
        (created,) = run_job(
            "resume-a",
            {**common, "model": MODEL, "max_tokens": 512, "system": SYSTEM, "tools": TOOLS}
            | {"turns": A_TURNS},
        )
        assert len(message_requests(fake)) == 3
        run_job("resume-b", {**common, "id": created["id"], "content": B_TURN})
        requests = message_requests(fake)

    assert len(requests) == 4
    spans = [message_spans(request) for request in requests]
    assert [len(s) for s in spans] == [1, 3, 5, 7]
    # Message i was first sent in request (i + 1) // 2: a user turn with its own request,
    # an assistant turn with the next one.
    first_sent = [spans[(i + 1) // 2][i] for i in range(7)]
    b_request = spans[3]
    for i in range(6):
        assert b_request[i] == first_sent[i], f"message {i} changed on the way to process B"
    for k, sent in enumerate(spans):  # and process A's own requests agreed with each other
        assert sent == first_sent[: len(sent)], f"request {k}"

    # What those bytes say: every turn, cache markers and non-ASCII text included.
    assert json.loads(b_request[0]) == {"role": "user", "content": A_TURNS[0]}
    assert json.loads(b_request[2]) == {"role": "user", "content": A_TURNS[1]}
    assert json.loads(b_request[4]) == {"role": "user", "content": A_TURNS[2]}
    assert json.loads(b_request[6]) == {"role": "user", "content": B_TURN}
    assert text_of(b_request[1]) == [{"type": "text", "text": A_REPLIES[0].content[0]["text"]}]
    assert text_of(b_request[3]) == [
        {"type": "text", "text": "Je regarde…"},
        {"type": "tool_use", "id": TOOL_USE_ID, "name": "get_weather", "input": {"city": "Zürich"}},
    ]
    assert text_of(b_request[5]) == [{"type": "text", "text": "Il fait 21 °C à Zürich ☀."}]

    # System prompt and tools went out from process B with the same values (their bytes:
    # see test_resumed_request_head_is_byte_identical).
    first_fields, b_fields = top_level_spans(requests[0].raw), top_level_spans(requests[3].raw)
    # Process B asks why the cache missed since A's last reply (its id read from the store).
    diagnostics = json.loads(b_fields.pop("diagnostics"))
    assert first_fields.keys() == b_fields.keys()
    for field in ("model", "max_tokens"):
        assert b_fields[field] == first_fields[field], field
    assert json.loads(b_fields["system"]) == SYSTEM
    assert json.loads(b_fields["tools"]) == TOOLS
    for request in requests:
        assert ONE_HOUR_TTL_BETA in betas(request)

    # And the store holds exactly what was sent (plus B's reply).
    with Store(db_url) as store:
        stored = stored_messages(store, created["id"])
        assert [position for position, _, _ in stored] == list(range(8))
        assert [wire.encode("utf-8") for _, _, wire in stored[:7]] == first_sent
        assert text_of(stored[7][2]) == [{"type": "text", "text": "Merci, à demain 👋"}]
        assert usage_positions(store, created["id"]) == [1, 3, 5, 7]
        a_last_reply = store.get_conversation(created["id"]).usage_by_turn()[2]
        assert diagnostics == {"previous_message_id": a_last_reply.message_id}


def test_resumed_request_head_is_byte_identical(
    db_url: str, store: Store, fake: FakeClaude, client: Client, request: pytest.FixtureRequest
) -> None:
    """Everything but ``messages`` (system, tools, defaults) goes out from a process that
    reopened the conversation exactly as from the one that created it: same bytes, so
    the same prompt for the model (tool properties in the order given) and the cache."""
    params = {"temperature": 0.5, "thinking": {"type": "enabled", "budget_tokens": 1024}}
    conv = store.create_conversation(
        model=MODEL, max_tokens=2048, system=SYSTEM, tools=TOOLS, params=params
    )
    conv.send(client, "Bonjour")
    run_job(
        "resume-b",
        {"db_url": db_url, "base_url": fake.base_url, "id": conv.id, "content": B_TURN},
    )
    first, resumed = (top_level_spans(r.raw) for r in message_requests(fake))
    del first["messages"], resumed["messages"]
    # The one field added: which reply the cache-miss diagnostics compare with.
    assert "diagnostics" not in first
    assert json.loads(resumed.pop("diagnostics"))["previous_message_id"].startswith("msg_")
    for field in ("system", "tools"):
        assert resumed[field] == first[field], field
    schema = json.loads(resumed["tools"])[0]["input_schema"]
    assert list(schema["properties"]) == ["unit", "city"]  # the order the model is shown
    assert resumed == first
    assert list(resumed) == list(first)


# -- 2. concurrent senders ----------------------------------------------------------------

PROCESSES = 4
TURNS_EACH = 5


def check_conversation(
    store: Store,
    fake: FakeClaude,
    conversation_id: str,
    system: str,
    sent_by: dict[str, list[str]],
) -> None:
    """No lost, duplicated or reordered turn; each reply follows its own user turn."""
    sent = [text for texts in sent_by.values() for text in texts]
    stored = stored_messages(store, conversation_id)
    assert [position for position, _, _ in stored] == list(range(2 * len(sent)))
    assert [role for _, role, _ in stored] == ["user", "assistant"] * len(sent)
    users = [text_of(wire) for _, role, wire in stored if role == "user"]
    for (_, _, user), (_, _, assistant) in zip(stored[::2], stored[1::2], strict=True):
        assert text_of(assistant) == echo_of(text_of(user)), "a reply is not after its turn"
    assert Counter(users) == Counter(sent)
    assert len(set(users)) == len(users)
    for label, texts in sent_by.items():  # each sender's turns in the order it sent them
        assert [u for u in users if u.startswith(f"{label} ")] == texts
    assert usage_positions(store, conversation_id) == list(range(1, 2 * len(sent), 2))
    assert count_usage(store, conversation_id) == len(sent)
    assert next_position(store, conversation_id) == len(stored)
    assert lease_expiry(store, conversation_id) is None

    # Every request carried the history as stored, up to the turn it asked about: no
    # sender ever sent a stale or reordered history.
    ours = [r for r in message_requests(fake) if r.body.get("system") == system]
    assert len(ours) == len(sent)
    wires = [wire.encode("utf-8") for _, _, wire in stored]
    seen_lengths = []
    for request in ours:
        spans = message_spans(request)
        assert spans == wires[: len(spans)]
        seen_lengths.append(len(spans))
    assert sorted(seen_lengths) == list(range(1, 2 * len(sent), 2))


@pytest.mark.parametrize("mode", ["wait", "busy-retry"])
def test_concurrent_processes_keep_every_turn_in_order(
    db_url: str, store: Store, fake: FakeClaude, spawn: Callable[..., Child], mode: str
) -> None:
    """4 processes on one conversation and 4 on a conversation each, all at once.

    ``wait``: senders queue with ``send(..., wait=30)``; a ConversationBusy kills the
    child. ``busy-retry``: ``wait=0``; a busy conversation must surface as
    ConversationBusy (anything else kills the child), which is counted and the same
    turn sent again. To make a conflict certain, the first reply is held back until
    the three other senders on the shared conversation each reported one.
    """
    shared = store.create_conversation(model=MODEL, max_tokens=256, system="shared")
    solos = [
        store.create_conversation(model=MODEL, max_tokens=256, system=f"solo {i}")
        for i in range(PROCESSES)
    ]
    wait = 30.0 if mode == "wait" else None
    common = {"db_url": db_url, "base_url": fake.base_url, "count": TURNS_EACH, "wait": wait}
    targets = [(shared, f"shared p{i}") for i in range(PROCESSES)]
    targets += [(conv, f"solo p{i}") for i, conv in enumerate(solos)]
    everyone = [
        spawn("turns", {**common, "id": conv.id, "label": label}) for conv, label in targets
    ]
    sharers = everyone[:PROCESSES]
    for child in everyone:
        child.expect("ready", STARTUP)

    release = threading.Event()
    if mode == "busy-retry":
        # A responder runs under FakeClaude's lock: requests of the solo senders wait
        # behind it too, which only delays them until the release.
        def held(_: RecordedRequest) -> Reply:
            release.wait(timeout=30)
            return Reply.echo()

        fake.enqueue(held)
        sharers[0].go()
        poll(lambda: len(message_requests(fake)) == 1, 30, "the first request")
        for child in everyone[1:]:
            child.go()
        try:
            for child in sharers[1:]:
                child.expect("busy", 30)
        finally:
            release.set()
    else:
        for child in everyone:
            child.go()

    results = [child.finish(timeout=60) for child in everyone]
    for (_, label), result in zip(targets, results, strict=True):
        assert result["sent"] == [f"{label} turn {j}" for j in range(TURNS_EACH)]
    busy = [result["busy"] for result in results]
    if mode == "wait":
        assert busy == [0] * len(everyone)
    else:
        assert all(count >= 1 for count in busy[1:PROCESSES]), busy
        assert busy[PROCESSES:] == [0] * PROCESSES  # nobody else sends to a solo conversation

    sent_by = {label: result["sent"] for (_, label), result in zip(targets, results, strict=True)}
    check_conversation(
        store,
        fake,
        shared.id,
        "shared",
        {label: sent_by[label] for _, label in targets[:PROCESSES]},
    )
    for i, conv in enumerate(solos):
        check_conversation(store, fake, conv.id, f"solo {i}", {f"solo p{i}": sent_by[f"solo p{i}"]})
    assert shared.usage().requests == PROCESSES * TURNS_EACH


# -- 3. a sender killed mid-request; an HTTP error in another process ---------------------


@pytest.mark.parametrize("how", ["send", "stream"])
def test_sender_killed_mid_request_leaves_a_pending_turn_that_retry_completes(
    db_url: str,
    store: Store,
    fake: FakeClaude,
    client: Client,
    spawn: Callable[..., Child],
    how: str,
) -> None:
    """SIGKILL while the request is in flight (``send``: before any response byte;
    ``stream``: once the first text delta reached the caller).

    What this covers: a kill after ``begin`` (user turn stored, lease taken) and before
    ``finish``. A kill after the reply arrived but before it was stored is not reachable
    from outside the process; it ends the same way, since storing the reply, its usage
    row and releasing the lease is one transaction that the database rolls back for a
    dead connection (and a kill after that commit leaves a complete turn).
    """
    conv = store.create_conversation(model=MODEL, max_tokens=256, system="killed")
    content = "Turn of a doomed process — ça coupe ✂"
    if how == "send":
        fake.enqueue(Reply.echo().delayed(60))  # the server cuts it short when it closes
    else:
        # Long enough that the child is killed long before the last of its many events.
        fake.enqueue(Reply.text("Une réponse qui n'arrivera jamais en entier. " * 10).slow(0.1))
    child = spawn(
        "hang",
        {
            "db_url": db_url,
            "base_url": fake.base_url,
            "id": conv.id,
            "content": content,
            "lease_seconds": LEASE,
            "stream": how == "stream",
        },
    )
    if how == "send":
        poll(lambda: len(message_requests(fake)) == 1, STARTUP, "the child's request")
    else:
        child.expect("stream", STARTUP)
    child.proc.send_signal(signal.SIGKILL)
    assert child.proc.wait(timeout=10) == -signal.SIGKILL
    assert all(line.get("event") != "finished" for line in child.seen)

    # Consistent: the user turn stored and pending, no reply, no usage, the lease held.
    (first_request,) = message_requests(fake)
    (sent_turn,) = message_spans(first_request)
    assert stored_messages(store, conv.id) == [(0, "user", sent_turn.decode("utf-8"))]
    # The request's intent row stays: of unknown outcome (in flight while the dead
    # sender's lease runs), maybe billed.
    assert attempts(store, conv.id) == [(None, "unknown")]
    assert conv.usage().requests == 0
    assert conv.usage().unknown_attempts + conv.usage().in_flight_attempts == 1
    assert conv.pending
    assert conv.history == [Message.user(content)]
    expiry = lease_expiry(store, conv.id)
    assert expiry is not None

    # Straight away the dead sender's lease still holds the conversation (unless it
    # already ran out, then the pending turn is what refuses a new one).
    before = datetime.now(timezone.utc)
    with pytest.raises((ConversationBusy, PendingTurn)) as refused:
        conv.send(client, "too early")
    after = datetime.now(timezone.utc)
    if after < expiry:
        assert isinstance(refused.value, ConversationBusy)
        assert refused.value.conversation_id == conv.id
    elif before >= expiry:
        assert isinstance(refused.value, PendingTurn)
    assert len(stored_messages(store, conv.id)) == 1

    # Once the lease runs out, retry (waiting for it) resends the stored turn.
    reply = conv.retry(client, wait=LEASE + 30)
    assert reply.content[0].text == f"Echo: {content}"
    assert datetime.now(timezone.utc) >= expiry
    requests = message_requests(fake)
    assert len(requests) == 2
    assert message_spans(requests[1]) == [sent_turn]
    stored = stored_messages(store, conv.id)
    assert [(p, r) for p, r, _ in stored] == [(0, "user"), (1, "assistant")]
    assert text_of(stored[1][2]) == echo_of(content)
    assert attempts(store, conv.id) == [(None, "unknown"), (1, "reply")]
    assert (conv.usage().requests, conv.usage().unknown_attempts) == (1, 1)
    assert lease_expiry(store, conv.id) is None
    assert not conv.pending


@pytest.mark.parametrize(
    ("status", "error_type", "error_class"),
    [(500, "api_error", "InternalServerError"), (529, "overloaded_error", "OverloadedError")],
)
def test_http_error_in_another_process_leaves_a_pending_turn_that_retry_completes(
    db_url: str,
    store: Store,
    fake: FakeClaude,
    client: Client,
    status: int,
    error_type: str,
    error_class: str,
) -> None:
    conv = store.create_conversation(model=MODEL, max_tokens=256, system="failing")
    conv.send(client, "A first turn that works")
    fake.enqueue(Reply.error(status, error_type, "Something went wrong"))
    content = "The turn that fails — échec ✗"
    (outcome,) = run_job(
        "fail", {"db_url": db_url, "base_url": fake.base_url, "id": conv.id, "content": content}
    )
    assert outcome == {"error": error_class, "status": status}

    stored = stored_messages(store, conv.id)
    assert [(p, r) for p, r, _ in stored] == [(0, "user"), (1, "assistant"), (2, "user")]
    assert text_of(stored[2][2]) == content
    assert attempts(store, conv.id) == [(1, "reply"), (None, "failed")]  # not billed
    assert lease_expiry(store, conv.id) is None  # the failed sender gave the lease back

    # This object still holds two turns: a new turn finds the pending one and refuses.
    with pytest.raises(PendingTurn):
        conv.send(client, "Something else")
    assert conv.pending
    reply = conv.retry(client)  # no wait: nobody holds the conversation
    assert reply.content[0].text == f"Echo: {content}"

    requests = message_requests(fake)
    assert len(requests) == 3
    assert message_spans(requests[2]) == message_spans(requests[1])
    stored = stored_messages(store, conv.id)
    assert [p for p, _, _ in stored] == [0, 1, 2, 3]
    assert text_of(stored[3][2]) == echo_of(content)
    assert attempts(store, conv.id) == [(1, "reply"), (None, "failed"), (3, "reply")]
    assert conv.usage().requests == 2
