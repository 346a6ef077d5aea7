"""Child processes of ``tests/store/test_processes.py``: one job each, chosen by argv.

Run as ``python worker.py <job> '<json config>'`` with the checkout on ``PYTHONPATH``.
Each job opens its own :class:`clust.Store` (a new engine, a new process: nothing is
shared with the test but the database and FakeClaude's URL) and reports on stdout,
one JSON object per line, flushed at once so the parent can react to each line.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from clust import Client, Store
from clust.messages import ApiError, ConversationBusy
from clust.protocol.retry import RetryPolicy

NO_RETRIES = RetryPolicy(max_retries=0)


def say(**fields: Any) -> None:
    print(json.dumps(fields, ensure_ascii=False), flush=True)


def wait_for_go() -> None:
    """Tell the parent this child is ready, then block until it says ``go``."""
    say(event="ready")
    if sys.stdin.readline().strip() != "go":
        raise SystemExit("the parent went away before saying go")


def client(config: dict[str, Any]) -> Client:
    return Client(api_key="test-key", base_url=config["base_url"], retry_policy=NO_RETRIES)


def resume_a(config: dict[str, Any]) -> None:
    """Create the conversation and send its first turns."""
    with Store(config["db_url"]) as store, client(config) as api:
        conv = store.create_conversation(
            model=config["model"],
            max_tokens=config["max_tokens"],
            system=config["system"],
            tools=config["tools"],
            title="résumé test",
        )
        for content in config["turns"]:
            conv.send(api, content)
        say(id=conv.id)


def resume_b(config: dict[str, Any]) -> None:
    """Open the conversation by id in a new Store and send one more turn."""
    with Store(config["db_url"]) as store, client(config) as api:
        conv = store.get_conversation(config["id"])
        reply = conv.send(api, config["content"])
        say(id=conv.id, stop_reason=str(reply.stop_reason))


def turns(config: dict[str, Any]) -> None:
    """Send ``count`` turns to one conversation, once the parent says go.

    With ``wait`` set, a busy conversation is waited for; without, ConversationBusy
    is counted and the same turn sent again. Any other exception ends the process
    with a traceback (the parent asserts exit status 0).
    """
    wait = config["wait"]
    busy = 0
    sent: list[str] = []
    with Store(config["db_url"]) as store, client(config) as api:
        conv = store.get_conversation(config["id"])
        wait_for_go()
        for index in range(config["count"]):
            text = f"{config['label']} turn {index}"
            while True:
                try:
                    conv.send(api, text, wait=wait or 0.0)
                except ConversationBusy:
                    if wait:
                        raise
                    busy += 1
                    say(event="busy", text=text)
                    time.sleep(0.02)  # back off a little before trying again
                    continue
                break
            sent.append(text)
    say(event="done", busy=busy, sent=sent)


def hang(config: dict[str, Any]) -> None:
    """Start a send (or a stream) the parent will SIGKILL while it is in flight."""
    with (
        Store(config["db_url"], lease_seconds=config["lease_seconds"]) as store,
        client(config) as api,
    ):
        conv = store.get_conversation(config["id"])
        if config["stream"]:
            with conv.stream(api, config["content"]) as stream:
                for event in stream:
                    say(event="stream", type=str(event.type))
        else:
            conv.send(api, config["content"])
        say(event="finished")  # the parent kills this process before it gets here


def fail(config: dict[str, Any]) -> None:
    """Send one turn that FakeClaude answers with an HTTP error (no retries)."""
    with Store(config["db_url"]) as store, client(config) as api:
        conv = store.get_conversation(config["id"])
        try:
            conv.send(api, config["content"])
        except ApiError as error:
            say(error=type(error).__name__, status=error.status_code)
            return
        say(error=None)


JOBS = {"resume-a": resume_a, "resume-b": resume_b, "turns": turns, "hang": hang, "fail": fail}

if __name__ == "__main__":
    JOBS[sys.argv[1]](json.loads(sys.argv[2]))
