"""SIGKILL trials: a process killed anywhere in ``send``, ``stream`` or ``run`` leaves no
stuck conversation, no billed request unseen, and no completed tool call run again.

``test_sigkill_trials`` runs ``TRIALS_PER_KIND`` trials of each kind on each database
(``PARALLEL`` at a time). Each trial is one conversation. A child process
(``procs/sigkill_worker.py``) makes one call on it against the FakeClaude of this
process; the parent SIGKILLs it at a point drawn from a seeded RNG (``SEED``;
``CLUST_SIGKILL_SEED`` overrides it):

- ``start``: a random moment (0-50 ms) after the child says it starts the call;
- ``request``: while FakeClaude holds the request (its responder tells the parent it
  has it, and delays the reply; the kill lands at a random fraction of the delay);
- ``reply-sent``: just after FakeClaude began to write the reply (``send``);
- ``before-message-start`` / ``events``: a stream killed before its first event, or
  after its n-th event (FakeClaude writes one event every ``EVENT_DELAY``);
- ``after-reply``: the call returned (the child waits on its stdin, alive);
- ``approve`` / ``tool`` / ``tool-end`` / ``step`` (``run``): inside the ``approve`` hook
  of the n-th call (its reply stored, the call not started); inside the n-th tool
  execution; right around the moment a tool writes its side-effect line; inside the
  ``on_step`` hook (a step's tools done, their results turn not begun).

Where a kill really lands also depends on scheduling, so each kill is classified by
what it left (the stored rows, what FakeClaude answered and when) and the test requires
each kind of landing place to occur (``COVERAGE``). Then, from the parent, on the same conversation:

(a) not stuck: the parent does what the errors say (``send`` -> ``PendingTurn`` ->
    ``retry``; ``run`` without content resumes) with ``wait=``; its first request
    reaches FakeClaude within ``LEASE + MARGIN`` of the kill, and not before the dead
    holder's lease (read right after the kill) ran out;
(b) the ledger: every request FakeClaude answered (each one counted as billed, which
    includes every reply sent and every stream that reached ``message_start``) has a
    completed row with its request id, or is the killed child's in-flight request and
    the ledger lists exactly one attempt of unknown outcome for it; no completed row
    names a request FakeClaude never answered; each stored reply has its row;
(c) tools: the non-idempotent ``charge`` ran at most once per ``tool_use`` id; a call
    stored ``succeeded`` (at the kill or at the end) never ran again; nothing ran for
    a reply that was not stored.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import queue
import random
import re
import signal
import socket
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from store.lease_support import (
    MODEL,
    STARTUP,
    JsonLinesChild,
    database_now,
    lease_of,
    ledger,
    poll,
)
from store.procs.sigkill_worker import HOOK_SLEEP, make_tools

from clust import Client, Conversation, Store
from clust.messages import ConversationBusy, InvalidParameter, PendingTurn
from clust.protocol.retry import RetryPolicy
from clust.store.schema import MessageRow, ToolCallRow
from clust.testing import FakeClaude, RecordedRequest, Reply

WORKER = Path(__file__).resolve().parent / "procs" / "sigkill_worker.py"

SEED = int(os.environ.get("CLUST_SIGKILL_SEED", "20250611"))
TRIALS_PER_KIND = 12  # x 3 kinds = 36 trials per database
PARALLEL = 3  # trials running at once (each its own conversation, child, side file)
LEASE = 2.0  # the children's lease_seconds
MARGIN = 2.0  # beyond LEASE, for the recovery's first request (2 CPUs shared, load ~8 seen)
WAIT = LEASE + 10.0  # the recovery's ``wait=``: never what ends a green trial
START_WINDOW = 0.05
SEND_DELAY = (0.15, 0.35)  # FakeClaude holds a child's send this long
STREAM_DELAY = (0.05, 0.15)  # ... a child's stream before its first event
EVENT_DELAY = 0.02  # ... then this before each stream event
RUN_DELAY = (0.03, 0.08)  # ... each request of a child's run
TOOL_SLEEP = 0.06
RUN_STEPS = 4  # three replies asking for tools (4 executions), then the final text
CITIES = ["Paris", "Oslo", "Kyoto"]
QUESTION = re.compile(r"^Trial (\w+): ")
THANKS = "Thanks, that is all."
FILLER = "Une réponse assez longue pour un flux lent — ça coule, mot après mot, goutte à goutte."

POINTS = {
    "send": ["start", "request", "request", "reply-sent", "after-reply"],
    "stream": ["start", "before-message-start", "events", "events", "after-reply"],
    "run": ["start", "request", "approve", "tool", "tool", "tool-end", "step"],
}
NTH = {"request": 3, "approve": 4, "tool": 4, "tool-end": 4, "step": 3, "events": 20}
NTH.update({"start": 1, "reply-sent": 1, "before-message-start": 1, "after-reply": 1})
"""The largest ``n`` drawn for "the n-th such event" (each is reached in every trial)."""

LEASE_HELD = "lease held"
IN_FLIGHT = "in flight"


def _text(content: Any) -> str:
    """A turn's text: the cache policy may send a string turn as one marked text block."""
    if isinstance(content, str):
        return content
    return "".join(block.get("text", "") for block in content if block.get("type") == "text")


