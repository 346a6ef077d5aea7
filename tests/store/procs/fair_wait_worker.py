"""Child process of ``tests/store/test_faults_waiting.py``: several senders, one conversation.

Run as ``python fair_wait_worker.py '<json config>'`` with the checkout on
``PYTHONPATH``. It opens its own :class:`clust.Store`, says ``ready`` on stdout and
waits for ``go`` on stdin; then ``senders`` threads each send ``turns`` turns
(``"<name>-s<i>-t<j>"``) on the conversation with ``wait=``, and report each send as
one JSON line ``{"label", "start", "end"}`` (wall-clock times, comparable with the
parent's), then ``{"event": "done"}``.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any

from clust import Client, Store
from clust.protocol.retry import RetryPolicy

CONFIG: dict[str, Any] = json.loads(sys.argv[1])
_print_lock = threading.Lock()


def say(**fields: Any) -> None:
    with _print_lock:
        print(json.dumps(fields), flush=True)


def sender(store: Store, api: Client, index: int, go: threading.Barrier) -> None:
    conv = store.get_conversation(CONFIG["conversation_id"])
    go.wait()
    for turn in range(CONFIG["turns"]):
        label = f"{CONFIG['name']}-s{index}-t{turn}"
        start = time.time()
        conv.send(api, label, wait=CONFIG["wait"])
        say(label=label, start=start, end=time.time())


def main() -> None:
    policy = RetryPolicy(max_retries=0)
    with (
        Store(CONFIG["db_url"]) as store,
        Client(api_key="k", base_url=CONFIG["base_url"], retry_policy=policy) as api,
    ):
        # Warm up (connections, statements) on a conversation of its own.
        store.create_conversation(model=CONFIG["model"], max_tokens=64).send(
            api, f"warm-{CONFIG['name']}"
        )
        say(event="ready")
        if sys.stdin.readline().strip() != "go":
            raise SystemExit("the parent went away before saying go")
        go = threading.Barrier(CONFIG["senders"])
        threads = [
            threading.Thread(target=sender, args=(store, api, index, go))
            for index in range(CONFIG["senders"])
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    say(event="done")


if __name__ == "__main__":
    main()
