"""Crash test of the tool loop (issue 6): SIGKILL a 10-step ``run`` anywhere, finish it
in a new process, and check that no work was lost or repeated.

Each trial is one conversation. A child process (``procs/tool_loop_child.py``) runs
``conv.run(client, question, tools=[charge, lookup], max_steps=10)`` (some processes
``arun``) against the FakeClaude of this process, which answers 9 ``tool_use`` replies
(three of them with two parallel calls) and then a text reply. The parent SIGKILLs the
child at a point drawn from a seeded RNG:

- ``request``: while FakeClaude holds the n-th request of the child (replies are
  delayed 10-50 ms and the responder tells the parent when it has the request);
- ``approve``: inside the ``approve`` hook, when the calls of a reply are recorded
  as pending and none has started;
- ``tool`` / ``tool-end``: inside the n-th tool execution (tools sleep 30 ms, then
  write their side-effect line and return), ``tool-end`` right around the moment the
  line is written and the result is being stored;
- ``random``: a random time after the child said it calls ``run``.

Then ``run()`` without content in a new process, possibly killed again (1 to 4 kills
per trial), until a process finishes the loop. The checks, per trial:

- each side-effect line is one completed execution of one ``tool_use`` id (the id is
  the ``token`` input): the non-idempotent tool ran at most once per id, and when its
  result was stored as a success, exactly once and that execution's result is stored;
  the idempotent tool may have run more than once (only after interruptions), but
  the stored result is the last execution's, so nothing ran after a stored result;
  no tool ever ran for a reply that was not stored;
- the stored history alternates user/assistant, every ``tool_use`` is answered by
  exactly one ``tool_result`` in the next turn, in order, equal to the stored call
  row; every request FakeClaude received was valid (the responder, which runs only
  after FakeClaude's validation, saw each one) and carried a prefix of the final
  history; one more turn sent afterwards is accepted;
- usage rows: one per stored assistant turn, at its position, each carrying the
  request id FakeClaude gave the request that produced exactly that reply.

``db_url`` (tests/tools/conftest.py, from the store tests) runs the test on an SQLite
file and on PostgreSQL. Kill points and times are reproducible from ``SEED``
(``CLUST_CRASH_SEED`` overrides it); where a kill really lands also depends on
scheduling, so the test classifies each kill by the state it left and requires each
kind of crash point to occur.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from clust import Client, Store
from clust.protocol.retry import RetryPolicy
from clust.store.schema import ConversationRow, MessageRow, ToolCallRow, UsageRow
from clust.testing import FakeClaude, RecordedRequest, Reply

ROOT = Path(__file__).resolve().parents[2]
CHILD = Path(__file__).resolve().parent / "procs" / "tool_loop_child.py"

SEED = int(os.environ.get("CLUST_CRASH_SEED", "20250606"))
TRIALS = 16  # per database: 32 in all
PARALLEL = 4  # trials running at once (each its own conversation and side file)
STEPS = 10  # 9 tool_use replies, then the final text
TOOL_SLEEP = 0.03
APPROVE_SLEEP = 0.01
REPLY_DELAY = (0.01, 0.05)
RANDOM_WINDOW = 0.6  # seconds after "start" for a kill at a random time
LEASE = 0.5  # a child killed mid-request holds the conversation this long
STARTUP = 60.0  # seconds a child may take to import clust and start (2 CPUs, 4 at once)
MODEL = "claude-sonnet-5-5"
CITIES = ["Paris", "Oslo", "Zürich", "Kyoto", "Lima", "Cairo", "Perth", "Quito", "Baku"]
KILL_POINTS = ["request", "approve", "tool", "tool", "tool-end", "random"]
QUESTION = re.compile(r"^Trial (\w+): ")
THANKS = "Thanks, that is all."


def _text(content: Any) -> str:
    """A turn's text: the cache policy may send a string turn as one marked text block."""
    if isinstance(content, str):
        return content
    return "".join(block.get("text", "") for block in content if block.get("type") == "text")


# -- FakeClaude's script: stateless, keyed on the request -----------------------------------


