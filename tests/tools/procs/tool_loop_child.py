"""Child process of ``tests/tools/test_tool_loop_crash.py``: one tool-loop run, maybe killed.

Run as ``python tool_loop_child.py '<json config>'`` with the checkout on ``PYTHONPATH``.
It opens its own :class:`clust.Store`, runs ``conv.run(...)`` (or ``arun``) on the
conversation given by id against the FakeClaude of the parent, and reports on stdout,
one JSON object per line, flushed at once, so the parent can SIGKILL it at a chosen
point:

- ``start``: just before ``run`` is called;
- ``approve``: inside the ``approve`` hook (the calls of a reply are recorded as
  pending, none of them started yet); the hook then sleeps a little;
- ``tool``: a tool started (its row is ``running``); it sleeps a little, appends its
  side-effect line to the side file, and returns: writing the line is the last thing it
  does, so "the line is written" and "the execution completed" are the same event;
- ``done``: ``run`` returned.

Each side-effect line is one JSON object ``{"token", "tool", "nonce", "pid"}`` written
with a single ``write`` on an ``O_APPEND`` descriptor: a SIGKILL either leaves the whole
line or none of it. ``token`` is the ``tool_use`` id (Claude passes it in the input) and
``nonce`` is unique per execution and is also in the returned result, so the parent can
tell which execution's result was stored.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from typing import Any

import anyio

from clust import AsyncClient, Client, Store
from clust.conversation.loop import Step
from clust.messages import ToolUseContentBlock
from clust.protocol.retry import RetryPolicy
from clust.tools import tool

NO_RETRIES = RetryPolicy(max_retries=0)
CONFIG: dict[str, Any] = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}


def say(**fields: Any) -> None:
    print(json.dumps(fields, ensure_ascii=False), flush=True)


def side_effect(token: str, name: str) -> str:
    """Sleep like real work, then append this execution's line (the last thing done)."""
    say(event="tool", token=token, tool=name)
    time.sleep(CONFIG["tool_sleep"])
    nonce = uuid.uuid4().hex[:12]
    line = json.dumps({"token": token, "tool": name, "nonce": nonce, "pid": os.getpid()})
    fd = os.open(CONFIG["side_file"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)
    return nonce


@tool(timeout=10)
def charge(token: str, amount: int) -> str:
    """Charge a card (not idempotent: running it twice charges twice).

    Args:
        token: the idempotency token of this call.
        amount: cents to charge.
    """
    return f"charged {amount} cents; nonce={side_effect(token, 'charge')}"


@tool(idempotent=True)
def lookup(token: str, city: str) -> str:
    """Look up the weather (idempotent: safe to run again).

    Args:
        token: the token of this call.
        city: a city name.
    """
    return f"sunny in {city}; nonce={side_effect(token, 'lookup')}"


TOOLS = [charge, lookup]


def approve_sync(block: ToolUseContentBlock) -> bool:
    say(event="approve", token=block.id)
    time.sleep(CONFIG["approve_sleep"])
    return True


async def approve_async(block: ToolUseContentBlock) -> bool:
    say(event="approve", token=block.id)
    await anyio.sleep(CONFIG["approve_sleep"])
    return True


def on_step(step: Step) -> None:
    say(event="step", index=step.index, calls=[c.tool_use_id for c in step.tool_calls])


def finished(result: Any) -> None:
    say(event="done", stop=result.stop, text=result.text, steps=len(result.steps))


def run_sync(store: Store) -> None:
    conv = store.get_conversation(CONFIG["id"])
    with Client(api_key="test-key", base_url=CONFIG["base_url"], retry_policy=NO_RETRIES) as api:
        say(event="start", mode="sync")
        result = conv.run(
            api,
            CONFIG["content"],
            tools=TOOLS,
            max_steps=CONFIG["max_steps"],
            approve=approve_sync,
            on_step=on_step,
            wait=CONFIG["wait"],
        )
    finished(result)


async def run_async(store: Store) -> None:
    conv = store.get_conversation(CONFIG["id"])
    async with AsyncClient(
        api_key="test-key", base_url=CONFIG["base_url"], retry_policy=NO_RETRIES
    ) as api:
        say(event="start", mode="async")
        result = await conv.arun(
            api,
            CONFIG["content"],
            tools=TOOLS,
            max_steps=CONFIG["max_steps"],
            approve=approve_async,
            on_step=on_step,
            wait=CONFIG["wait"],
        )
    finished(result)


def main() -> None:
    with Store(CONFIG["db_url"], lease_seconds=CONFIG["lease_seconds"]) as store:
        if CONFIG["mode"] == "async":
            anyio.run(run_async, store)
        else:
            run_sync(store)


if __name__ == "__main__":
    main()