# -- FakeClaude's script ------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """One request FakeClaude's responder answered (after FakeClaude validated it)."""

    label: str
    request_id: str
    phase: str
    """``child`` (the process to be killed) or ``parent`` (the recovery)."""
    step: int
    content: list[dict[str, Any]]
    received: float
    billed_at: float
    """When FakeClaude starts writing the reply (a stream: its ``message_start``)."""


class Script:
    """The responder: the reply depends only on the trial and the request, and the
    children's replies are slow so that kills land inside them."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.lock = threading.Lock()
        self.kinds: dict[str, str] = {}
        self.phases: dict[str, str] = {}
        self.listeners: dict[str, queue.Queue[dict[str, Any] | None]] = {}
        self.by_label: dict[str, list[Answer]] = {}

    def answers(self, label: str) -> list[Answer]:
        with self.lock:
            return list(self.by_label.get(label, []))

    def __call__(self, request: RecordedRequest) -> Reply:
        messages = request.body["messages"]
        match = QUESTION.match(_text(messages[0]["content"]))
        assert match is not None, messages[0]
        label = match.group(1)
        with self.lock:
            kind, phase = self.kinds[label], self.phases.get(label, "parent")
            answered = self.by_label.setdefault(label, [])
            serial = len(answered)
            rng = random.Random(f"{self.seed}:{label}:{serial}")
            step = sum(1 for m in messages if m["role"] == "assistant")
            reply = self._reply(kind, label, serial, step, _text(messages[-1]["content"]))
            delay = event_delay = 0.0
            if phase == "child":
                delay = rng.uniform(
                    *{"send": SEND_DELAY, "stream": STREAM_DELAY}.get(kind, RUN_DELAY)
                )
                if request.body.get("stream"):
                    event_delay = EVENT_DELAY
                    reply = reply.slow(event_delay)
            now = time.monotonic()
            request_id = f"req_{label}_{serial:02d}"
            content = [dict(block) for block in reply.content]
            answer = Answer(label, request_id, phase, step, content, now, now + delay + event_delay)
            answered.append(answer)
            listener = self.listeners.get(label) if phase == "child" else None
        if listener is not None:
            listener.put({"event": "request", "delay": delay, "serial": serial})
        return reply.with_headers({"request-id": request_id}).delayed(delay)

    @staticmethod
    def _reply(kind: str, label: str, serial: int, step: int, last: str) -> Reply:
        if kind != "run":
            return Reply.text(f"Reply {serial} to {label}. {FILLER}")
        if last == THANKS:
            return Reply.text("You are welcome.")
        if step >= RUN_STEPS - 1:
            return Reply.text(f"The job of {label} is done.")
        names = [["charge", "lookup"], ["lookup"], ["charge"]][step]
        calls = []
        for index, name in enumerate(names):
            token = f"toolu_{label}_s{step}_c{index}_r{serial}"  # unique per reply sent
            extra = {"amount": 100 * step + index} if name == "charge" else {"city": CITIES[step]}
            calls.append((name, {"token": token, **extra}, token))
        return Reply.tool_uses(calls, text=f"Step {step}.")


# -- the child ----------------------------------------------------------------------------


class Child(JsonLinesChild):
    """``procs/sigkill_worker.py`` running; its stdout lines and the responder's
    ``request`` events for its conversation arrive in one queue, ``events``."""

    def __init__(self, config: dict[str, Any], events: queue.Queue[dict[str, Any] | None]):
        super().__init__(WORKER, config, events)
        self.events = events
        self.seen: list[dict[str, Any]] = []

    def next_event(self, deadline: float) -> dict[str, Any]:
        try:
            item = self.events.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise AssertionError(f"child stuck: no event in time\n{self.stderr()}") from None
        if item is None:
            code = self.proc.wait(timeout=10)
            raise AssertionError(f"the child exited ({code}) before its kill\n{self.stderr()}")
        self.seen.append(item)
        return item

    def kill(self) -> int:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGKILL)
        return self.proc.wait(timeout=10)


# -- reading the store --------------------------------------------------------------------


def stored_messages(store: Store, conversation_id: str) -> list[tuple[int, str, dict[str, Any]]]:
    with store.engine.connect() as connection:
        found = connection.execute(
            select(MessageRow.position, MessageRow.role, MessageRow.wire)
            .where(MessageRow.conversation_id == conversation_id)
            .order_by(MessageRow.position)
        ).all()
    return [(row[0], row[1], json.loads(row[2])) for row in found]


def tool_calls(store: Store, conversation_id: str) -> dict[str, dict[str, Any]]:
    table = ToolCallRow.__table__
    with store.engine.connect() as connection:
        found = connection.execute(
            select(table).where(table.c.conversation_id == conversation_id)
        ).all()
    return {row.tool_use_id: dict(row._mapping) for row in found}


def side_lines(path: Path) -> dict[str, list[dict[str, Any]]]:
    """The side-effect lines by token (tool_use id), in the order written."""
    by_token: dict[str, list[dict[str, Any]]] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            item = json.loads(line)
            by_token.setdefault(item["token"], []).append(item)
    return by_token


# -- one trial ----------------------------------------------------------------------------


@dataclass(frozen=True)
class KillPlan:
    kind: str
    point: str
    nth: int
    fraction: float
    prior: bool
    """``send``/``stream``: the parent sends one turn first (the child's is the second)."""


@dataclass
class Snapshot:
    """What the kill left, read right after the child died."""

    messages: list[tuple[int, str, dict[str, Any]]]
    calls: dict[str, dict[str, Any]]
    lines: dict[str, list[dict[str, Any]]]
    held_for: float
    """Seconds the dead holder's lease still ran (database clock), 0 if none."""


@dataclass
class Outcome:
    label: str
    plan: KillPlan
    landed: str = ""
    flags: set[str] = field(default_factory=set)
    held_for: float = 0.0
    first_request_after: float | None = None
    recovered_after: float = 0.0
    actions: list[str] = field(default_factory=list)
    billed: int = 0
    completed: int = 0
    unknown: int = 0
    executions: Counter[str] = field(default_factory=Counter)


class Trial:
    def __init__(
        self,
        label: str,
        plan: KillPlan,
        db_url: str,
        store: Store,
        script: Script,
        fake: FakeClaude,
        tmp: Path,
    ) -> None:
        self.label, self.plan, self.db_url = label, plan, db_url
        self.store, self.script, self.fake = store, script, fake
        self.side_file = tmp / f"side-{label}.jsonl"
        self.rng = random.Random(f"{SEED}:{label}:kill")
        self.outcome = Outcome(label, plan)
        self.question = f"Trial {label}: " + (
            "run the four-step job." if plan.kind == "run" else "a first question."
        )
        self.conv = store.create_conversation(model=MODEL, max_tokens=256, system="SIGKILL trials.")
        script.kinds[label] = plan.kind

    def client(self) -> Client:
        policy = RetryPolicy(max_retries=0)
        return Client(api_key="test-key", base_url=self.fake.base_url, retry_policy=policy)

    def run(self) -> Outcome:
        child_content = self.question
        if self.plan.prior:
            with self.client() as client:
                self.conv.send(client, self.question)
            child_content = "A second question, asked by the doomed process."
        events: queue.Queue[dict[str, Any] | None] = queue.Queue()
        with self.script.lock:
            self.script.phases[self.label] = "child"
            self.script.listeners[self.label] = events
        child = Child(
            {
                "kind": self.plan.kind,
                "db_url": self.db_url,
                "base_url": self.fake.base_url,
                "id": self.conv.id,
                "content": child_content,
                "lease_seconds": LEASE,
                "tool_sleep": TOOL_SLEEP,
                "side_file": str(self.side_file),
                "max_steps": 10,
            },
            events,
        )
        try:
            killed_at = self.kill_at_plan(child)
            at_kill = self.snapshot()
            with self.script.lock:
                self.script.phases[self.label] = "parent"
                del self.script.listeners[self.label]
            events_seen = [e for e in child.seen if e.get("event") != "request"]
        finally:
            child.close()
        self.classify(at_kill, killed_at, events_seen)
        self.recover(killed_at)
        self.verify(at_kill)
        return self.outcome

    # -- the kill ---------------------------------------------------------------------------

    def trigger(self, event: dict[str, Any]) -> tuple[str, float] | None:
        """(what fired, seconds to wait before the kill) if ``event`` is the plan's trigger."""
        point, kind, fraction = self.plan.point, event["event"], self.plan.fraction
        if point == "start" and kind == "ready":
            return "start", fraction * START_WINDOW
        if point == "after-reply" and kind == "done":
            return "done", 0.0
        if kind == "request" and point in ("request", "before-message-start"):
            return "request", 0.7 * fraction * float(event["delay"])  # well inside it
        if kind == "request" and point == "reply-sent":
            return "request", float(event["delay"]) + fraction * 0.02
        if point == "events" and kind == "event":
            return "event", fraction * EVENT_DELAY
        if point == "approve" and kind == "approve":
            return "approve", 0.8 * fraction * HOOK_SLEEP
        if point == "tool" and kind == "tool":
            return "tool", fraction * TOOL_SLEEP
        if point == "tool-end" and kind == "tool":
            return "tool", TOOL_SLEEP + self.rng.uniform(-0.003, 0.004)
        if point == "step" and kind == "step":
            return "step", 0.8 * fraction * HOOK_SLEEP
        return None

    def kill_at_plan(self, child: Child) -> float:
        """SIGKILL the child at the plan's point; the time of its death (monotonic)."""
        deadline = time.monotonic() + STARTUP
        seen: Counter[str] = Counter()
        single = self.plan.point in ("start", "after-reply", "before-message-start", "reply-sent")
        while True:
            event = child.next_event(deadline)
            fired = self.trigger(event)
            if fired is None:
                continue
            what, delay = fired
            seen[what] += 1
            if single or seen[what] == self.plan.nth:
                time.sleep(max(0.0, delay))
                code = child.kill()
                assert code == -signal.SIGKILL, f"{self.label}: exit {code}\n{child.stderr()}"
                return time.monotonic()

    def snapshot(self) -> Snapshot:
        holder, expiry = lease_of(self.store, self.conv.id)
        held_for = 0.0
        if holder is not None and expiry is not None:
            held_for = max(0.0, (expiry - database_now(self.store)).total_seconds())
        return Snapshot(
            stored_messages(self.store, self.conv.id),
            tool_calls(self.store, self.conv.id),
            side_lines(self.side_file),
            held_for,
        )

    def classify(self, at_kill: Snapshot, killed_at: float, events: list[dict[str, Any]]) -> None:
        """Where the kill landed, by what it left."""
        out = self.outcome
        out.held_for = at_kill.held_for
        if at_kill.held_for > 0:
            out.flags.add(LEASE_HELD)
        prior = 2 if self.plan.prior else 0
        messages = at_kill.messages
        if len(messages) == prior:
            out.landed = "before the first turn was stored"
            return
        position, role, wire = messages[-1]
        if role == "user":
            out.flags.add(IN_FLIGHT)  # begin committed, finish not: one open attempt
            mine = [a for a in self.script.answers(self.label) if a.phase == "child"]
            answer = next((a for a in mine if a.step == position // 2), None)
            if answer is None:
                out.landed = "after begin, before FakeClaude had the request"
            elif any(e.get("type") == "message_start" for e in events):
                out.landed = "mid-stream, after message_start"
            elif killed_at < answer.billed_at:
                out.landed = "during the request (FakeClaude holding it)"
            else:
                out.landed = "after the reply was sent, before it was stored"
            return
        tool_ids = [b["id"] for b in wire["content"] if b["type"] == "tool_use"]
        if not tool_ids:
            out.landed = "after the reply was stored"
            return
        statuses = [at_kill.calls.get(i, {}).get("status", "none") for i in tool_ids]
        if "running" in statuses:
            running = [i for i in tool_ids if at_kill.calls[i]["status"] == "running"]
            done = any(
                len(at_kill.lines.get(i, [])) == at_kill.calls[i]["attempts"] for i in running
            )
            out.landed = "inside a tool" + (" (line written, result not stored)" if done else "")
        elif all(s in ("succeeded", "failed") for s in statuses):
            out.landed = "after the tools, before their results turn"
        else:
            out.landed = "after a tool_use reply, before its tools ran"

    # -- (a) the recovery -------------------------------------------------------------------

    def recover(self, killed_at: float) -> None:
        conv = self.store.get_conversation(self.conv.id)  # as a new process would
        with self.client() as client:
            if self.plan.kind == "run":
                self.resume_run(conv, client)
            else:
                try:
                    self.turn(conv, client, "And now the next question.")
                except PendingTurn:
                    self.outcome.actions.append("PendingTurn -> retry")
                    self.turn(conv, client, None)
                    self.turn(conv, client, "And now the next question.")
        out = self.outcome
        out.recovered_after = time.monotonic() - killed_at
        mine = [a for a in self.script.answers(self.label) if a.phase == "parent"]
        first = min((a.received for a in mine if a.received > killed_at), default=None)
        out.first_request_after = None if first is None else first - killed_at

    def turn(self, conv: Conversation, client: Client, content: str | None) -> None:
        """One turn the way this trial's kind makes it (``None``: resend the pending one)."""
        if self.plan.kind == "stream":
            with conv.stream(client, content, wait=WAIT) as stream:
                stream.get_final_message()
        elif content is None:
            conv.retry(client, wait=WAIT)
        else:
            conv.send(client, content, wait=WAIT)

    def resume_run(self, conv: Conversation, client: Client) -> None:
        def note(**fields: Any) -> None:
            self.outcome.executions[fields["tool"]] += 1

        tools = make_tools(str(self.side_file), TOOL_SLEEP, note)
        try:
            result = conv.run(client, tools=tools, max_steps=10, wait=WAIT)
        except InvalidParameter as refused:
            if "conversation is empty" in str(refused.allowed):
                self.outcome.actions.append("empty -> run(question)")
                result = conv.run(client, self.question, tools=tools, max_steps=10, wait=WAIT)
            else:  # the run had finished: nothing to resume
                assert "nothing to resume" in str(refused.allowed), refused
                self.outcome.actions.append("nothing to resume")
                result = None
        if result is not None:
            assert (result.stop, result.text) == ("end_turn", f"The job of {self.label} is done.")
        assert conv.send(client, THANKS, wait=WAIT).text() == "You are welcome."

    # -- the checks: (a) the timing, (b) the ledger, (c) the tools ----------------------------

    def verify(self, at_kill: Snapshot) -> None:
        label, out = self.label, self.outcome
        assert lease_of(self.store, self.conv.id) == (None, None), label
        # (a) The first recovery request went out once the dead holder's lease ran out.
        assert out.first_request_after is not None, (label, out)
        assert out.first_request_after <= LEASE + MARGIN, (label, out)
        assert out.held_for <= LEASE + 0.2, (label, out)  # renewed at most LEASE ahead
        if LEASE_HELD in out.flags:
            assert out.first_request_after >= out.held_for - 0.3, (label, out)

        messages = stored_messages(self.store, self.conv.id)
        assert [p for p, _, _ in messages] == list(range(len(messages))), label
        assert [r for _, r, _ in messages] == ["user", "assistant"] * (len(messages) // 2), label
        assert messages[0][2]["content"] in (
            self.question,
            [{"type": "text", "text": self.question}],
        )

        # (b) Every answered request is billed: a completed row, or the one open attempt.
        answers = {a.request_id: a for a in self.script.answers(label)}
        rows = ledger(self.store, self.conv.id)
        outcomes = Counter(row["outcome"] for row in rows)
        assert set(outcomes) <= {"reply", "unknown"}, (label, outcomes)
        completed = [row for row in rows if row["outcome"] != "unknown"]
        ids = [row["request_id"] for row in completed]
        assert len(set(ids)) == len(ids), (label, ids)
        assert set(ids) <= set(answers), f"{label}: a completed row for a request never answered"
        for row in completed:
            position = row["message_position"]
            assert messages[position][1] == "assistant", (label, row)
            assert messages[position][2]["content"] == answers[row["request_id"]].content, label
        replies = sorted(row["message_position"] for row in completed)
        assert replies == list(range(1, len(messages), 2)), (label, replies)
        unseen = [a for rid, a in answers.items() if rid not in ids]
        expected_unknown = 1 if IN_FLIGHT in out.flags else 0
        assert outcomes["unknown"] == expected_unknown, (label, out.landed, outcomes)
        assert len(unseen) <= outcomes["unknown"], (label, unseen)
        assert all(a.phase == "child" for a in unseen), (label, unseen)
        assert len(completed) + outcomes["unknown"] >= len(answers), label
        totals = self.conv.usage()
        assert (totals.requests, totals.unknown_attempts, totals.in_flight_attempts) == (
            len(completed),
            expected_unknown,
            0,
        ), label
        out.billed, out.completed, out.unknown = len(answers), len(completed), outcomes["unknown"]

        if self.plan.kind == "run":
            self.verify_tools(messages, at_kill)

    def verify_tools(
        self, messages: list[tuple[int, str, dict[str, Any]]], at_kill: Snapshot
    ) -> None:
        label = self.label
        calls = tool_calls(self.store, self.conv.id)
        lines = side_lines(self.side_file)
        stored_ids: list[str] = []
        for position, role, wire in messages:
            if role != "assistant":
                continue
            uses = [b for b in wire["content"] if b["type"] == "tool_use"]
            if not uses:
                continue
            results = messages[position + 1][2]["content"]
            assert [b["tool_use_id"] for b in results] == [b["id"] for b in uses], label
            for use, result in zip(uses, results, strict=True):
                self.check_call(use["id"], calls[use["id"]], result, lines.get(use["id"], []))
                stored_ids.append(use["id"])
        assert sorted(calls) == sorted(stored_ids), f"{label}: a call row for no stored reply"
        assert set(lines) <= set(stored_ids), f"{label}: a tool ran for a reply never stored"
        for tool_id, row in at_kill.calls.items():  # succeeded before the kill: never again
            if row["status"] == "succeeded":
                assert lines[tool_id] == at_kill.lines[tool_id], (label, tool_id)

    def check_call(
        self, tool_id: str, row: dict[str, Any], result: dict[str, Any], done: list[dict[str, Any]]
    ) -> None:
        label, executions = self.label, self.outcome.executions
        assert json.loads(row["result"]) == result["content"], (label, row, result)
        assert bool(row["is_error"]) == bool(result.get("is_error")), (label, row)
        if row["name"] == "charge":  # not idempotent: at most once, ever
            assert len(done) <= 1, (label, tool_id, done)
            if row["status"] == "succeeded":
                assert len(done) == 1 and row["attempts"] == 1, (label, row, done)
                assert result["content"].endswith(f"nonce={done[0]['nonce']}"), label
                executions["charge succeeded once"] += 1
            else:
                assert row["error"] == "interrupted while running", (label, row)
                executions[f"charge interrupted ({len(done)} line)"] += 1
        else:  # idempotent: run again only after an interruption, never after its success
            assert row["status"] == "succeeded", (label, row)
            assert 1 <= len(done) <= row["attempts"], (label, row, done)
            assert result["content"].endswith(f"nonce={done[-1]['nonce']}"), (label, done)
            executions[f"lookup ran {len(done)}x"] += 1


# -- the trials -----------------------------------------------------------------------------


def plans(seed: int, kind: str) -> list[KillPlan]:
    """``TRIALS_PER_KIND`` plans of one kind: its points dealt in turn (every point
    equally often, give or take one) in a seeded order; every other ``send``/``stream``
    trial after a first turn."""
    rng = random.Random(f"{seed}:{kind}")
    deck = (POINTS[kind] * TRIALS_PER_KIND)[:TRIALS_PER_KIND]
    rng.shuffle(deck)
    return [
        KillPlan(
            kind=kind,
            point=point,
            nth=rng.randint(1, NTH[point] if kind == "run" or point == "events" else 1),
            fraction=rng.random(),
            prior=kind != "run" and index % 2 == 1,
        )
        for index, point in enumerate(deck)
    ]


INSIDE_A_TOOL = "inside a tool"
BETWEEN_STEPS = (
    "after a tool_use reply, before its tools ran",
    "after the tools, before their results turn",
)
COVERAGE = {
    "send": {"during the request (FakeClaude holding it)": 2, "after the reply was stored": 2},
    "stream": {"mid-stream, after message_start": 2, "after the reply was stored": 2},
    "run": {INSIDE_A_TOOL: 3, BETWEEN_STEPS[0]: 1, BETWEEN_STEPS[1]: 1},
}
"""The least number of kills each kind of trial must land at these places (a place
ending in "inside a tool" counts both variants)."""


@pytest.mark.parametrize("kind", ["send", "stream", "run"])
def test_sigkill_trials(db_url: str, tmp_path: Path, kind: str) -> None:
    backend = "pg" if db_url.startswith("postgresql") else "sqlite"
    script = Script(SEED)
    started = time.monotonic()
    with FakeClaude() as fake, Store(db_url) as store:
        fake.set_responder(script)
        trials = [
            Trial(f"{backend}{kind}{index:02d}", plan, db_url, store, script, fake, tmp_path)
            for index, plan in enumerate(plans(SEED, kind))
        ]
        with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
            outcomes = list(pool.map(Trial.run, trials))
    elapsed = time.monotonic() - started

    landed = Counter(o.landed for o in outcomes)
    executions: Counter[str] = Counter()
    for o in outcomes:
        executions.update(o.executions)
    held = sum(LEASE_HELD in o.flags for o in outcomes)
    summary = {
        "trials": f"{len(outcomes)} {kind} on {backend}",
        "planned": dict(Counter(o.plan.point for o in outcomes)),
        "landed": dict(landed),
        "lease held at the kill": held,
        "billed / completed / unknown": [
            sum(o.billed for o in outcomes),
            sum(o.completed for o in outcomes),
            sum(o.unknown for o in outcomes),
        ],
        "first request after the kill (max)": max(o.first_request_after or 0 for o in outcomes),
        "... after the lease ran out (sorted)": sorted(
            round((o.first_request_after or 0) - o.held_for, 2) for o in outcomes
        ),
        "recovered after (max)": max(o.recovered_after for o in outcomes),
        "actions": dict(Counter(a for o in outcomes for a in o.actions)),
        "tool calls": dict(executions),
        "seconds": round(elapsed, 1),
    }
    print(json.dumps(summary, indent=2, ensure_ascii=False))

    # The kills landed where claimed: counted by what they left, not by the plan.
    assert len(outcomes) == TRIALS_PER_KIND
    for place, least in COVERAGE[kind].items():
        hits = sum(n for where, n in landed.items() if where.startswith(place))
        assert hits >= least, (place, summary)
    assert sum(IN_FLIGHT in o.flags for o in outcomes) >= 2, summary  # a request cut off
    assert held >= TRIALS_PER_KIND // 2, summary  # recoveries that had to wait for the lease
    if kind == "run":
        interrupted = sum(n for what, n in executions.items() if what.startswith("charge interr"))
        assert interrupted >= 1, summary


# -- the default lease, for a holder that died --------------------------------------------


def utc(moment: datetime) -> datetime:
    """A stored time as an aware UTC datetime (SQLite gives naive ones)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def test_a_killed_holder_keeps_the_default_30_s_lease_until_the_time_the_database_says(
    db_url: str, store: Store
) -> None:
    """The store's default ``lease_seconds`` is 30: a sender killed mid-request leaves a
    lease that runs out 20-30 s after its death (renewed every 10 s while it lived), at
    the ``lease_expires_at`` the database holds, which ``ConversationBusy`` reports.
    Not waited for: the test reads it, then breaks the lease as an operator would."""
    assert inspect.signature(Store).parameters["lease_seconds"].default == 30.0
    conv = store.create_conversation(model=MODEL, max_tokens=64)
    started = time.monotonic()
    with FakeClaude() as fake:
        fake.enqueue(Reply.echo().delayed(60))  # never answered in time: killed first
        events: queue.Queue[dict[str, Any] | None] = queue.Queue()
        child = Child(
            {
                "kind": "send",
                "db_url": db_url,
                "base_url": fake.base_url,
                "id": conv.id,
                "content": "doomed",
                "lease_seconds": None,
            },
            events,
        )
        try:
            pid = child.next_event(time.monotonic() + STARTUP)["pid"]
            poll(lambda: len(fake.requests) == 1, STARTUP, "the child's request")
            assert child.kill() == -signal.SIGKILL
        finally:
            child.close()
        died = database_now(store)

        holder, expiry = lease_of(store, conv.id)
        assert holder is not None and holder.startswith(f"{socket.gethostname()[:32]}:{pid}:")
        assert expiry is not None
        left = (expiry - died).total_seconds()
        assert 20.0 - 1.0 <= left <= 30.0, left
        [attempt] = ledger(store, conv.id)
        assert attempt["outcome"] == "unknown" and attempt["holder"] == holder
        begun = utc(attempt["started_at"])
        assert 29.0 <= (expiry - begun).total_seconds() <= 30.5  # one lease, not yet renewed

        with Client(api_key="test-key", base_url=fake.base_url) as client:
            with pytest.raises(ConversationBusy) as busy:
                conv.send(client, "too early")
            assert busy.value.holder == holder
            assert isinstance(busy.value.expires_at, datetime)
            assert utc(busy.value.expires_at) == expiry
            # Until it runs out the dead holder's attempt counts as in flight.
            totals = conv.usage()
            assert (totals.unknown_attempts, totals.in_flight_attempts) == (0, 1)

            assert store.break_lease(conv.id)
            with pytest.raises(PendingTurn):
                conv.send(client, "too early")
            assert conv.retry(client).text() == "Echo: doomed"
        totals = conv.usage()
        assert (totals.requests, totals.unknown_attempts, totals.in_flight_attempts) == (1, 1, 0)
    assert time.monotonic() - started < 25.0  # nothing waited for the 30 s
