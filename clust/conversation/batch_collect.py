"""Collecting a Message Batch: its replies stored in their conversations
(``Store.collect_batch``).

Written once, as the plan :func:`collect` (the rules are in
:mod:`clust.conversation.batching`): the lookups and the results stream are effects
(:mod:`clust.conversation.batch_effects`), each run of results is stored by a
:class:`Db` step before the next is read.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine

from clust.conversation.batch_effects import CloseResults, GetBatch, NextResults, OpenResults
from clust.conversation.batching import (
    BatchCollection,
    StoredBatch,
    load,
    record_remote,
    stored_batch,
)
from clust.conversation.effects import Db
from clust.conversation.history import assistant_wire
from clust.conversation.records import usage_values
from clust.conversation.turns import utcnow
from clust.messages.batches import ErroredResult, SucceededResult
from clust.messages.errors import StoreError
from clust.store import batches as batch_rows
from clust.store.engine import transaction

if TYPE_CHECKING:
    from datetime import datetime

    from clust.messages.batches import BatchResult, MessageBatch
    from clust.protocol.plans import Plan

__all__ = ["WaitOptions", "collect"]

_RESULTS_PER_TRANSACTION = 100
_TALLIED = ("stored", "errored", "expired", "canceled", "skipped", "missing")


@dataclass(frozen=True)
class WaitOptions:
    """How :func:`collect` waits for the batch to end (``wait=False``: it does not)."""

    wait: bool = False
    poll_interval: float | None = None
    max_interval: float | None = None
    timeout: float | None = None
    on_progress: Callable[[MessageBatch], object] | None = None

    def arguments(self) -> dict[str, Any]:
        """Keyword arguments of ``wait_for_message_batch``."""
        given = {
            "poll_interval": self.poll_interval,
            "max_interval": self.max_interval,
            "timeout": self.timeout,
            "on_progress": self.on_progress,
        }
        return {name: value for name, value in given.items() if value is not None}


def _collectable(engine: Engine, key: str) -> StoredBatch:
    batch = load(engine, key)
    if batch.state in ("submitted", "collected"):
        return batch
    raise StoreError(
        f"message batch {batch.name!r} cannot be collected: it is {batch.state}"
        + (f" ({batch.error})" if batch.error else "")
        + (
            "; its turns are pending (retry them, or batch_send them again with content None)"
            if batch.state in ("failed", "abandoned")
            else ""
        )
    )


def _store_results(
    engine: Engine, batch: StoredBatch, results: Sequence[BatchResult], tally: Counter[str]
) -> None:
    """Store a run of results in one transaction (each item's outcome with its reply)."""
    started = batch.submitted_at or batch.created_at
    with transaction(engine) as connection:
        now = utcnow()
        finished = batch.ended_at or now
        latency_ms = max(0, round((finished - started).total_seconds() * 1000))
        for line in results:
            item = batch_rows.get_item(connection, batch.id, line.custom_id)
            if item is None or item.state != "open":
                continue  # not ours, or stored by an earlier collection
            result = line.result
            if isinstance(result, SucceededResult):
                timing = (started, finished, latency_ms, now)
                counted = _store_reply(connection, batch.id, line.custom_id, item, result, timing)
                if counted:
                    tally[counted] += 1
            elif isinstance(result, ErroredResult):
                if batch_rows.finish_item(
                    connection,
                    batch.id,
                    line.custom_id,
                    state="errored",
                    now=now,
                    error_type=result.error_type,
                    error=result.error_message,
                ):
                    tally["errored"] += 1
            else:
                kind = str(getattr(result, "type", "unknown"))
                state = kind if kind in ("expired", "canceled") else "errored"
                if batch_rows.finish_item(
                    connection,
                    batch.id,
                    line.custom_id,
                    state=state,
                    now=now,
                    error_type=None if state == kind else "unknown_result",
                    error=None if state == kind else f"a result of unknown type {kind!r}",
                ):
                    tally[state] += 1


def _store_reply(
    connection: Connection,
    batch_id: str,
    custom_id: str,
    item: Any,
    result: SucceededResult,
    timing: tuple[datetime, datetime, int, datetime],
) -> str:
    """Store a succeeded item's reply with its usage row (``timing``: started,
    finished, latency in ms, now); what it counts as: ``stored``, ``skipped`` (its
    conversation was deleted or moved on) or ``""`` (another collector stored it)."""
    started, finished, latency_ms, now = timing
    reply_position = item.position + 1
    if not batch_rows.finish_item(
        connection, batch_id, custom_id, state="succeeded", reply_position=reply_position, now=now
    ):
        return ""
    conversation_id = item.conversation_id
    if conversation_id is not None:
        response = result.message
        values = usage_values(
            response,
            conversation_id=conversation_id,
            position=reply_position,
            started_at=started,
            finished_at=finished,
            latency_ms=latency_ms,
        )
        values["service_tier"] = values["service_tier"] or "batch"
        if batch_rows.store_batch_reply(
            connection,
            conversation_id=conversation_id,
            position=item.position,
            wire=assistant_wire(response),
            usage_values=values,
            now=now,
        ):
            return "stored"
    batch_rows.finish_item(
        connection,
        batch_id,
        custom_id,
        state="skipped",
        from_state="succeeded",
        now=now,
        error_type="conversation_changed",
        error=(
            "the conversation was deleted"
            if conversation_id is None
            else "the turn was no longer the conversation's newest"
        ),
    )
    return "skipped"


def _finish_collection(engine: Engine, batch: StoredBatch, tally: Counter[str]) -> BatchCollection:
    with transaction(engine) as connection:
        now = utcnow()
        tally["missing"] += batch_rows.close_open_items(
            connection,
            batch.id,
            state="missing",
            error="the ended batch had no result for this request",
            now=now,
        )
        batch_rows.update_batch(connection, batch.id, {"state": "collected", "collected_at": now})
        row = batch_rows.get_batch(connection, batch.id)
        assert row is not None
        stored = stored_batch(connection, row, now)
    return BatchCollection(stored, ended=True, **{name: tally[name] for name in _TALLIED})


def collect(engine: Engine, key: str, waiting: WaitOptions) -> Plan[BatchCollection]:
    """Store the results of an ended batch (see :mod:`clust.conversation.batching`)."""
    batch: StoredBatch = yield Db(partial(_collectable, engine, key))
    if batch.state == "collected":
        return BatchCollection(batch, ended=True)
    assert batch.api_id is not None
    remote: MessageBatch = yield GetBatch(
        batch.api_id, waiting.arguments() if waiting.wait else None
    )
    batch = yield Db(partial(record_remote, engine, batch.id, remote))
    if not remote.ended:
        return BatchCollection(batch, ended=False)
    tally: Counter[str] = Counter()
    results = yield OpenResults(remote)
    try:
        while run := (yield NextResults(results, _RESULTS_PER_TRANSACTION)):
            yield Db(partial(_store_results, engine, batch, run, tally))
    finally:
        yield CloseResults(results)
    collected: BatchCollection = yield Db(partial(_finish_collection, engine, batch, tally))
    return collected
