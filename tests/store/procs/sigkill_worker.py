"""Child process of ``tests/store/test_sigkill_trials.py``: one ``send``, ``stream`` or
tool-loop ``run`` on a stored conversation, which the parent SIGKILLs somewhere.

Run as ``python sigkill_worker.py '<json config>'`` with the checkout on ``PYTHONPATH``.
It opens its own :class:`clust.Store` (``lease_seconds`` from the config, the store's
default when absent) and a client without retries, and reports on stdout, one JSON
object per line, flushed at once, so the parent can kill it at a chosen point:

- ``ready`` (with ``pid``): the store is open, the call starts next;
- ``event`` (with ``type``): a stream event arrived (``stream``);
- ``approve`` / ``tool`` / ``step``: the tool loop's hook, a tool started, a step ended
  (``run``; see :func:`make_tools`);
- ``done``: the call returned. The process then waits for its stdin to close, so a
  kill "after the reply" still finds it alive.

:func:`make_tools` is imported by the parent too: a ``run`` the parent resumes after a
kill executes the same tools, writing to the same side file.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

from clust import Client, Store
from clust.conversation.loop import Step
from clust.messages import ToolUseContentBlock
from clust.protocol.retry import RetryPolicy
from clust.tools import Tool, tool

Report = Callable[..., None]


def say(**fields: Any) -> None:
    print(json.dumps(fields, ensure_ascii=False), flush=True)


def make_tools(side_file: str, tool_sleep: float, report: Report) -> list[Tool[..., str]]:
    """``charge`` (not idempotent) and ``lookup`` (idempotent).

    Each execution reports ``tool``, sleeps ``tool_sleep`` like real work, then appends
    one line ``{"token", "tool", "nonce", "pid"}`` to ``side_file`` with a single
    ``write`` on an ``O_APPEND`` descriptor (a SIGKILL leaves the whole line or none),
    and returns a result ending in ``nonce=<nonce>``: the line is written if and only
    if the execution completed, and the stored result tells which execution it was.
    ``token`` is the ``tool_use`` id (FakeClaude's script puts it in the input).
    """

    def side_effect(token: str, name: str) -> str:
        report(event="tool", token=token, tool=name)
        time.sleep(tool_sleep)
        nonce = uuid.uuid4().hex[:12]
        line = json.dumps({"token": token, "tool": name, "nonce": nonce, "pid": os.getpid()})
        fd = os.open(side_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)
        return nonce

    @tool(timeout=30)
    def charge(token: str, amount: int) -> str:
        """Charge a card (not idempotent: running it twice charges twice).

        Args:
            token: the idempotency token of this call.
            amount: cents to charge.
        """
        return f"charged {amount} cents; nonce={side_effect(token, 'charge')}"

    @tool(idempotent=True, timeout=30)
    def lookup(token: str, city: str) -> str:
        """Look up the weather (idempotent: safe to run again).

        Args:
            token: the token of this call.
            city: a city name.
        """
        return f"sunny in {city}; nonce={side_effect(token, 'lookup')}"

    return [charge, lookup]


HOOK_SLEEP = 0.05
"""Seconds the ``approve`` and ``on_step`` hooks of a child's ``run`` take (after saying
so), so a kill can land inside them."""


def approve(block: ToolUseContentBlock) -> bool:
    say(event="approve", token=block.id)
    time.sleep(HOOK_SLEEP)
    return True


def on_step(step: Step) -> None:
    say(event="step", index=step.index)
    time.sleep(HOOK_SLEEP)


def call(config: dict[str, Any], store: Store, api: Client) -> dict[str, Any]:
    """Make the call the config names; what ``done`` reports."""
    conv = store.get_conversation(config["id"])
    kind = config["kind"]
    if kind == "send":
        return {"text": conv.send(api, config["content"]).text()}
    if kind == "stream":
        with conv.stream(api, config["content"]) as stream:
            for event in stream:
                say(event="event", type=str(event.type))
            return {"text": stream.get_final_message().text()}
    result = conv.run(
        api,
        config["content"],
        tools=make_tools(config["side_file"], config["tool_sleep"], say),
        max_steps=config["max_steps"],
        approve=approve,
        on_step=on_step,
    )
    return {"text": result.text, "stop": result.stop}


def main(config: dict[str, Any]) -> None:
    lease = (
        {} if config.get("lease_seconds") is None else {"lease_seconds": config["lease_seconds"]}
    )
    with (
        Store(config["db_url"], **lease) as store,
        Client(
            api_key="test-key",
            base_url=config["base_url"],
            retry_policy=RetryPolicy(max_retries=0),
        ) as api,
    ):
        say(event="ready", pid=os.getpid())
        say(event="done", **call(config, store, api))
        sys.stdin.read()  # alive until the parent kills it or lets it go


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
