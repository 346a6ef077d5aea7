"""Child process of the lease and ledger tests (``tests/store/test_lease_keeper.py``,
``tests/store/test_ledger.py``).

Run as ``python lease_worker.py '<json config>'`` with the checkout on ``PYTHONPATH``.
It opens its own :class:`clust.Store` with ``lease_seconds``, says ``ready``, sends
``content`` on conversation ``id`` and says how that ended (``replied`` or ``error``);
with ``then`` it sends that too once the parent says ``go`` on stdin. Each line on
stdout is one JSON object, flushed.

``skew_hours`` sets this process's clock that many hours ahead before anything is
stored: the store's writes take their time from ``clust.conversation.turns.utcnow``,
which is replaced here (nothing else of clust is touched), as on an application
server whose clock is wrong.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime, timedelta
from typing import Any

import clust.conversation.turns as turns
from clust import Client, Store
from clust.messages import ConversationBusy, MessagesError
from clust.protocol.retry import RetryPolicy


def say(**fields: Any) -> None:
    print(json.dumps(fields, ensure_ascii=False, default=str), flush=True)


def skew(hours: float) -> None:
    real = turns.utcnow

    def skewed() -> datetime:
        return real() + timedelta(hours=hours)

    turns.utcnow = skewed


def send(conv: Any, api: Client, content: str) -> None:
    try:
        reply = conv.send(api, content)
    except ConversationBusy as busy:
        say(event="error", error="ConversationBusy", holder=busy.holder, expires_at=busy.expires_at)
    except MessagesError as error:
        say(event="error", error=type(error).__name__, message=str(error))
    else:
        say(event="replied", text=reply.text())


def main(config: dict[str, Any]) -> None:
    if config.get("skew_hours"):
        skew(config["skew_hours"])
    policy = RetryPolicy(max_retries=0)
    with (
        Store(config["db_url"], lease_seconds=config["lease_seconds"]) as store,
        Client(api_key="test-key", base_url=config["base_url"], retry_policy=policy) as api,
    ):
        conv = store.get_conversation(config["id"])
        say(event="ready", pid=os.getpid())
        send(conv, api, config["content"])
        if config.get("then") and sys.stdin.readline().strip() == "go":
            send(conv, api, config["then"])
    say(event="done")


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