def calls_for(label: str, step: int, serial: int) -> list[tuple[str, dict[str, Any], str]]:
    """The tool calls of reply ``step``: steps 2, 5 and 8 ask for both tools at once.

    Ids are unique per reply (``serial`` counts the responder's answers), so a reply
    that was sent but never stored cannot be confused with the one sent again.
    """
    names = {0: ["charge"], 1: ["lookup"], 2: ["charge", "lookup"]}[step % 3]
    calls = []
    for index, name in enumerate(names):
        tool_id = f"toolu_{label}_s{step}_c{index}_r{serial}"
        tool_input: dict[str, Any] = {"token": tool_id}
        if name == "charge":
            tool_input["amount"] = 100 * step + index
        else:
            tool_input["city"] = CITIES[step]
        calls.append((name, tool_input, tool_id))
    return calls


def final_text(label: str) -> str:
    return f"All ten steps of {label} are done."


@dataclass(frozen=True)
class Answer:
    """One reply the responder gave (FakeClaude validated the request before asking)."""

    label: str
    request_id: str
    step: int
    tool_ids: list[str]
    text: str | None
    delay: float


class Script:
    """The responder: the reply depends only on the request (how many assistant turns
    it holds), so a resent request after a crash gets the reply of its step."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.lock = threading.Lock()
        self.answers: dict[str, Answer] = {}
        self.by_label: dict[str, list[Answer]] = {}
        self.listeners: dict[str, queue.Queue[dict[str, Any] | None]] = {}

    def __call__(self, request: RecordedRequest) -> Reply:
        messages = request.body["messages"]
        match = QUESTION.match(_text(messages[0]["content"]))
        assert match is not None, messages[0]
        label = match.group(1)
        with self.lock:
            serial = len(self.by_label.setdefault(label, []))
            request_id = f"req_{label}_{serial:03d}"
            delay = random.Random(f"{self.seed}:{label}:{serial}").uniform(*REPLY_DELAY)
            step = sum(1 for m in messages if m["role"] == "assistant")
            tool_ids: list[str] = []
            reply_text: str | None = None
            if _text(messages[-1]["content"]) == THANKS:
                reply_text = "You are welcome."
                reply = Reply.text(reply_text)
            elif step < STEPS - 1:
                calls = calls_for(label, step, serial)
                tool_ids = [tool_id for _, _, tool_id in calls]
                reply = Reply.tool_uses(calls, text=f"Step {step}.")
            else:
                reply_text = final_text(label)
                reply = Reply.text(reply_text)
            answer = Answer(label, request_id, step, tool_ids, reply_text, delay)
            self.answers[request_id] = answer
            self.by_label[label].append(answer)
            listener = self.listeners.get(label)
        if listener is not None:
            listener.put({"event": "request", "step": step, "delay": delay})
        return reply.with_headers({"request-id": request_id}).delayed(delay)


# -- child processes ------------------------------------------------------------------------


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["PYTHONIOENCODING"] = "utf-8"
    return env


class Child:
    """A child whose stdout lines, and the responder's ``request`` events for its
    conversation, arrive in one queue."""

    def __init__(self, config: dict[str, Any], events: queue.Queue[dict[str, Any] | None]):
        self.events = events
        self.proc = subprocess.Popen(
            [sys.executable, str(CHILD), json.dumps(config)],
            cwd=ROOT,
            env=child_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            bufsize=1,
        )
        self.seen: list[dict[str, Any]] = []
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
                self.events.put(json.loads(line))
            except ValueError:
                self.events.put({"event": "text", "line": line})
        self.events.put(None)

    def _pump_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._stderr.append(line)

    def stderr(self) -> str:
        self._pumps[1].join(timeout=5)
        return "".join(self._stderr)

    def next_event(self, deadline: float) -> dict[str, Any] | None:
        """The next event; ``None`` once the child's stdout closed (it exited)."""
        try:
            item = self.events.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            message = f"child stuck: no event before the deadline\n{self.stderr()}"
            raise AssertionError(message) from None
        if item is not None:
            self.seen.append(item)
        return item

    def drain(self) -> None:
        """Read the events left in the queue (after :meth:`close`)."""
        while True:
            try:
                item = self.events.get_nowait()
            except queue.Empty:
                return
            if item is not None and item.get("event") != "request":
                self.seen.append(item)

    def kill(self) -> int:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGKILL)
        return self.proc.wait(timeout=10)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        for pump in self._pumps:
            pump.join(timeout=5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


# -- a trial ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class KillPlan:
    point: str
    nth: int
    fraction: float
    mode: str


def _without_cache_control(value: Any) -> Any:
    """``value`` without cache markers; string content as the one text block the cache
    policy turns it into when it marks that turn."""
    if isinstance(value, dict):
        if isinstance(value.get("content"), str) and "role" in value:
            value = {**value, "content": [{"type": "text", "text": value["content"]}]}
        return {k: _without_cache_control(v) for k, v in value.items() if k != "cache_control"}
    if isinstance(value, list):
        return [_without_cache_control(item) for item in value]
    return value


@dataclass
class TrialReport:
    label: str
    planned: list[KillPlan]
    kills: list[str] = field(default_factory=list)
    """The state each kill left (see :func:`classify`)."""
    missed: int = 0
    processes: int = 0
    stats: Counter[str] = field(default_factory=Counter)


def kill_deck(seed: int, size: int) -> Iterator[str]:
    """Kill points dealt to the trials in turn: every kind equally often, in a seeded
    order (drawing each independently can leave a kind out of a whole run)."""
    deck = KILL_POINTS * (size // len(KILL_POINTS) + 1)
    random.Random(seed).shuffle(deck)
    return iter(deck)


def plan_trial(rng: random.Random, deck: Iterator[str]) -> list[KillPlan]:
    count = rng.choice([1, 2, 2, 3, 3])
    return [
        KillPlan(
            point=next(deck),
            nth=rng.randint(1, 3),
            fraction=rng.random(),
            mode="async" if rng.random() < 0.3 else "sync",
        )
        for _ in range(count)
    ]


def kill_delay(plan: KillPlan, event: dict[str, Any], rng: random.Random) -> float | None:
    """Seconds to wait before the kill if ``event`` is the trigger kind, else ``None``."""
    kind = event.get("event")
    if plan.point == "random" and kind == "start":
        return plan.fraction * RANDOM_WINDOW
    if plan.point == "request" and kind == "request":
        return float(plan.fraction * event["delay"])
    if plan.point == "approve" and kind == "approve":
        return plan.fraction * APPROVE_SLEEP
    if plan.point == "tool" and kind == "tool":
        return plan.fraction * TOOL_SLEEP
    if plan.point == "tool-end" and kind == "tool":
        return TOOL_SLEEP + rng.uniform(-0.002, 0.004)
    return None


class Trial:
    def __init__(
        self,
        label: str,
        db_url: str,
        store: Store,
        script: Script,
        fake: FakeClaude,
        tmp: Path,
        deck: Iterator[str],
    ) -> None:
        self.label = label
        self.db_url = db_url
        self.store = store
        self.script = script
        self.fake = fake
        self.question = f"Trial {label}: run the ten-step job, one tool step at a time."
        self.side_file = tmp / f"side-{label}.jsonl"
        self.conv = store.create_conversation(model=MODEL, max_tokens=512, system="Tool runner.")
        self.rng = random.Random(f"{SEED}:{label}")
        self.report = TrialReport(label, plan_trial(self.rng, deck))
        self.answers_at_start = 0

    def config(self, mode: str) -> dict[str, Any]:
        empty = not stored_messages(self.store, self.conv.id)
        return {
            "db_url": self.db_url,
            "base_url": self.fake.base_url,
            "id": self.conv.id,
            "content": self.question if empty else None,
            "mode": mode,
            "max_steps": STEPS,
            "wait": 30.0,
            "lease_seconds": LEASE,
            "tool_sleep": TOOL_SLEEP,
            "approve_sleep": APPROVE_SLEEP,
            "side_file": str(self.side_file),
        }

    def start(self, mode: str) -> Child:
        events: queue.Queue[dict[str, Any] | None] = queue.Queue()
        with self.script.lock:
            self.script.listeners[self.label] = events
            self.answers_at_start = len(self.script.by_label.get(self.label, []))
        self.report.processes += 1
        return Child(self.config(mode), events)

    def run(self) -> TrialReport:
        for plan in self.report.planned:
            child = self.start(plan.mode)
            try:
                if self.run_until_kill(child, plan):
                    self.report.kills.append(self.classify())
                    continue
            finally:
                child.close()
            self.report.missed += 1  # the loop finished before the kill point
            self.check_done(child)
            break
        else:
            child = self.start("sync" if self.rng.random() < 0.7 else "async")
            try:
                self.finish(child)
            finally:
                child.close()
            self.check_done(child)
        self.verify()
        return self.report

    def run_until_kill(self, child: Child, plan: KillPlan) -> bool:
        """Wait for the plan's trigger, then SIGKILL; ``False`` if the child finished first."""
        deadline = time.monotonic() + STARTUP
        seen = 0
        while True:
            event = child.next_event(deadline)
            if event is None:
                return False
            delay = kill_delay(plan, event, self.rng)
            if delay is None:
                continue
            seen += 1
            if plan.point == "random" or seen == plan.nth:
                time.sleep(max(0.0, delay))
                code = child.kill()
                if code == 0:
                    return False  # it exited on its own just before the signal
                assert code == -signal.SIGKILL, f"{self.label}: exit {code}\n{child.stderr()}"
                return True

    def finish(self, child: Child) -> None:
        deadline = time.monotonic() + STARTUP
        while child.next_event(deadline) is not None:
            pass

    def check_done(self, child: Child) -> None:
        code = child.proc.wait(timeout=30)
        child.drain()
        assert code == 0, f"{self.label}: the finishing run exited {code}\n{child.stderr()}"
        done = [event for event in child.seen if event.get("event") == "done"]
        assert len(done) == 1, child.seen
        assert done[0]["stop"] == "end_turn", done[0]
        assert done[0]["text"] == final_text(self.label)

    # -- what a kill left ------------------------------------------------------------------

    def classify(self) -> str:
        messages = stored_messages(self.store, self.conv.id)
        if not messages:
            return "before the first turn was stored"
        position, role, wire = messages[-1]
        if role == "user":
            with self.script.lock:
                answers = self.script.by_label.get(self.label, [])[self.answers_at_start :]
            if any(answer.step == position // 2 for answer in answers):
                return "during request (at FakeClaude)"
            return "during request (not at FakeClaude yet)"
        blocks = json.loads(wire)["content"]
        tool_ids = [b["id"] for b in blocks if b["type"] == "tool_use"]
        if not tool_ids:
            return "after the final reply"
        calls = tool_calls(self.store, self.conv.id)
        statuses = [calls[i]["status"] if i in calls else "none" for i in tool_ids]
        if "running" in statuses:
            lines = side_lines(self.side_file)
            written = [i for i in tool_ids if calls.get(i, {}).get("status") == "running"]
            if any(lines.get(i) and calls[i]["attempts"] == len(lines[i]) for i in written):
                return "during tool execution (line written, result not stored)"
            return "during tool execution"
        if all(status in ("succeeded", "failed") for status in statuses):
            return "after tools, before the results turn"
        return "before tool execution"

    # -- the checks ------------------------------------------------------------------------

    def verify(self) -> None:
        label = self.label
        messages = stored_messages(self.store, self.conv.id)
        assert [p for p, _, _ in messages] == list(range(2 * STEPS)), label
        assert [r for _, r, _ in messages] == ["user", "assistant"] * STEPS, label
        wires = [json.loads(w) for _, _, w in messages]
        assert wires[0]["content"] == self.question

        usage = usage_rows(self.store, self.conv.id)
        assert [p for p, _ in usage] == list(range(1, 2 * STEPS, 2)), (label, usage)
        request_ids = [rid for _, rid in usage]
        assert len(set(request_ids)) == len(request_ids), request_ids
        calls = tool_calls(self.store, self.conv.id)
        lines = side_lines(self.side_file)
        all_ids: list[str] = []
        for step in range(STEPS):
            assistant = wires[2 * step + 1]["content"]
            answer = self.script.answers[request_ids[step]]  # FakeClaude answered it
            assert (answer.label, answer.step) == (label, step)
            tool_ids = [b["id"] for b in assistant if b["type"] == "tool_use"]
            assert tool_ids == answer.tool_ids, (label, step)
            if step == STEPS - 1:
                assert [b["text"] for b in assistant] == [final_text(label)]
                continue
            results = wires[2 * step + 2]["content"]
            assert [b["type"] for b in results] == ["tool_result"] * len(tool_ids)
            assert [b["tool_use_id"] for b in results] == tool_ids, (label, step)
            for block in results:
                self.check_call(block, calls[block["tool_use_id"]], lines, 2 * step + 1)
            all_ids += tool_ids
        assert sorted(calls) == sorted(all_ids), "a call row for a tool_use not in the history"
        assert set(lines) <= set(all_ids), "a tool ran for a reply that was never stored"
        self.check_requests(messages)
        assert lease_holder(self.store, self.conv.id) is None

        # The history as stored is valid: one more turn goes through.
        with Client(
            api_key="test-key",
            base_url=self.fake.base_url,
            retry_policy=RetryPolicy(max_retries=0),
        ) as client:
            reply = self.conv.send(client, THANKS)
        assert reply.text() == "You are welcome."
        assert [p for p, _ in usage_rows(self.store, self.conv.id)][-1] == 2 * STEPS + 1
        self.check_requests(stored_messages(self.store, self.conv.id))

    def check_call(
        self,
        block: dict[str, Any],
        row: dict[str, Any],
        lines: dict[str, list[dict[str, Any]]],
        position: int,
    ) -> None:
        tool_id = block["tool_use_id"]
        done = lines.get(tool_id, [])
        assert row["message_position"] == position
        assert row["status"] in ("succeeded", "failed"), row
        assert json.loads(row["result"]) == block["content"], (row, block)
        assert bool(row["is_error"]) == bool(block.get("is_error")), (row, block)
        assert len({line["nonce"] for line in done}) == len(done)
        stats = self.report.stats
        if row["name"] == "charge":  # not idempotent: never run twice
            assert len(done) <= 1, (tool_id, done)
            if row["status"] == "succeeded":
                assert len(done) == 1 and row["attempts"] == 1, (row, done)
                assert block["content"].endswith(f"nonce={done[0]['nonce']}")
                stats["charge ran once"] += 1
            else:
                assert row["error"] == "interrupted while running", row
                assert "interrupted" in block["content"]
                assert row["attempts"] == 1, row
                stats[f"charge interrupted ({len(done)} line)"] += 1
        else:  # idempotent: may run again after an interruption, never after a success
            assert row["status"] == "succeeded" and not row["is_error"], row
            assert 1 <= len(done) <= row["attempts"], (row, done)
            assert block["content"].endswith(f"nonce={done[-1]['nonce']}"), (block, done)
            stats[f"lookup attempts={row['attempts']} lines={len(done)}"] += 1

    def check_requests(self, messages: list[tuple[int, str, str]]) -> None:
        """Every request of this trial was valid and carried a prefix of the history."""
        history = [json.loads(wire) for _, _, wire in messages]
        ours = []
        for request in self.fake.requests:
            if request.method != "POST" or request.path != "/v1/messages":
                continue
            if request.body is None:  # the child died while writing it
                expected = int(request.header("content-length") or 0)
                assert len(request.raw) < expected, request.raw[:200]
                continue
            if QUESTION.match(request.body["messages"][0]["content"]).group(1) == self.label:
                ours.append(request)
        answered = self.script.by_label[self.label]
        assert len(ours) == len(answered), "FakeClaude rejected a request"
        for request in ours:
            # The conversation's cache policy marks the newest turn in the request only.
            sent = _without_cache_control(request.body["messages"])
            stored = _without_cache_control(history[: len(sent)])
            assert sent == stored, "a request carried a history not stored"
            assert sent[-1]["role"] == "user"


# -- reading the store ----------------------------------------------------------------------


def stored_messages(store: Store, conversation_id: str) -> list[tuple[int, str, str]]:
    with store.engine.connect() as connection:
        rows = connection.execute(
            select(MessageRow.position, MessageRow.role, MessageRow.wire)
            .where(MessageRow.conversation_id == conversation_id)
            .order_by(MessageRow.position)
        ).all()
    return [(row[0], row[1], row[2]) for row in rows]


def usage_rows(store: Store, conversation_id: str) -> list[tuple[int | None, str | None]]:
    """The ledger's completed rows (a request cut short by SIGKILL leaves its attempt
    row ``unknown``: maybe billed, never completed)."""
    with store.engine.connect() as connection:
        rows = connection.execute(
            select(UsageRow.message_position, UsageRow.request_id)
            .where(UsageRow.conversation_id == conversation_id, UsageRow.outcome != "unknown")
            .order_by(UsageRow.message_position)
        ).all()
    return [(row[0], row[1]) for row in rows]


def tool_calls(store: Store, conversation_id: str) -> dict[str, dict[str, Any]]:
    columns = [
        ToolCallRow.tool_use_id,
        ToolCallRow.message_position,
        ToolCallRow.name,
        ToolCallRow.status,
        ToolCallRow.result,
        ToolCallRow.is_error,
        ToolCallRow.error,
        ToolCallRow.attempts,
    ]
    with store.engine.connect() as connection:
        rows = connection.execute(
            select(*columns).where(ToolCallRow.conversation_id == conversation_id)
        ).all()
    return {row.tool_use_id: dict(row._mapping) for row in rows}


def lease_holder(store: Store, conversation_id: str) -> str | None:
    with store.engine.connect() as connection:
        return connection.execute(
            select(ConversationRow.lease_holder).where(ConversationRow.id == conversation_id)
        ).scalar()


def side_lines(path: Path) -> dict[str, list[dict[str, Any]]]:
    """The side-effect lines by token (tool_use id), in the order they were written."""
    by_token: dict[str, list[dict[str, Any]]] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            item = json.loads(line)
            by_token.setdefault(item["token"], []).append(item)
    return by_token


# -- the test ---------------------------------------------------------------------------------


def test_tool_loop_survives_sigkill_anywhere(db_url: str, tmp_path: Path) -> None:
    backend = "pg" if db_url.startswith("postgresql") else "sqlite"
    script = Script(SEED)
    started = time.monotonic()
    with FakeClaude() as fake, Store(db_url) as store:
        fake.set_responder(script)
        deck = kill_deck(SEED, 4 * TRIALS)
        trials = [
            Trial(f"{backend}{index:02d}", db_url, store, script, fake, tmp_path, deck)
            for index in range(TRIALS)
        ]
        with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
            reports = list(pool.map(Trial.run, trials))
    elapsed = time.monotonic() - started

    kills = Counter(kill for report in reports for kill in report.kills)
    planned = Counter(plan.point for report in reports for plan in report.planned)
    stats: Counter[str] = Counter()
    for report in reports:
        stats.update(report.stats)
    summary = {
        "trials": len(reports),
        "processes": sum(r.processes for r in reports),
        "kills": sum(kills.values()),
        "missed": sum(r.missed for r in reports),
        "planned": dict(planned),
        "states": dict(kills),
        "calls": dict(stats),
        "seconds": round(elapsed, 1),
    }
    print(json.dumps(summary, indent=2, ensure_ascii=False))

    # The kill points are spread: each kind of crash happened several times.
    assert sum(kills.values()) >= TRIALS
    during_request = sum(n for state, n in kills.items() if state.startswith("during request"))
    during_tools = sum(n for state, n in kills.items() if state.startswith("during tool"))
    assert during_request >= 3, summary
    assert during_tools >= 3, summary
    assert kills["before tool execution"] >= 2, summary
    assert stats["charge interrupted (0 line)"] + stats["charge interrupted (1 line)"] >= 1
    assert any(key.startswith("lookup attempts=2") for key in stats), summary
